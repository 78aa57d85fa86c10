//! Stopping a partition: its report, its other CPUs stopped, power-off
//! after the last one; restarting one (PSCI SYSTEM_RESET, or a fault under
//! `on_fault = "restart"`); and parking a CPU that has nothing (more) to
//! run.

use core::fmt;
use core::sync::atomic::Ordering;

use bulkhead_abi::Counter;

use crate::arch::gic::{Gic, GicBackend};
use crate::arch::{self};
use crate::partition::{RestartReason, StopReason};

use super::output::{self, hyp_println};
use super::runtime::{Partition, Runtime};

impl Runtime {
    /// Stops partition `p` for `reason`, reports it, wakes its other CPUs so
    /// they stop too, and powers the machine off when it was the last one
    /// running. Does not return: this CPU parks.
    ///
    /// A fault of a partition whose `on_fault` is "restart" restarts it
    /// instead.
    pub fn stop(&self, p: usize, reason: StopReason) -> ! {
        let part = &self.partitions[p];
        if let Some(restart) = reason.restart_instead(part.config.on_fault) {
            self.restart(p, restart.vcpu(), restart)
        }
        if part.state.stop() {
            output::partition_flush_line(part);
            hyp_println!("partition {} stopped: {reason}", part.config.name);
            for v in 0..part.config.cpus.len() {
                hyp_println!(
                    "partition {} vCPU {v} exits: {}",
                    part.config.name,
                    ExitCounts(part, v)
                );
                let [deferred, wait, window] = part.defer_stats(v);
                hyp_println!(
                    "partition {} vCPU {v} masking: deferred={deferred} max_wait={wait} \
                     max_window={window} (counter ticks)",
                    part.config.name
                );
            }
            let restarts = part.state.restarts();
            if restarts > 0 {
                hyp_println!(
                    "partition {} restarted {restarts} time(s) (exit counts since boot)",
                    part.config.name
                );
            }
            let lost = part.pl011.lock().lost();
            if lost > 0 {
                hyp_println!(
                    "partition {}: {lost} console input byte(s) lost (its receiver off, or \
                     its FIFO and backlog full)",
                    part.config.name
                );
            }
            super::input::partition_stopped(self, p);
            self.kick_siblings(part);
            if self.running.fetch_sub(1, Ordering::AcqRel) == 1 {
                // Nothing runs any more: what every partition left, then the last line.
                output::stop_rings();
                output::flush_all(self);
                hyp_println!("all partitions have stopped; powering off");
                arch::system_off(super::CONFIG.board.power);
            }
        }
        park()
    }
}

impl Runtime {
    /// Restarts partition `p` for `reason`, on the CPU of its vCPU `v`
    /// (the one that called SYSTEM_RESET, or faulted): reports it, kicks
    /// its other CPUs so each leaves its guest, and leaves its own; vCPU
    /// 0's CPU then reloads the partition and starts it again
    /// (`Runtime::wait_for_cpu_on`). Memory comes back from the images
    /// embedded in the hypervisor, its vCPUs, virtual GIC, timers, control
    /// page and PL011 from reset, its forwarded interrupts deactivated.
    /// Only the partition's own CPUs take part, and none waits for anything
    /// but its siblings: the other partitions run on untouched. Does not
    /// return: this vCPU starts again (vCPU 0) or waits for CPU_ON.
    pub fn restart(&self, p: usize, v: usize, reason: RestartReason) -> ! {
        let part = &self.partitions[p];
        if part.state.begin_restart() {
            output::partition_flush_line(part);
            hyp_println!("partition {} restarting: {reason}", part.config.name);
            self.kick_siblings(part);
        }
        self.leave_guest(p, v)
    }

    /// Kicks the partition's CPUs other than this one, which look at its
    /// phase (stopped, restarting) at that exit.
    fn kick_siblings(&self, part: &Partition) {
        let me = super::this_cpu();
        for (t, _) in part
            .config
            .cpus
            .iter()
            .enumerate()
            .filter(|&(_, &c)| c != me)
        {
            self.kick(part, t);
        }
        arch::send_event();
    }
}

/// A vCPU's exit counters, as the stop report prints them.
struct ExitCounts<'a>(&'a Partition, usize);

impl fmt::Display for ExitCounts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in Counter::ALL.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            write!(f, "{sep}{}={}", c.name(), self.0.counter(self.1, *c))?;
        }
        Ok(())
    }
}

/// This CPU has nothing (more) to run: the guest's timer off, the virtual
/// interface off, and it sleeps, consuming whatever interrupt wakes it. Its
/// partition's last output still leaves through it (the retry timer).
pub fn park() -> ! {
    arch::exception::stop_guest_timer();
    Gic::disable_virtual_interface();
    let mine = super::runtime().and_then(|r| r.vcpu_on_cpu(super::this_cpu()).map(|(p, _)| (r, p)));
    if let Some((runtime, p)) = mine {
        let part = &runtime.partitions[p];
        // Its devices' interrupts off at the distributor (each of its CPUs
        // does this once it has done with its last exit): a level one
        // left raised would otherwise come back to the CPU it is routed
        // to as fast as this loop consumes it, for ever.
        if part.state.is_stopped() {
            for spi in part.vgic.forwarded_spis() {
                Gic::spi_enable(spi.intid, false);
            }
        }
        output::pump(part, p);
    }
    loop {
        arch::wait_for_interrupt();
        loop {
            let intid = Gic::acknowledge();
            if intid >= Gic::SPURIOUS {
                break;
            }
            Gic::priority_drop(intid);
            Gic::deactivate(intid);
            if intid == arch::HYP_TIMER_INTID {
                arch::hyp_timer_disarm();
                if let Some((runtime, p)) = mine {
                    output::pump(&runtime.partitions[p], p);
                }
            }
        }
    }
}
