//! The channel benchmark (tests/configs/bench-channel.toml, run by
//! scripts/bench.sh on the measuring setting, where one counter tick is one
//! instruction). Partition 0 (`alpha`, vCPUs 0 and 1) rings partition 1
//! (`beta`, one vCPU) and streams messages to it; every time is the
//! physical counter (CNTPCT_EL0), which both partitions read alike.
//!
//! - `doorbell_ring`: alpha's one write of channel 0 to its doorbell page,
//!   between two counter reads (the trap, checked and routed).
//! - `doorbell_to_handler`: from alpha's read before that write to the
//!   first instruction of beta's doorbell handler that reads the counter;
//!   `doorbell_wfi_to_handler` from alpha's read after it, right before its
//!   WFI (which hands QEMU's one thread to beta's CPU): beta's side, its
//!   kick exit, the drain, its vector and its dispatch. Beta answers with a
//!   doorbell of its own, which wakes alpha.
//! - `channel_sgi_send`, `channel_sgi_to_handler`,
//!   `channel_sgi_wfi_to_handler`: the same, with a one-write SGI from
//!   alpha's vCPU 0 to its vCPU 1 in place of the doorbell: the baseline of
//!   an interrupt between two vCPUs of one partition, same code around it.
//! - `ring_messages_per_million_instructions`: alpha sends 20,000 messages
//!   of 32 bytes through a ring of 32 slots, a ring-full at a time, and
//!   waits (WFI) for beta's doorbell saying it drained them; beta takes
//!   them, asking for alpha's doorbell only when the ring is empty. Nobody
//!   spins, so the ticks from alpha's first send to beta's last receive
//!   are the instructions both sides ran (under `-icount` QEMU runs the
//!   CPUs in turn, and a halted one runs none): messages per million of
//!   them. `ring_doorbells_per_1000_messages`: alpha's rings meanwhile (its
//!   data aborts: it makes no other).
//!
//! Each latency is taken 200 times and printed `min/median/max`, as the
//! other benchmarks print theirs; alpha prints `bench: done` last.
#![no_std]
#![no_main]

use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering};

use guest_lib::abi::Counter;
use guest_lib::channel::{MESSAGE_MAX, Receiver, Sender, doorbell_ring};
use guest_lib::gic::{self, SgiTargets};
use guest_lib::{hvc, irq, println, smp, timer};

guest_lib::entry!(main);

const RING: usize = 0x7000_0000;
const RING_SIZE: usize = 0x1000;
const FLAGS: usize = 0x7000_1000;
/// Both partitions' doorbell page; each rings channel 0 (the other).
const PAGE: usize = 0x0a00_0000;
const DOORBELL_INTID: u32 = 48;
/// Alpha's vCPU 0 -> vCPU 1, and the answer back.
const SGI_BENCH: u32 = 1;
const SGI_ACK: u32 = 2;

const SAMPLES: usize = 200;
const STREAM: u64 = 20_000;
const STREAM_BYTES: usize = 32;

/// The flag page's words.
#[repr(C)]
struct Flags {
    /// Beta's doorbell handler runs: it may be rung.
    beta_ready: AtomicU64,
    /// Beta's doorbell handler: its counter read, and how many it took.
    beta_handler: AtomicU64,
    beta_doorbells: AtomicU64,
    /// 1: beta, take the stream.
    stream: AtomicU64,
    /// Beta took the whole stream.
    stream_taken: AtomicU64,
    /// The physical count at beta's last receive.
    stream_end: AtomicU64,
}

fn flags() -> &'static Flags {
    // SAFETY: the flag page is a shared region both partitions map
    // read-write, zeroed at boot; only atomics in it.
    unsafe { &*(FLAGS as *const Flags) }
}

/// Alpha's vCPU 1: its SGI handler's counter read, and its count.
static SGI_HANDLER: AtomicU64 = AtomicU64::new(0);
static SGIS: AtomicU64 = AtomicU64::new(0);
/// Alpha's vCPU 0: answers taken (beta's doorbells, vCPU 1's SGIs).
static ACKS: AtomicU64 = AtomicU64::new(0);
/// Beta: doorbells taken while streaming.
static WAKES: AtomicU64 = AtomicU64::new(0);

fn main() -> ! {
    match hvc::vcpu_info().map(|info| info.partition) {
        Ok(0) => alpha(),
        Ok(1) => beta(),
        _ => println!("bench: channels need Bulkhead"),
    }
    guest_lib::exit(0)
}

/// Min, median (the upper one of an even count) and max of some samples,
/// printed `min/median/max`.
struct Spread(u64, u64, u64);

fn spread(samples: &mut [u64]) -> Spread {
    samples.sort_unstable();
    Spread(
        samples[0],
        samples[samples.len() / 2],
        samples[samples.len() - 1],
    )
}

impl core::fmt::Display for Spread {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}/{}/{}", self.0, self.1, self.2)
    }
}

fn on_ack(_intid: u32) {
    ACKS.fetch_add(1, Ordering::Release);
}

fn on_sgi(_intid: u32) {
    SGI_HANDLER.store(timer::physical_now(), Ordering::Relaxed);
    SGIS.fetch_add(1, Ordering::Release);
    let _ = gic::send_sgi(SgiTargets::List(1 << 0), SGI_ACK);
}

fn alpha_secondary(_cpu: usize) -> ! {
    let _ = irq::register(SGI_BENCH, on_sgi);
    let _ = gic::enable(SGI_BENCH);
    irq::enable();
    loop {
        guest_lib::wfi();
    }
}

fn alpha() {
    let _ = irq::register(DOORBELL_INTID, on_ack);
    let _ = gic::enable(DOORBELL_INTID);
    let _ = irq::register(SGI_ACK, on_ack);
    let _ = gic::enable(SGI_ACK);
    irq::enable();
    if smp::start_cpu(1, alpha_secondary).is_err() {
        println!("bench: no vCPU 1");
        return;
    }
    while flags().beta_ready.load(Ordering::Acquire) == 0 || SGIS.load(Ordering::Acquire) == 0 {
        // vCPU 1 answers an SGI once its handler is in place.
        let acks = ACKS.load(Ordering::Acquire);
        let _ = gic::send_sgi(SgiTargets::List(1 << 1), SGI_BENCH);
        irq::wait_until(|| ACKS.load(Ordering::Acquire) > acks);
    }

    let (mut ring, mut to, mut wfi_to) = ([0; SAMPLES], [0; SAMPLES], [0; SAMPLES]);
    for i in 0..SAMPLES {
        let (t0, t1) = interrupt_other(ring_write);
        let at = flags().beta_handler.load(Ordering::Relaxed);
        (ring[i], to[i], wfi_to[i]) = (t1 - t0, at - t0, at - t1);
    }
    println!("bench: doorbell_ring={}", spread(&mut ring));
    println!("bench: doorbell_to_handler={}", spread(&mut to));
    println!("bench: doorbell_wfi_to_handler={}", spread(&mut wfi_to));

    for i in 0..SAMPLES {
        let (t0, t1) = interrupt_other(sgi_write);
        let at = SGI_HANDLER.load(Ordering::Relaxed);
        (ring[i], to[i], wfi_to[i]) = (t1 - t0, at - t0, at - t1);
    }
    println!("bench: channel_sgi_send={}", spread(&mut ring));
    println!("bench: channel_sgi_to_handler={}", spread(&mut to));
    println!("bench: channel_sgi_wfi_to_handler={}", spread(&mut wfi_to));

    // SAFETY: the ring is a shared region mapped read-write in both
    // partitions, alpha its only producer.
    let mut tx = unsafe { Sender::attach(RING, RING_SIZE, PAGE, 0) }.expect("ring");
    let rung = || hvc::exit_count(Counter::DataAbort).unwrap_or(0);
    let rung_before = rung();
    flags().stream.store(1, Ordering::Release);
    doorbell_ring(PAGE, 0); // beta waits for the stream in WFI
    let mut message = [0u8; STREAM_BYTES];
    let start = timer::physical_now();
    let mut seq = 0;
    while seq < STREAM {
        // A ring-full, then WFI until beta has drained it: nobody spins.
        let acks = ACKS.load(Ordering::Acquire);
        while seq < STREAM {
            message[..8].copy_from_slice(&seq.to_le_bytes());
            if tx.try_send(&message).is_err() {
                break;
            }
            seq += 1;
        }
        irq::wait_until(|| ACKS.load(Ordering::Acquire) > acks);
    }
    while flags().stream_taken.load(Ordering::Acquire) == 0 {
        core::hint::spin_loop();
    }
    let ticks = flags().stream_end.load(Ordering::Relaxed) - start;
    let doorbells = rung() - rung_before;
    println!(
        "bench: ring_messages_per_million_instructions={}",
        STREAM * 1_000_000 / ticks
    );
    println!(
        "bench: ring_doorbells_per_1000_messages={}",
        doorbells * 1000 / STREAM
    );
    println!("bench: done");
}

/// Runs `write` (a ring or an SGI to the other side, its counter reads
/// around it), then WFI with IRQs masked until the other side answers:
/// (the read before the write, the read after it).
fn interrupt_other(write: impl FnOnce() -> (u64, u64)) -> (u64, u64) {
    let acks = ACKS.load(Ordering::Acquire);
    irq::disable();
    let times = write();
    irq::wait_until(|| ACKS.load(Ordering::Acquire) > acks);
    times
}

/// Channel 0 rung through the doorbell page, then WFI.
fn ring_write() -> (u64, u64) {
    let (t0, t1): (u64, u64);
    // SAFETY: a 32-bit store of channel 0 to the doorbell page (emulated:
    // Device memory in guest-lib's identity map), between two counter
    // reads, then WFI with IRQs masked: the answer wakes it and is taken
    // once the caller unmasks.
    unsafe {
        asm!(
            "dsb ishst",
            "mrs {t0}, cntpct_el0",
            "str wzr, [{page}]",
            "mrs {t1}, cntpct_el0",
            "wfi",
            t0 = out(reg) t0,
            t1 = out(reg) t1,
            page = in(reg) PAGE,
            options(nostack, preserves_flags)
        )
    };
    (t0, t1)
}

/// SGI_BENCH to vCPU 1 (one ICC_SGI1R_EL1 write), then WFI.
fn sgi_write() -> (u64, u64) {
    let (t0, t1): (u64, u64);
    // SAFETY: as `ring_write`, with the SGI register write.
    unsafe {
        asm!(
            "dsb ishst",
            "mrs {t0}, cntpct_el0",
            "msr icc_sgi1r_el1, x2",
            "mrs {t1}, cntpct_el0",
            "wfi",
            t0 = out(reg) t0,
            t1 = out(reg) t1,
            in("x2") SgiTargets::List(1 << 1).sgi1r(SGI_BENCH),
            options(nostack, preserves_flags)
        )
    };
    (t0, t1)
}

fn on_doorbell(_intid: u32) {
    let now = timer::physical_now();
    if flags().stream.load(Ordering::Relaxed) == 0 {
        flags().beta_handler.store(now, Ordering::Relaxed);
        flags().beta_doorbells.fetch_add(1, Ordering::Release);
        doorbell_ring(PAGE, 0);
    } else {
        WAKES.fetch_add(1, Ordering::Release);
    }
}

fn beta() {
    let _ = irq::register(DOORBELL_INTID, on_doorbell);
    let _ = gic::enable(DOORBELL_INTID);
    irq::enable();
    flags().beta_ready.store(1, Ordering::Release);
    irq::wait_until(|| flags().stream.load(Ordering::Acquire) != 0);
    // SAFETY: as alpha's; beta the ring's only consumer.
    let mut rx = unsafe { Receiver::attach(RING, RING_SIZE) }.expect("ring");
    let mut buffer = [0; MESSAGE_MAX];
    let mut taken = 0;
    while taken < STREAM {
        let before = taken;
        while rx.try_recv(&mut buffer).is_some() {
            taken += 1;
        }
        if taken != before {
            doorbell_ring(PAGE, 0); // drained: alpha may send again
        }
        let seen = WAKES.load(Ordering::Acquire);
        if taken < STREAM && rx.request_doorbell() {
            irq::wait_until(|| WAKES.load(Ordering::Acquire) != seen);
        }
    }
    flags()
        .stream_end
        .store(timer::physical_now(), Ordering::Relaxed);
    flags().stream_taken.store(1, Ordering::Release);
}
