//! Console input: the board UART's receive side, and which partition has
//! the focus (`console::input`).
//!
//! The board UART's interrupt (the board's `uart.interrupt`) is routed to
//! one CPU of the partition with the focus: the CPU of the vCPU its
//! emulated PL011's interrupt is routed to (its virtual GICD_IROUTER;
//! vCPU 0 when that names none). There, in [`interrupt`], EL2 reads at
//! most [`RX_BUDGET`] bytes into the partition's `console::input::Port`
//! and raises its PL011's interrupt; with more waiting it masks the UART's
//! receive interrupts and takes the rest after its retry timer
//! ([`super::output::RETRY_US`]). So receiving input is EL2 work on the
//! focused partition's own CPU, a bounded amount per exit and per retry
//! period: a flood of input costs the partition it is for, and no other
//! partition's CPU ever takes the interrupt or touches the UART's receive
//! side.
//!
//! Who owns the receive side (the UART's RX registers, the routing of its
//! interrupt, the command decoder's state) is [`FOCUS`]: only a CPU of the
//! focused partition, holding that partition's `pl011` lock (which only
//! its own CPUs take), after seeing `FOCUS` name its partition, touches
//! them. Moving the focus (a Ctrl-] command, read by the owner; or the
//! focused partition stopping, on one of its CPUs) happens under that
//! same lock: the interrupt is routed to the new partition's CPU, then
//! `FOCUS` is published; the old owner stops reading at once and leaves
//! the rest in the UART, whose interrupt, still raised, now goes to the
//! new owner. Nobody waits: a CPU that takes the interrupt while it is not
//! (or no longer) the owner ends it, and it comes again where it is routed.

use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bulkhead_abi::board::CONSOLE_PL011_INTID;

use crate::arch::gic::{Gic, GicBackend};
use crate::arch::{self, pl011::Pl011};
use crate::console::input::{self, Focus, Key, Keys};
use crate::vgic::state::Spi;

use super::interrupts;
use super::output::{self, hyp_println};
use super::runtime::{Partition, Runtime};

/// Nobody has the focus (no partition takes input).
const NOBODY: usize = usize::MAX;
/// Most bytes one [`interrupt`] takes from the UART.
pub const RX_BUDGET: usize = 32;

/// The partition with the focus, or [`NOBODY`].
static FOCUS: AtomicUsize = AtomicUsize::new(NOBODY);
/// The command decoder: a Ctrl-] came last. The owner's.
static ESCAPED: AtomicBool = AtomicBool::new(false);
/// The CPU that masked the UART's receive interrupts after a full budget
/// (its retry timer unmasks them), or [`NOBODY`]. The owner's.
static PAUSED_ON: AtomicUsize = AtomicUsize::new(NOBODY);
/// The CPU the UART's interrupt is routed to. The owner's.
static ROUTED_TO: AtomicUsize = AtomicUsize::new(NOBODY);

/// Routes the UART's interrupt to `cpu` (by the owner).
fn route(runtime: &Runtime, cpu: usize) {
    if let Some(intid) = super::CONFIG.board.uart_interrupt {
        Gic::spi_route(intid, runtime.mpidr_of(cpu));
        ROUTED_TO.store(cpu, Ordering::Relaxed);
    }
}

fn uart() -> Option<Pl011> {
    let base = super::CONFIG.board.uart.base.0 as usize;
    // SAFETY: the board's PL011 from the checked board description, mapped
    // as device memory; its receive side is driven only by the owner (see
    // the module documentation), its transmit side by `output`.
    (base != 0).then(|| unsafe { Pl011::new(base) })
}

/// Whether `intid` is the board UART's interrupt.
#[inline]
pub fn is_uart(intid: u32) -> bool {
    super::CONFIG.board.uart_interrupt == Some(intid)
}

/// Whether partition `p` can take input: it has an emulated PL011 and runs.
fn takes_input(runtime: &Runtime, p: usize) -> bool {
    let part = &runtime.partitions[p];
    part.config.console_pl011.is_some() && !part.state.is_stopped()
}

/// The CPU partition `p`'s input is received on.
fn input_cpu(part: &Partition) -> usize {
    let target = part.vgic.spi(CONSOLE_PL011_INTID).map_or(0, |spi: &Spi| {
        usize::from(spi.target.load(Ordering::Relaxed))
    });
    let cpus = part.config.cpus;
    cpus.get(target).copied().unwrap_or(cpus[0])
}

/// Boot: the first partition with an emulated PL011 gets the focus, and
/// the UART's receive interrupt is routed to it and enabled.
pub fn init(runtime: &Runtime) {
    let Some(intid) = super::CONFIG.board.uart_interrupt else {
        return;
    };
    let Some(first) = (0..runtime.partitions.len()).find(|&p| takes_input(runtime, p)) else {
        return;
    };
    let Some(mut uart) = uart() else { return };
    uart.start_receiving();
    let cpu = input_cpu(&runtime.partitions[first]);
    Gic::configure_spi_at_boot(intid, runtime.mpidr_of(cpu), false, true);
    ROUTED_TO.store(cpu, Ordering::Relaxed);
    FOCUS.store(first, Ordering::Release);
    hyp_println!("console input: {}", runtime.partitions[first].config.name);
    hyp_println!("{HELP}");
}

const HELP: &str = "console: Ctrl-] n gives the input to the next partition, Ctrl-] 1-9 to \
                    that one, Ctrl-] Ctrl-] sends a Ctrl-]";

/// What to say once the lock is released.
enum Note {
    Focus(usize),
    /// Partition n (0-based) is not one that takes input.
    NoInput(usize),
    Help,
}

/// The focus to partition `to`, by the owner (under its partition's lock):
/// the UART's interrupt routed to `to`'s CPU, unmasked, then `FOCUS`.
fn hand_over(runtime: &Runtime, to: usize) {
    ESCAPED.store(false, Ordering::Relaxed);
    if let Some(mut uart) = uart()
        && PAUSED_ON.swap(NOBODY, Ordering::Relaxed) != NOBODY
    {
        uart.receive_interrupts(true);
    }
    route(runtime, input_cpu(&runtime.partitions[to]));
    // The new owner sees everything above before it sees itself named.
    core::sync::atomic::fence(Ordering::SeqCst);
    FOCUS.store(to, Ordering::Release);
}

/// The board UART's interrupt, taken on this CPU (vCPU `v` of partition
/// `p`): if `p` has the focus, up to [`RX_BUDGET`] bytes into its port
/// (and its PL011's interrupt raised), commands carried out. The caller
/// deactivates the interrupt.
pub fn interrupt(part: &Partition, p: usize, v: usize) {
    let runtime = super::runtime_of();
    let mut note = None;
    {
        let mut port = part.pl011.lock();
        if FOCUS.load(Ordering::Acquire) != p {
            return;
        }
        let Some(mut uart) = uart() else { return };
        let mut keys = Keys::new(ESCAPED.load(Ordering::Relaxed));
        let mut taken = 0;
        let mut handed_over = false;
        while taken < RX_BUDGET {
            let Some(byte) = uart.try_read_byte() else {
                break;
            };
            taken += 1;
            match keys.feed(byte) {
                Key::Byte(b) => port.receive(b),
                Key::None => {}
                Key::Help => note = Some(Note::Help),
                Key::Focus(focus) => {
                    let count = runtime.partitions.len();
                    match input::target(focus, p, count, |q| takes_input(runtime, q)) {
                        Some(to) if to != p => {
                            hand_over(runtime, to);
                            handed_over = true;
                            note = Some(Note::Focus(to));
                            // The rest is the new owner's.
                            break;
                        }
                        Some(_) => note = Some(Note::Focus(p)),
                        None => {
                            note = Some(match focus {
                                Focus::Index(n) => Note::NoInput(n),
                                Focus::Next => Note::Focus(p),
                            })
                        }
                    }
                }
            }
        }
        if !handed_over {
            ESCAPED.store(keys.escaped(), Ordering::Relaxed);
            if taken == RX_BUDGET {
                // More may wait: the rest after this CPU's retry timer.
                uart.receive_interrupts(false);
                PAUSED_ON.store(super::this_cpu(), Ordering::Relaxed);
                arch::hyp_timer_arm_us(output::RETRY_US);
            }
        }
        let (change, level) = (port.uart.line_changed(), port.uart.level());
        interrupts::pl011_line(part, v, change, level);
    }
    match note {
        Some(Note::Focus(to)) => {
            hyp_println!("console input: {}", runtime.partitions[to].config.name)
        }
        Some(Note::NoInput(n)) => match runtime.partitions.get(n) {
            Some(part) => hyp_println!(
                "console: partition {} ({}) takes no input (no emulated PL011, or stopped)",
                n + 1,
                part.config.name
            ),
            None => hyp_println!("console: there is no partition {}", n + 1),
        },
        Some(Note::Help) => hyp_println!("{HELP}"),
        None => {}
    }
}

/// The UART's interrupt came to this CPU of partition `p` while its vCPU
/// is off (CPU_OFF; the guest left its PL011's interrupt routed to it):
/// what waits stays in the UART, whose receive interrupts are masked until
/// this CPU's retry timer looks again (the vCPU on, or the interrupt
/// routed elsewhere, takes it then).
pub fn wait_while_off(part: &Partition, p: usize) {
    let _port = part.pl011.lock();
    if FOCUS.load(Ordering::Acquire) == p
        && let Some(mut uart) = uart()
    {
        uart.receive_interrupts(false);
        PAUSED_ON.store(super::this_cpu(), Ordering::Relaxed);
        arch::hyp_timer_arm_us(output::RETRY_US);
    }
}

/// Whether this CPU masked the UART's receive interrupts and waits for its
/// retry timer to unmask them.
pub fn paused_here() -> bool {
    PAUSED_ON.load(Ordering::Relaxed) == super::this_cpu()
}

/// This CPU's retry timer fired (vCPU `v` of partition `p`): if it paused
/// the UART's receive interrupts, they are unmasked (what waits raises the
/// interrupt again).
pub fn retry(part: &Partition, p: usize) {
    if !paused_here() {
        return;
    }
    let _port = part.pl011.lock();
    if FOCUS.load(Ordering::Acquire) == p
        && PAUSED_ON.swap(NOBODY, Ordering::Relaxed) != NOBODY
        && let Some(mut uart) = uart()
    {
        uart.receive_interrupts(true);
    }
}

/// Partition `p`'s PL011 interrupt may have been routed to another vCPU
/// (a virtual GICD_IROUTER write): if `p` has the focus, the UART's
/// interrupt follows it to that vCPU's CPU.
pub fn follow_route(part: &Partition, p: usize) {
    if FOCUS.load(Ordering::Relaxed) != p || ROUTED_TO.load(Ordering::Relaxed) == input_cpu(part) {
        return;
    }
    let _port = part.pl011.lock();
    if FOCUS.load(Ordering::Acquire) != p {
        return;
    }
    if let Some(mut uart) = uart()
        && PAUSED_ON.swap(NOBODY, Ordering::Relaxed) != NOBODY
    {
        uart.receive_interrupts(true);
    }
    route(super::runtime_of(), input_cpu(part));
}

/// Partition `p` has stopped (on one of its CPUs): if it had the focus,
/// the next partition that takes input gets it, or nobody.
pub fn partition_stopped(runtime: &Runtime, p: usize) {
    let part = &runtime.partitions[p];
    let to = {
        let _port = part.pl011.lock();
        if FOCUS.load(Ordering::Acquire) != p {
            return;
        }
        let count = runtime.partitions.len();
        let to = input::target(Focus::Next, p, count, |q| takes_input(runtime, q));
        match to {
            Some(to) => hand_over(runtime, to),
            None => {
                if let Some(intid) = super::CONFIG.board.uart_interrupt {
                    Gic::spi_enable(intid, false);
                }
                PAUSED_ON.store(NOBODY, Ordering::Relaxed);
                FOCUS.store(NOBODY, Ordering::Release);
            }
        }
        to
    };
    match to {
        Some(to) => hyp_println!("console input: {}", runtime.partitions[to].config.name),
        None => hyp_println!("console input: none (no running partition has an emulated PL011)"),
    }
}
