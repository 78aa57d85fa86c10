//! Output on the board UART: the hypervisor's own lines and each
//! partition's, character by character and framed (`console::framing`),
//! with no partition ever waiting for another.
//!
//! A partition's bytes go into its own ring (`Partition::output`, locked
//! only by that partition's CPUs) and its CPUs move them to the UART in
//! [`pump`]: at most [`BUDGET`] bytes a call, only while the UART's FIFO
//! has room (never polling it), and only while the lock-free [`Arbiter`]
//! gives the partition the turn: a visible line at a time, round robin.
//! A line that comes through CONSOLE_WRITE starts to show when it is
//! whole, or when its start has waited [`HOLD_US`] (a prompt): the call
//! carries 48 bytes, so every longer line comes in pieces; what comes
//! through the emulated PL011 shows at once ([`Via`]). A line left open
//! with nothing more to send keeps the turn for [`IDLE_US`] at most while
//! another partition has output. What is
//! left waits for the partition's next exit or for its CPU's retry timer
//! (the EL2 physical timer, after [`RETRY_US`]): EL2 time spent on output
//! is the writing partition's own, on its own CPUs. A partition that
//! writes faster than the UART drains loses bytes of its own ring
//! (counted, and reported in its output when there is room again).
//!
//! At boot and at power-off, when no partition runs, hypervisor lines are
//! written synchronously; after boot a CPU's hypervisor lines (a stop
//! report, the console focus) go into the ring of the partition it runs.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use crate::arch::{self, pl011::Pl011};
use crate::console::{Arbiter, Limits, OutRing, Sender, Turn};

use super::runtime::{Partition, Runtime};

/// Bytes one partition may have waiting for the UART.
pub const RING: usize = 16 * 1024;
/// Most bytes one [`pump`] sends: a full line with its prefix fits, so on a
/// UART that keeps up (QEMU's) a line leaves on the exit that ends it.
pub const BUDGET: usize = 256;
/// How long a CPU with output left waits before it tries again, in µs: a
/// 32-byte PL011 FIFO drains in 2.8 ms at 115200 baud.
pub const RETRY_US: u64 = 1000;
/// How long the start of a line written through CONSOLE_WRITE waits for
/// its end before it shows, in µs (a line longer than the call's 48 bytes
/// goes out whole; a prompt without a newline shows after this): the retry
/// period, so one timer serves both.
pub const HOLD_US: u64 = RETRY_US;
/// How long a partition's open line with nothing more to send keeps the
/// UART's turn while another partition has output, in µs: short enough
/// that a prompt waiting for input holds nobody up for long.
pub const IDLE_US: u64 = 20_000;
/// The longest hypervisor line kept for a partition's ring (longer ones are
/// cut).
const HYP_LINE_MAX: usize = 240;
/// The prefix of the hypervisor's lines.
const HYP_PREFIX: &[u8] = b"[bulkhead] ";

static ARBITER: Arbiter = Arbiter::new();
static UART_BASE: AtomicUsize = AtomicUsize::new(0);
/// [`HOLD_US`] and [`IDLE_US`] in counter ticks, set at [`init`].
static HOLD_TICKS: AtomicU64 = AtomicU64::new(0);
static IDLE_TICKS: AtomicU64 = AtomicU64::new(0);
/// Set when the first vCPU runs: from then on a CPU's hypervisor lines go
/// into its partition's ring.
static RINGS: AtomicBool = AtomicBool::new(false);

/// One partition's console output: its bytes waiting for the UART, how
/// they are being sent, and how many it lost to a full ring.
pub struct Output {
    ring: OutRing,
    sender: Sender,
    /// The partition's last byte left a line open (for the end of a line
    /// when it stops).
    open_line: bool,
    dropped: u64,
}

impl Output {
    /// With a ring of [`RING`] bytes from the heap (never freed); `None`
    /// when the heap has no room.
    pub fn new() -> Option<Self> {
        let layout = core::alloc::Layout::new::<[u8; RING]>();
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc::alloc::alloc_zeroed(layout) };
        if ptr.is_null() {
            return None;
        }
        // SAFETY: a fresh, zeroed allocation of RING bytes, never freed and
        // never lent to anything else.
        let bytes = unsafe { core::slice::from_raw_parts_mut(ptr, RING) };
        Some(Self {
            ring: OutRing::new(bytes),
            sender: Sender::new(),
            open_line: false,
            dropped: 0,
        })
    }

    /// Queues a hypervisor line about the partition, `[prefix] text`
    /// (whole, or dropped and counted).
    fn hyp_line(&mut self, line: &[u8]) {
        if self.ring.push_hyp_line(&[line]) {
            self.open_line = false;
        } else {
            self.dropped += 1;
        }
    }

    /// Queues one of the partition's bytes, come at `now`; when the ring
    /// is full it is dropped and counted, and the count reported once there
    /// is room.
    fn byte(&mut self, partition: &str, byte: u8, now: u64) {
        if self.dropped > 0 {
            let mut notice = Buf::new();
            let _ = write!(
                notice,
                "partition {partition}: {} console byte(s) dropped: output faster than the UART",
                self.dropped
            );
            // The notice and the byte, or neither.
            if self.ring.room() <= HYP_PREFIX.len() + notice.len
                || !self.ring.push_hyp_line(&[HYP_PREFIX, notice.as_bytes()])
            {
                self.dropped += 1;
                return;
            }
            self.dropped = 0;
            self.open_line = false;
        }
        if !self.ring.push(byte, now) {
            self.dropped += 1;
            return;
        }
        self.open_line = match byte {
            b'\n' => false,
            b'\r' => self.open_line,
            _ => true,
        };
    }
}

/// Takes the board UART at `base`.
pub fn init(base: u64) {
    UART_BASE.store(base as usize, Ordering::Release);
    let per_us = arch::counter_ticks_per_us();
    HOLD_TICKS.store(HOLD_US * per_us, Ordering::Relaxed);
    IDLE_TICKS.store(IDLE_US * per_us, Ordering::Relaxed);
}

/// The partitions run: hypervisor lines go to their rings from now on.
pub fn partitions_started() {
    RINGS.store(true, Ordering::Release);
}

/// Every partition has stopped: hypervisor lines are synchronous again.
pub fn stop_rings() {
    RINGS.store(false, Ordering::Release);
}

fn uart() -> Option<Pl011> {
    let base = UART_BASE.load(Ordering::Acquire);
    // SAFETY: `base` is the board's PL011 from the checked board
    // description, mapped as device memory; only the arbiter's current
    // owner (or the emergency path) transmits on it.
    (base != 0).then(|| unsafe { Pl011::new(base) })
}

fn limits() -> Limits {
    Limits {
        now: arch::physical_counter(),
        hold: HOLD_TICKS.load(Ordering::Relaxed),
        idle_after: IDLE_TICKS.load(Ordering::Relaxed),
        budget: BUDGET,
    }
}

/// How a partition's bytes came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// CONSOLE_WRITE: a line longer than one call comes in pieces, and its
    /// start waits [`HOLD_US`] for the rest.
    Call,
    /// The emulated PL011: a UART driver writes a line a trap at a time,
    /// and each byte shows at once. (Held like a call's, the start of every
    /// line a driver writes would program the EL2 timer; under QEMU's
    /// -icount that reorders the round robin of the vCPUs, and the
    /// interference benchmark's victim saw one timer interrupt 117,846
    /// ticks late beside a PL011 flood.)
    Pl011,
}

/// A partition's console bytes: into its ring, then out as far as the UART
/// allows.
pub fn partition_write(part: &Partition, p: usize, via: Via, bytes: impl Iterator<Item = u8>) {
    {
        // A byte not to hold counts as one that came long ago.
        let since = match via {
            Via::Call => arch::physical_counter(),
            Via::Pl011 => 0,
        };
        let mut out = part.output.lock();
        for byte in bytes {
            out.byte(part.config.name, byte, since);
        }
    }
    pump(part, p);
}

/// Ends the partition's open line, if it has one (it stops).
pub fn partition_flush_line(part: &Partition) {
    let mut out = part.output.lock();
    if out.open_line {
        out.byte(part.config.name, b'\n', arch::physical_counter());
    }
}

/// Moves partition `p`'s waiting output to the UART: at most [`BUDGET`]
/// bytes, only while the UART has room and the arbiter gives `p` the turn.
/// Never waits. With output left, this CPU's retry timer is armed.
pub fn pump(part: &Partition, p: usize) {
    let Some(mut uart) = uart() else { return };
    let mut guard = part.output.lock();
    let out = &mut *guard;
    let left = out.sender.pump(
        &mut out.ring,
        (&ARBITER, p as u32, part.config.name),
        limits(),
        &mut |byte| uart.try_write_byte(byte),
    );
    if left {
        arch::hyp_timer_arm_us(RETRY_US);
    } else if !super::input::paused_here() {
        arch::hyp_timer_disarm();
    }
}

/// [`pump`] if partition `p` has output waiting: on any exit of its vCPUs,
/// so its bytes leave as soon as the UART and the arbiter allow.
#[inline]
pub fn pump_if_waiting(part: &Partition, p: usize) {
    if ARBITER.wants(p as u32) {
        pump(part, p);
    }
}

/// Whether partition `part` has output waiting (its CPUs keep pumping).
pub fn has_output(part: &Partition) -> bool {
    let out = part.output.lock();
    !out.ring.is_empty() || out.sender.busy()
}

/// At power-off, with no partition running: everything left, synchronously.
///
/// The partitions are pumped in turn, not one after the other to the end:
/// the arbiter gives whole lines round robin, so while another partition
/// has a line waiting, one partition's next line waits for that one's, and
/// draining a single partition to empty would wait for ever on a turn that
/// only this loop can take (it did, when two partitions stopped together).
pub fn flush_all(runtime: &Runtime) {
    for part in runtime.partitions.iter() {
        partition_flush_line(part);
    }
    loop {
        let mut left = false;
        for (p, part) in runtime.partitions.iter().enumerate() {
            if has_output(part) {
                pump(part, p);
                left = true;
            }
        }
        if !left {
            break;
        }
        core::hint::spin_loop();
    }
    arch::hyp_timer_disarm();
}

/// A line of up to [`HYP_LINE_MAX`] bytes on the stack; the rest is cut.
struct Buf {
    bytes: [u8; HYP_LINE_MAX],
    len: usize,
}

impl Buf {
    fn new() -> Self {
        Self {
            bytes: [0; HYP_LINE_MAX],
            len: 0,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl Write for Buf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(HYP_LINE_MAX - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// The partition this CPU runs, once the partitions run.
fn this_partition() -> Option<(&'static Runtime, usize)> {
    if !RINGS.load(Ordering::Acquire) {
        return None;
    }
    let runtime = super::runtime()?;
    let (p, _) = runtime.vcpu_on_cpu(super::this_cpu())?;
    Some((runtime, p))
}

/// Prints one line, `[prefix] text`, whole: into this CPU's partition's
/// ring once partitions run, else (boot, power-off) synchronously.
pub fn line(prefix: &str, text: fmt::Arguments<'_>) {
    if let Some((runtime, p)) = this_partition() {
        let part = &runtime.partitions[p];
        let mut buf = Buf::new();
        let _ = write!(buf, "[{prefix}] {text}");
        part.output.lock().hyp_line(buf.as_bytes());
        pump(part, p);
        return;
    }
    let Some(mut uart) = uart() else { return };
    let me = Arbiter::HYPERVISOR;
    ARBITER.want(me);
    // Only at boot and power-off: no partition runs, and those whose CPUs
    // still send their last lines finish them within their retry period.
    let turn = loop {
        let limits = limits();
        if let Some(turn) = ARBITER.acquire(me, limits.now, limits.idle_after) {
            break turn;
        }
        core::hint::spin_loop();
    };
    // The PL011 writer cannot fail.
    if turn == Turn::TakenOver {
        let _ = uart.write_str("\n");
    }
    let _ = writeln!(uart, "[{prefix}] {text}");
    ARBITER.unwant(me);
    ARBITER.release(me);
}

/// `[bulkhead] ...` on the console.
macro_rules! hyp_println {
    ($($arg:tt)*) => {
        $crate::hyp::output::line("bulkhead", format_args!($($arg)*))
    };
}
pub(crate) use hyp_println;

/// For the panic handler and hypervisor exceptions: prints at once,
/// ignoring whose turn it is (a line may land inside another).
pub fn emergency(text: fmt::Arguments<'_>) {
    if let Some(mut uart) = uart() {
        let _ = writeln!(uart, "\n[bulkhead] {text}");
    }
}
