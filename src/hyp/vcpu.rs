//! Running a vCPU on its physical CPU: binding the CPU to it, entering
//! the guest, waiting for PSCI CPU_ON (or for its partition's restart),
//! and kicking a sibling vCPU's CPU.

use core::sync::atomic::Ordering;

use crate::arch::gic::{FastFill, Gic, GicBackend};
use crate::arch::{self, GuestStart, percpu};
use crate::partition::{MAX_VCPUS, Phase, Power};
use crate::vgic::state::is_forwarded_ppi;

use super::input;
use super::interrupts;
use super::output::{self, hyp_println};
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

    /// Runs vCPU `v` of partition `p` on this CPU: vCPU 0's CPU loads the
    /// partition's memory and starts it at the image's entry; the others
    /// wait for the guest's PSCI CPU_ON.
    pub fn run_vcpu(&self, p: usize, v: usize) -> ! {
        let part = &self.partitions[p];
        if v == 0 {
            self.load(part);
            part.state.vcpus[0].set_power(Power::On);
            let x0 = part.config.device_tree.map_or(0, |dt| dt.ipa.0);
            self.enter(p, v, part.config.entry.0, x0)
        }
        self.wait_for_cpu_on(p, v)
    }

    /// Loads partition `part`'s memory (on vCPU 0's CPU, before it starts
    /// at boot or after a restart), its siblings' CPUs helping: each that
    /// waits in EL2 for CPU_ON is kicked and takes chunks of it
    /// (`runtime::Load`).
    fn load(&self, part: &Partition) {
        part.load.start();
        for t in 1..part.config.cpus.len() {
            self.kick(part, t);
        }
        // SAFETY: no vCPU of the partition runs: the others wait for a
        // CPU_ON that only this one can give.
        unsafe { part.load.help(part.config) };
        part.load.finish(part.config);
    }

    /// Waits in EL2 until the partition powers this vCPU on, asleep in
    /// WFI: a CPU_ON kicks this CPU, and the EL2 retry timer wakes it for
    /// the partition's console output. An interrupt ends WFI even with IRQs
    /// masked, as they are here. (A WFE loop woken by SEV kept the CPU busy
    /// under emulation, where WFE does not sleep, taking host time from the
    /// vCPUs that run.)
    ///
    /// The partition's stop and its restart kick every one of its CPUs
    /// too. A stop parks this CPU. In a restart this vCPU says it is out of
    /// its guest; the last of its siblings to do so kicks vCPU 0's CPU,
    /// which then reloads the partition and starts it again
    /// ([`Runtime::restart`]). vCPU 0 waits only for its own siblings, each
    /// of which leaves its guest at its next exit, which the kick forces.
    pub fn wait_for_cpu_on(&self, p: usize, v: usize) -> ! {
        let part = &self.partitions[p];
        let vcpus = part.config.cpus.len();
        loop {
            if part.load.active() {
                // SAFETY: a load is under way: vCPU 0 loads the partition,
                // none of whose vCPUs runs.
                unsafe { part.load.help(part.config) };
            }
            match part.state.phase() {
                Phase::Stopped => park(),
                Phase::Restarting => {
                    if part.state.quiesce(v, vcpus) {
                        if v == 0 {
                            self.reload(p)
                        }
                        self.kick(part, 0);
                    }
                }
                Phase::Running => {
                    if let Some((entry, context)) = part.state.vcpus[v].take_on_request() {
                        self.enter(p, v, entry, context);
                    }
                }
            }
            arch::wait_for_interrupt();
            self.take_interrupts_while_off(part, p, v);
        }
    }

    /// vCPU `v` of partition `p` leaves its guest on this CPU because the
    /// partition restarts or has stopped (its phase says which): a stopped
    /// one parks; otherwise its timer stops, what its list registers and
    /// queue held goes back (nothing stays active physically for a guest
    /// that will not end it), it is off, and it waits for the restart.
    pub fn leave_guest(&self, p: usize, v: usize) -> ! {
        let part = &self.partitions[p];
        if part.state.is_stopped() {
            park();
        }
        arch::exception::stop_guest_timer();
        interrupts::power_off(part, v);
        interrupts::leave_for_restart(part, v);
        part.state.vcpus[v].set_power(Power::Off);
        self.wait_for_cpu_on(p, v)
    }

    /// Partition `p` restarts, on vCPU 0's CPU, once every vCPU has left
    /// its guest: virtual GIC, control page and emulated PL011 back to
    /// reset, memory reloaded (`run_vcpu`), and vCPU 0 started at the
    /// image's entry as at boot. Its exit counters go on counting.
    fn reload(&self, p: usize) -> ! {
        let part = &self.partitions[p];
        interrupts::reset(part);
        super::doorbell::route_incoming(self.doorbells, p, part);
        // SAFETY: every vCPU of the partition is out of its guest and
        // stays out until vCPU 0 (this one) starts.
        unsafe { part.reset_control_page() };
        part.pl011.lock().reset();
        if !part.state.finish_restart() {
            // Stopped meanwhile (a fault report on another CPU).
            park();
        }
        hyp_println!(
            "partition {} restarts (restart {})",
            part.config.name,
            part.state.restarts()
        );
        input::follow_route(part, p);
        self.run_vcpu(p, 0)
    }

    /// What woke a vCPU's CPU while the vCPU is off: a kick (consumed: what
    /// it asked for is drained when the vCPU enters), the retry timer (the
    /// partition's output moves), the maintenance interrupt (nothing to
    /// maintain), or one of the vCPU's own forwarded interrupts (its timers,
    /// a device SPI routed here), which goes back to its source as from a
    /// powered-off vCPU's list registers: nothing is lost, and it comes
    /// back once the vCPU runs.
    fn take_interrupts_while_off(&self, part: &Partition, p: usize, v: usize) {
        loop {
            let intid = Gic::acknowledge();
            if intid >= Gic::SPURIOUS {
                return;
            }
            if input::is_uart(intid) {
                // Console input for the partition's PL011, routed to this
                // vCPU, which is off: it waits in the UART (see `input`).
                Gic::priority_drop(intid);
                input::wait_while_off(part, p);
                Gic::deactivate(intid);
                continue;
            }
            if is_forwarded_ppi(intid) || intid >= 32 {
                interrupts::give_back_taken(part, v, intid);
                // A level one still raised comes straight back: wait for
                // the next reason to wake instead of taking it again here.
                return;
            }
            Gic::priority_drop(intid);
            Gic::deactivate(intid);
            if intid == arch::HYP_TIMER_INTID {
                arch::hyp_timer_disarm();
                output::pump(part, p);
                input::retry(part, p);
            }
        }
    }

    fn enter(&self, p: usize, v: usize, entry: u64, x0: u64) -> ! {
        let part = &self.partitions[p];
        Gic::reset_virtual_interface();
        // What its siblings left pending while it was off (their kicks were
        // consumed while it waited) goes to its list registers now.
        interrupts::drain(part, v);
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
                control_ipa: part.config.control_page,
                queue: interrupts::queue_address(),
                stats: interrupts::stats_address(),
                defer_stats: part.published_stats(v),
                private: &part.vgic.private[..vcpus],
                cpu_mpidrs: &mpidrs[..vcpus],
                spis: part.vgic.spis(),
            },
        );
        let _model = part.vgic_lock.lock();
        interrupts::follow_model(part);
    }
}
