//! The flag-word gate tested without guest-lib's help. guest-lib's IRQ
//! vector re-checks the mask flag and holds an interrupt back itself, so a
//! gate that let interrupts through while masked would go unnoticed in its
//! guests. This guest installs its own vector table, whose IRQ entry only
//! acknowledges, records and ends what it is given (INTID, and whether the
//! flag was set at that moment), with PSTATE.I clear all along:
//!
//! - `rawgate: masked taken_while_masked=<n> after=<intids>`: the flag set,
//!   five self-SGIs of different priorities and a timer interrupt arrive;
//!   none may be taken while the flag is set; after the unmask protocol
//!   (clear the flag, IRQ_UNMASK if the pending bit is set) all six arrive
//!   once each, most urgent first;
//! - `rawgate: window first=<intid> after=<intids>`: two urgent SGIs are
//!   deferred, then the flag is cleared without the hypercall (the window
//!   a guest has between its store and its look at the pending bit) and
//!   the less urgent timer fires: the deferred SGIs must still come first
//!   (the hypervisor's fast path may not list the timer ahead of them).
//!
//! Then `rawgate: done` and exit 0.
#![no_std]
#![no_main]

use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use core::time::Duration;

use guest_lib::abi::{call, control};
use guest_lib::gic::{self, SgiTargets};
use guest_lib::{hvc, println, timer};

guest_lib::entry!(main);

global_asm!(
    r#"
.section .text.rawgate_vectors, "ax"
.balign 2048
.global rawgate_vectors
rawgate_vectors:
    .rept 5
    .balign 128
    b       rawgate_other
    .endr
    .balign 128
    b       rawgate_irq                 /* current EL, SP_ELx, IRQ */
    .rept 10
    .balign 128
    b       rawgate_other
    .endr

rawgate_irq:
    sub     sp, sp, #176
    stp     x0, x1, [sp, #0]
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x29, [sp, #144]
    str     x30, [sp, #160]
    bl      rawgate_record
    ldp     x0, x1, [sp, #0]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x29, [sp, #144]
    ldr     x30, [sp, #160]
    add     sp, sp, #176
    eret

rawgate_other:
    b       rawgate_other
"#
);

unsafe extern "C" {
    static rawgate_vectors: u8;
}

/// The control page, from VERSION.
static PAGE: AtomicUsize = AtomicUsize::new(0);
/// What the vector took, in order (INTIDs), and how many while masked.
static TAKEN: [AtomicU32; 16] = [const { AtomicU32::new(0) }; 16];
static COUNT: AtomicUsize = AtomicUsize::new(0);
static WHILE_MASKED: AtomicUsize = AtomicUsize::new(0);

fn page() -> &'static control::ControlPage {
    // SAFETY: the control page's address from VERSION: a page of normal
    // memory the hypervisor maps into this partition for its lifetime.
    unsafe { &*(PAGE.load(Ordering::Relaxed) as *const control::ControlPage) }
}

/// The IRQ vector's only work: acknowledge, record, end, until nothing is
/// pending. Integer code only (the interrupted code's FP state is not saved).
#[unsafe(no_mangle)]
extern "C" fn rawgate_record() {
    loop {
        let intid: u64;
        // SAFETY: acknowledging (ICC_IAR1_EL1) is what an IRQ vector does.
        unsafe { asm!("mrs {}, s3_0_c12_c12_0", out(reg) intid, options(nostack)) };
        let intid = (intid & 0xff_ffff) as u32;
        if intid >= 1020 {
            return;
        }
        if page().mask[0].load(Ordering::Acquire) != 0 {
            WHILE_MASKED.fetch_add(1, Ordering::Relaxed);
        }
        if intid == 27 {
            // The timer: off, so it does not fire again.
            // SAFETY: this CPU's own virtual timer control.
            unsafe { asm!("msr cntv_ctl_el0, xzr", "isb", options(nostack)) };
        }
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        if let Some(slot) = TAKEN.get(n) {
            slot.store(intid, Ordering::Relaxed);
        }
        // SAFETY: ending the interrupt just acknowledged (EOImode 0).
        unsafe { asm!("msr s3_0_c12_c12_1, {}", in(reg) u64::from(intid), options(nostack)) };
    }
}

/// vCPU 0's mask byte.
fn mask(on: bool) {
    let value = if on { control::MASKED } else { 0 };
    page().mask[0].store(value, Ordering::Release);
}

/// The unmask protocol: clear the flag, then one hypercall only if the
/// hypervisor holds something.
fn unmask() {
    mask(false);
    if page().pending[0].load(Ordering::Acquire) & control::PENDING_DEFERRED != 0 {
        hvc::call(call::IRQ_UNMASK, []);
    }
}

fn timer_in(ticks: u64) {
    let deadline = timer::now() + ticks;
    // SAFETY: programs this CPU's own virtual timer.
    unsafe {
        asm!("msr cntv_cval_el0, {}", "msr cntv_ctl_el0, {}", "isb",
             in(reg) deadline, in(reg) 1u64, options(nostack))
    };
}

fn taken() -> ([u32; 16], usize) {
    let n = COUNT.load(Ordering::Relaxed).min(16);
    (
        core::array::from_fn(|i| TAKEN[i].load(Ordering::Relaxed)),
        n,
    )
}

/// Waits until `n` interrupts were taken, or 1 s (a loaded host may hold
/// back QEMU's timer callback for milliseconds).
fn wait_for_taken(n: usize) {
    let deadline = timer::now() + timer::ticks(Duration::from_secs(1));
    while COUNT.load(Ordering::Relaxed) < n && timer::now() < deadline {
        core::hint::spin_loop();
    }
}

fn reset() {
    COUNT.store(0, Ordering::Relaxed);
    WHILE_MASKED.store(0, Ordering::Relaxed);
}

struct Intids([u32; 16], usize);

impl core::fmt::Display for Intids {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (i, intid) in self.0[..self.1].iter().enumerate() {
            write!(f, "{}{}", if i == 0 { "" } else { "," }, intid)?;
        }
        Ok(())
    }
}

fn main() -> ! {
    let [_, _, _, page_ipa] = hvc::call(call::VERSION, []);
    PAGE.store(page_ipa as usize, Ordering::Relaxed);
    // SGIs 1..6 with priorities 0x50, 0x10, 0x40, 0x20, 0x30; the timer
    // least urgent of all.
    let sgis = [(1, 0x50), (2, 0x10), (3, 0x40), (4, 0x20), (5, 0x30)];
    for (intid, priority) in sgis {
        let _ = gic::enable_with_priority(intid, priority);
    }
    let _ = gic::enable_with_priority(27, 0xf0);
    // SAFETY: this guest's own vector table, aligned as VBAR_EL1 needs.
    unsafe {
        asm!("msr vbar_el1, {}", "isb", in(reg) &raw const rawgate_vectors, options(nostack));
        asm!("msr daifclr, #2", options(nostack));
    }

    // 1. Nothing taken while masked; all of it, in priority order, after.
    reset();
    mask(true);
    for (intid, _) in sgis {
        let _ = gic::send_sgi(SgiTargets::List(1), intid);
    }
    timer_in(timer::ticks(Duration::from_micros(200)));
    timer::delay(Duration::from_millis(5));
    let while_masked = COUNT.load(Ordering::Relaxed);
    unmask();
    wait_for_taken(sgis.len() + 1);
    timer::delay(Duration::from_millis(5)); // and nothing more
    let (order, n) = taken();
    println!(
        "rawgate: masked taken_while_masked={} flagged={} after={}",
        while_masked,
        WHILE_MASKED.load(Ordering::Relaxed),
        Intids(order, n)
    );

    // 2. The window between clearing the flag and the hypercall.
    reset();
    mask(true);
    let _ = gic::send_sgi(SgiTargets::List(1), 2);
    let _ = gic::send_sgi(SgiTargets::List(1), 4);
    timer::delay(Duration::from_millis(1));
    mask(false); // no IRQ_UNMASK: the deferred SGIs stay in the queue
    timer_in(timer::ticks(Duration::from_micros(200)));
    wait_for_taken(3);
    timer::delay(Duration::from_millis(5)); // and nothing more
    let (order, n) = taken();
    println!(
        "rawgate: window first={} after={}",
        if n > 0 { order[0] } else { 0 },
        Intids(order, n)
    );
    println!("rawgate: done");
    guest_lib::exit(0)
}
