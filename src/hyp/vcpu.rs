//! Running a vCPU on its physical CPU: binding the CPU to it, entering
//! the guest, waiting for PSCI CPU_ON, and kicking a sibling vCPU's CPU.

use core::sync::atomic::Ordering;

use crate::arch::gic::{FastFill, Gic, GicBackend};
use crate::arch::{self, GuestStart, percpu};
use crate::partition::{MAX_VCPUS, Power};

use super::interrupts;
use super::output;
use super::runtime::{Partition, Runtime};
use super::stop::park;

impl Runtime {
    /// Makes vCPU `t` of `part` enter EL2 on its CPU and look at its
    /// pending interrupts (and at its partition's state).
    pub fn kick(&self, part: &Partition, t: usize) {
        part.vgic.private[t]
            .pending
            .fetch_or(crate::vgic::state::DRAIN_ALL, Ordering::Release);
        Gic::send_sgi(Gic::KICK_SGI, self.mpidr_of(part.config.cpus[t]));
    }

    /// Runs vCPU `v` of partition `p` on this CPU: vCPU 0 starts at the
    /// image's entry; the others wait for the guest's PSCI CPU_ON.
    pub fn run_vcpu(&self, p: usize, v: usize) -> ! {
        let part = &self.partitions[p];
        if v == 0 {
            part.state.vcpus[0].set_power(Power::On);
            let x0 = part.config.device_tree.map_or(0, |dt| dt.ipa.0);
            self.enter(p, v, part.config.entry.0, x0)
        }
        self.wait_for_cpu_on(p, v)
    }

    /// Waits in EL2 until the partition powers this vCPU on (or stops).
    pub fn wait_for_cpu_on(&self, p: usize, v: usize) -> ! {
        let part = &self.partitions[p];
        loop {
            if part.state.is_stopped() {
                park();
            }
            if let Some((entry, context)) = part.state.vcpus[v].take_on_request() {
                self.enter(p, v, entry, context);
            }
            // The partition's output still needs its CPUs: watch the retry
            // timer (an interrupt would not end a WFE with IRQs masked).
            if output::has_output(part) {
                if arch::hyp_timer_fired() {
                    output::pump(part, p);
                }
                core::hint::spin_loop();
            } else {
                arch::wait_for_event();
            }
        }
    }

    fn enter(&self, p: usize, v: usize, entry: u64, x0: u64) -> ! {
        let part = &self.partitions[p];
        Gic::reset_virtual_interface();
        let start = GuestStart {
            entry,
            x0,
            vmpidr: part.config.vmpidrs[v],
            vmid: part.vmid,
            stage2_root: part.stage2_root.0,
            cntvoff: part.cntvoff,
        };
        arch::enter_guest(&start, percpu::this_stack_top())
    }

    /// Binds this CPU to vCPU `v` of partition `p` (before it first runs):
    /// the exit handlers find it through the per-CPU block, and the GIC
    /// backend's fast paths get what they read.
    pub fn bind_this_cpu(&self, p: usize, v: usize) {
        let part = &self.partitions[p];
        let vcpus = part.config.cpus.len();
        let mut mpidrs = [0u64; MAX_VCPUS];
        for (m, &cpu) in mpidrs.iter_mut().zip(part.config.cpus) {
            *m = self.mpidr_of(cpu);
        }
        percpu::set_vcpu(
            p,
            part as *const Partition as u64,
            &FastFill {
                vcpu: v,
                control: part.control,
                counters: &part.counters[v],
                queue_len: interrupts::queue_len_address(),
                ctlr: &part.vgic.ctlr,
                private: &part.vgic.private[..vcpus],
                cpu_mpidrs: &mpidrs[..vcpus],
                spis: part.vgic.spis(),
            },
        );
    }
}
