//! Two partitions talking through channels (tests/configs/channel.toml):
//! partition 0 (`alpha`) sends 100,000 messages over the ring at
//! 0x7000_0000 and partition 1 (`beta`) echoes each one's sequence number
//! back over the ring at 0x7000_1000, each side waiting for the other
//! with a doorbell (INTID 48) only when its ring is empty. Flow control:
//! alpha keeps at most `WINDOW` messages unanswered, below either ring's
//! capacity.
//!
//! Every message carries its sequence number and a payload of its own
//! length and bytes, all checked on arrival: a lost, reordered,
//! duplicated or corrupted message counts as bad. Half-way beta restarts
//! its partition (PSCI SYSTEM_RESET); its second boot finds the rings as
//! they were (shared regions are not reloaded) and goes on from the
//! message after the last it took. The flag page at 0x7000_2000 holds
//! what both sides need across that restart.
//!
//! Then alpha rings a channel it does not have through its doorbell page
//! and through the DOORBELL call (both refused, counted as
//! `doorbell-refused`), while beta counts its doorbell interrupts (none
//! may arrive); then one ring of its real channel through the call, which
//! beta must take. Each side prints what it saw (`channel: ...`) and exits
//! with code 0.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;

use guest_lib::abi::{Counter, Status, call, doorbell, psci};
use guest_lib::channel::{MESSAGE_MAX, Receiver, Sender, doorbell_ring, doorbell_ring_call};
use guest_lib::{gic, hvc, irq, println, timer};

guest_lib::entry!(main);

/// alpha -> beta, beta -> alpha, and the flags.
const RING_AB: usize = 0x7000_0000;
const RING_BA: usize = 0x7000_1000;
const FLAGS: usize = 0x7000_2000;
const RING_SIZE: usize = 0x1000;
/// Both partitions' doorbell page; each rings channel 0 (the other).
const PAGE: usize = 0x0a00_0000;
/// The doorbell each side receives.
const DOORBELL_INTID: u32 = 48;

const MESSAGES: u64 = 100_000;
const WINDOW: u64 = 16;
/// Beta restarts once it has taken this many.
const RESTART_AT: u64 = MESSAGES / 2;

/// The flag page's words.
#[repr(C)]
struct Flags {
    /// Beta's boots so far.
    beta_boots: AtomicU64,
    /// Messages beta has taken (and echoed): where its next boot goes on.
    beta_taken: AtomicU64,
    /// Beta counted its doorbells: alpha may ring the wrong channels (1);
    /// beta counted what they brought: alpha may ring the right one (2).
    beta_ready: AtomicU64,
    /// Alpha rang the wrong channels.
    alpha_rang: AtomicU64,
}

fn flags() -> &'static Flags {
    // SAFETY: the flag page is a shared region both partitions map
    // read-write, zeroed at boot and never reloaded; only atomics in it.
    unsafe { &*(FLAGS as *const Flags) }
}

static DOORBELLS: AtomicU64 = AtomicU64::new(0);
static TIMED_OUT: AtomicBool = AtomicBool::new(false);

fn on_doorbell(_intid: u32) {
    DOORBELLS.fetch_add(1, Ordering::Relaxed);
}

/// Message `seq`: its sequence number, then `seq % 53` bytes of its own.
fn message(seq: u64, out: &mut [u8; MESSAGE_MAX]) -> usize {
    out[..8].copy_from_slice(&seq.to_le_bytes());
    let extra = (seq % 53) as usize;
    for (i, byte) in out[8..8 + extra].iter_mut().enumerate() {
        *byte = (seq as u8).wrapping_mul(31).wrapping_add(i as u8);
    }
    8 + extra
}

/// Whether `got` is exactly message `seq`.
fn is_message(seq: u64, got: &[u8]) -> bool {
    let mut expected = [0; MESSAGE_MAX];
    let len = message(seq, &mut expected);
    got == &expected[..len]
}

/// The sequence number a message starts with.
fn seq_of(got: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(got.get(..8)?.try_into().ok()?))
}

/// Waits for the next doorbell after `seen` (or the deadline).
fn wait_doorbell(seen: u64) {
    irq::wait_until(|| {
        DOORBELLS.load(Ordering::Relaxed) != seen || TIMED_OUT.load(Ordering::Relaxed)
    });
}

fn give_up(what: core::fmt::Arguments) -> ! {
    println!("channel: timed out {what}");
    guest_lib::exit(1)
}

fn main() -> ! {
    let partition = hvc::vcpu_info().map_or(u64::MAX, |info| info.partition);
    let _ = irq::register(DOORBELL_INTID, on_doorbell);
    let _ = gic::enable(DOORBELL_INTID);
    timer::start_one_shot(Duration::from_secs(120), |_| {
        TIMED_OUT.store(true, Ordering::Relaxed)
    });
    irq::enable();
    match partition {
        0 => alpha(),
        1 => beta(),
        _ => println!("channel: not under Bulkhead"),
    }
    guest_lib::exit(0)
}

fn alpha() {
    // SAFETY: the rings are shared regions mapped read-write in both
    // partitions, alpha the only producer of one and consumer of the other.
    let (mut tx, mut rx) = unsafe {
        (
            Sender::attach(RING_AB, RING_SIZE, PAGE, 0).expect("ring a->b"),
            Receiver::attach(RING_BA, RING_SIZE).expect("ring b->a"),
        )
    };
    // SAFETY: a 32-bit read of the doorbell page's CHANNELS register
    // (emulated; Device memory in guest-lib's identity map).
    let channels = unsafe { ((PAGE + doorbell::CHANNELS) as *const u32).read_volatile() };
    println!("channel: alpha may ring {channels} channel(s)");
    let (mut sent, mut echoed, mut bad) = (0u64, 0u64, 0u64);
    let mut buffer = [0; MESSAGE_MAX];
    let start = timer::now();
    while echoed < MESSAGES {
        while sent < MESSAGES && sent - echoed < WINDOW {
            let len = message(sent, &mut buffer);
            if tx.try_send(&buffer[..len]).is_err() {
                bad += 1; // the window is below the ring's capacity
                break;
            }
            sent += 1;
        }
        let mut any = false;
        while let Some(len) = rx.try_recv(&mut buffer) {
            any = true;
            if len != 8 || seq_of(&buffer[..len]) != Some(echoed) {
                bad += 1;
            }
            echoed += 1;
        }
        if !any {
            let seen = DOORBELLS.load(Ordering::Relaxed);
            if rx.request_doorbell() {
                wait_doorbell(seen);
            }
        }
        if TIMED_OUT.load(Ordering::Relaxed) {
            give_up(format_args!("at sent={sent} echoed={echoed}"));
        }
    }
    let ticks = timer::now() - start;
    println!("channel: alpha sent {sent} echoed {echoed} bad {bad}");
    println!("channel: alpha round trips ticks {ticks}");

    // The wrong channels, once beta counted its doorbells.
    while flags().beta_ready.load(Ordering::Acquire) == 0 {
        if TIMED_OUT.load(Ordering::Relaxed) {
            give_up(format_args!("waiting for beta to count"));
        }
        core::hint::spin_loop();
    }
    doorbell_ring(PAGE, 5);
    let refused = doorbell_ring_call(9);
    let wide = hvc::call(call::DOORBELL, [1 << 32]);
    let counted = hvc::call(call::EXIT_COUNT, [Counter::DoorbellRefused as u64])[1];
    println!(
        "channel: alpha wrong channels call={refused:?} wide={:?} refused={counted}",
        Status::from_reg(wide[0])
    );
    flags().alpha_rang.store(1, Ordering::Release);
    // The right channel by call, once beta has counted what reached it.
    while flags().beta_ready.load(Ordering::Acquire) != 2 {
        if TIMED_OUT.load(Ordering::Relaxed) {
            give_up(format_args!("waiting for beta to count again"));
        }
        core::hint::spin_loop();
    }
    let right = doorbell_ring_call(0);
    println!("channel: alpha rang channel 0 by call: {right:?}");
    flags().alpha_rang.store(2, Ordering::Release);
}

fn beta() {
    let boot = flags().beta_boots.fetch_add(1, Ordering::AcqRel) + 1;
    // SAFETY: as alpha's, the other way round.
    let (mut rx, mut tx) = unsafe {
        (
            Receiver::attach(RING_AB, RING_SIZE).expect("ring a->b"),
            Sender::attach(RING_BA, RING_SIZE, PAGE, 0).expect("ring b->a"),
        )
    };
    let mut taken = flags().beta_taken.load(Ordering::Acquire);
    println!("channel: beta boot {boot} goes on from message {taken}");
    let mut bad = 0u64;
    let mut buffer = [0; MESSAGE_MAX];
    while taken < MESSAGES {
        if boot == 1 && taken == RESTART_AT {
            println!("channel: beta restarts after {taken}");
            // Its partition only: the rings and the flags stay.
            let _ = hvc::call(psci::SYSTEM_RESET, []);
        }
        match rx.try_recv(&mut buffer) {
            Some(len) => {
                if !is_message(taken, &buffer[..len]) {
                    bad += 1;
                }
                if tx.try_send(&taken.to_le_bytes()).is_err() {
                    bad += 1;
                }
                taken += 1;
                flags().beta_taken.store(taken, Ordering::Release);
            }
            None => {
                let seen = DOORBELLS.load(Ordering::Relaxed);
                if rx.request_doorbell() {
                    wait_doorbell(seen);
                }
                if TIMED_OUT.load(Ordering::Relaxed) {
                    give_up(format_args!("in beta at {taken}"));
                }
            }
        }
    }
    println!("channel: beta took {taken} bad {bad} boots {boot}");

    // Alpha's wrong channels must not reach this partition.
    let before = DOORBELLS.load(Ordering::Relaxed);
    flags().beta_ready.store(1, Ordering::Release);
    while flags().alpha_rang.load(Ordering::Acquire) == 0 {
        if TIMED_OUT.load(Ordering::Relaxed) {
            give_up(format_args!("waiting for the wrong rings"));
        }
        core::hint::spin_loop();
    }
    // A while for anything they would have sent here.
    timer::delay(Duration::from_millis(20));
    let after_wrong = DOORBELLS.load(Ordering::Relaxed) - before;
    flags().beta_ready.store(2, Ordering::Release);
    irq::wait_until(|| {
        DOORBELLS.load(Ordering::Relaxed) != before || TIMED_OUT.load(Ordering::Relaxed)
    });
    println!(
        "channel: beta doorbells during the wrong rings {after_wrong}, then {}",
        DOORBELLS.load(Ordering::Relaxed) - before
    );
}
