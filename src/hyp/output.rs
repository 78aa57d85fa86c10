//! Output on the board UART: the hypervisor's own lines and each
//! partition's, whole lines, with no partition ever waiting for another.
//!
//! A partition's finished lines go into its own ring (`Partition::output`,
//! locked only by that partition's CPUs) and its CPUs move them to the UART
//! in [`pump`]: at most [`BUDGET`] bytes a call, only while the UART's FIFO
//! has room (never polling it), and only when the lock-free [`Arbiter`]
//! gives the partition the next whole-line turn. What is left waits for the
//! partition's next exit or for its CPU's retry timer (the EL2 physical
//! timer, after [`RETRY_US`]): EL2 time spent on output is the writing
//! partition's own, on its own CPUs. A partition that writes faster than the
//! UART drains loses lines of its own ring (counted, and reported in its
//! output when there is room again).
//!
//! At boot and at power-off, when no partition runs, hypervisor lines are
//! written synchronously; after boot a CPU's hypervisor lines (a stop
//! report) go into the ring of the partition it runs.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::arch::{self, pl011::Pl011};
use crate::console::{Arbiter, LineBuffer, OutRing};

use super::runtime::{Partition, Runtime};

/// Bytes of finished lines one partition may have waiting for the UART.
pub const RING: usize = 16 * 1024;
/// Most bytes one [`pump`] sends: a full line with its prefix fits, so on a
/// UART that keeps up (QEMU's) a line leaves on the exit that ends it.
pub const BUDGET: usize = 256;
/// How long a CPU with output left waits before it tries again, in µs: a
/// 32-byte PL011 FIFO drains in 2.8 ms at 115200 baud.
pub const RETRY_US: u64 = 1000;
/// The longest hypervisor line kept for a partition's ring (longer ones are
/// cut).
const HYP_LINE_MAX: usize = 240;

static ARBITER: Arbiter = Arbiter::new();
static UART_BASE: AtomicUsize = AtomicUsize::new(0);
/// Set when the first vCPU runs: from then on a CPU's hypervisor lines go
/// into its partition's ring.
static RINGS: AtomicBool = AtomicBool::new(false);

/// One partition's console output: its partial line, its finished lines
/// waiting for the UART, and how many lines it lost to a full ring.
pub struct Output {
    line: LineBuffer,
    ring: OutRing,
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
            line: LineBuffer::new(),
            ring: OutRing::new(bytes),
            dropped: 0,
        })
    }
}

/// Queues one line; when the ring is full, the line is dropped and
/// counted, and the count reported before the next line that fits.
fn queue(ring: &mut OutRing, dropped: &mut u64, partition: &str, prefix: &str, text: &[u8]) {
    if *dropped > 0 {
        let mut notice = Buf::new();
        let _ = write!(
            notice,
            "partition {partition}: {dropped} console line(s) dropped: output faster than the UART"
        );
        if !ring.push_line("bulkhead", notice.as_bytes()) {
            *dropped += 1;
            return;
        }
        *dropped = 0;
    }
    if !ring.push_line(prefix, text) {
        *dropped += 1;
    }
}

/// Takes the board UART at `base`.
pub fn init(base: u64) {
    UART_BASE.store(base as usize, Ordering::Release);
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
    // owner (or the emergency path) drives it.
    (base != 0).then(|| unsafe { Pl011::new(base) })
}

/// A partition's console bytes (CONSOLE_WRITE or its emulated PL011):
/// finished lines go into its ring, then out as far as the UART allows.
pub fn partition_write(part: &Partition, p: usize, bytes: impl Iterator<Item = u8>) {
    {
        let mut guard = part.output.lock();
        let out = &mut *guard;
        let name = part.config.name;
        for byte in bytes {
            if let Some(text) = out.line.push(byte) {
                queue(&mut out.ring, &mut out.dropped, name, name, text);
            }
        }
    }
    pump(part, p);
}

/// What is left of a partition's line when it stops.
pub fn partition_flush_line(part: &Partition) {
    let mut guard = part.output.lock();
    let out = &mut *guard;
    let name = part.config.name;
    if let Some(text) = out.line.take() {
        queue(&mut out.ring, &mut out.dropped, name, name, text);
    }
}

/// Moves partition `p`'s waiting output to the UART: at most [`BUDGET`]
/// bytes, only while the UART has room and the arbiter gives `p` the line.
/// Never waits. With output left, this CPU's retry timer is armed.
pub fn pump(part: &Partition, p: usize) {
    let s = p as u32;
    let Some(mut uart) = uart() else { return };
    let mut out = part.output.lock();
    let mut budget = BUDGET;
    'lines: while budget > 0 {
        let Some(first) = out.ring.peek() else { break };
        ARBITER.want(s);
        if !ARBITER.acquire(s) {
            break;
        }
        let mut byte = first;
        loop {
            if !uart.try_write_byte(byte) {
                break 'lines; // the FIFO is full: later
            }
            out.ring.pop();
            budget -= 1;
            if byte == b'\n' {
                ARBITER.release(s);
                break;
            }
            match out.ring.peek() {
                Some(next) if budget > 0 => byte = next,
                _ => break 'lines,
            }
        }
    }
    if out.ring.is_empty() {
        ARBITER.unwant(s);
        arch::hyp_timer_disarm();
    } else {
        arch::hyp_timer_arm_us(RETRY_US);
    }
}

/// [`pump`] if partition `p` has output waiting: on any exit of its vCPUs,
/// so its lines leave as soon as the UART and the arbiter allow.
#[inline]
pub fn pump_if_waiting(part: &Partition, p: usize) {
    if ARBITER.wants(p as u32) {
        pump(part, p);
    }
}

/// Whether partition `part` has output waiting (its CPUs keep pumping).
pub fn has_output(part: &Partition) -> bool {
    !part.output.lock().ring.is_empty()
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
        let _ = buf.write_fmt(text);
        {
            let mut guard = part.output.lock();
            let out = &mut *guard;
            queue(
                &mut out.ring,
                &mut out.dropped,
                part.config.name,
                prefix,
                buf.as_bytes(),
            );
        }
        pump(part, p);
        return;
    }
    let Some(mut uart) = uart() else { return };
    let me = Arbiter::HYPERVISOR;
    ARBITER.want(me);
    // Only at boot and power-off: no partition runs, and those whose CPUs
    // still send their last lines finish them within their retry period.
    while !ARBITER.acquire(me) {
        core::hint::spin_loop();
    }
    // The PL011 writer cannot fail.
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
