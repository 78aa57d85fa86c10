//! Aims SGIs outside its partition, beside `test-sgi-listener`: after
//! ~0.5 s it sends SGI 5 to TargetList bit 5 (a vCPU it does not have),
//! SGI 6 to Aff1 = 1, TargetList bit 0 (likewise; on a GICv2, which has
//! no affinity levels, to CPU interface 7), and SGI 7 to itself,
//! which must arrive. Under Bulkhead the first two are refused and counted
//! (`sender: refused=2 self_received=1`); natively they reach no CPU and
//! there is no counter (`refused=unsupported`). A few beats later it prints
//! `sender: still running` and exits with code 0.
//!
//! With a second vCPU (natively: with -smp 2 or more) it also sends SGI 8
//! to vCPU 1 and prints `sender: sibling_received=1`.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;

use guest_lib::abi::Counter;
use guest_lib::gic::{self, SgiTargets};
use guest_lib::{hvc, irq, println, smp, timer};

guest_lib::entry!(main);

const BEAT: Duration = Duration::from_millis(100);
/// The beat at which the SGIs go out (~0.5 s: the listener is up by then).
const SEND_AT: u64 = 5;
/// Beats after sending until the report, and until "still running".
const REPORT_AFTER: u64 = 1;
const RUNNING_AFTER: u64 = 3;

const TO_ABSENT_VCPU: u32 = 5;
const TO_OTHER_CLUSTER: u32 = 6;
const TO_SELF: u32 = 7;
const TO_SIBLING: u32 = 8;
/// ICC_SGI1R_EL1.Aff1 (bits 23:16) = 1.
const AFF1_1: u64 = 1 << 16;

static BEATS: AtomicU64 = AtomicU64::new(0);
static SELF_RECEIVED: AtomicU64 = AtomicU64::new(0);
static SIBLING_RECEIVED: AtomicU64 = AtomicU64::new(0);

fn main() -> ! {
    let _ = irq::register(TO_SELF, |_| {
        SELF_RECEIVED.fetch_add(1, Ordering::Relaxed);
    });
    let _ = gic::enable(TO_SELF);
    let sibling = smp::start_cpu(1, sibling).is_ok();
    timer::start_periodic(BEAT, |count| BEATS.store(count, Ordering::Relaxed));
    wait_beats(SEND_AT);

    // SGIs 5..9 are below 16: `send_sgi` cannot fail.
    let _ = gic::send_sgi(SgiTargets::List(1 << 5), TO_ABSENT_VCPU);
    // A GICv2 has no clusters: there, CPU interface 7, which no vCPU of
    // this partition has, instead.
    if gic::send_sgi_raw(SgiTargets::List(1 << 0).sgi1r(TO_OTHER_CLUSTER) | AFF1_1).is_err() {
        let _ = gic::send_sgir_raw(SgiTargets::List(1 << 7).sgir(TO_OTHER_CLUSTER));
    }
    let _ = gic::send_sgi(SgiTargets::List(1 << 0), TO_SELF);
    if sibling {
        let _ = gic::send_sgi(SgiTargets::List(1 << 1), TO_SIBLING);
    }

    wait_beats(SEND_AT + REPORT_AFTER);
    match hvc::exit_count(Counter::SgiRefused) {
        Some(refused) => println!(
            "sender: refused={} self_received={}",
            refused,
            SELF_RECEIVED.load(Ordering::Relaxed)
        ),
        None => println!(
            "sender: refused=unsupported self_received={}",
            SELF_RECEIVED.load(Ordering::Relaxed)
        ),
    }
    if sibling {
        println!(
            "sender: sibling_received={}",
            SIBLING_RECEIVED.load(Ordering::Relaxed)
        );
    }
    wait_beats(SEND_AT + RUNNING_AFTER);
    println!("sender: still running");
    guest_lib::exit(0)
}

fn wait_beats(beats: u64) {
    irq::wait_until(|| BEATS.load(Ordering::Relaxed) >= beats);
}

/// vCPU 1, if there is one: counts SGI 8.
fn sibling(_cpu: usize) -> ! {
    let _ = irq::register(TO_SIBLING, |_| {
        SIBLING_RECEIVED.fetch_add(1, Ordering::Relaxed);
    });
    let _ = gic::enable(TO_SIBLING);
    guest_lib::idle()
}
