//! The virtual hardware held to the architecture where an interrupt can be
//! lost, a withdrawal ignored or state leak out (tests/configs/fidelity.toml:
//! two vCPUs, the PL031 passed through). Each check prints one line
//! `fidelity: <check> <figures>`, then `fidelity: done`:
//!
//! - `timer_resend ticks=<n>`: the virtual timer set pending by software
//!   (GICR_ISPENDR0, as Linux's IRQ resend does) while it also fires, then
//!   330 ms of a 10 ms timer: it must keep ticking (about 33);
//! - `rtc_resend alarms=<n>`: the PL031's SPI set pending by software while
//!   its alarm fires, then a second alarm: both arrive (2);
//! - `icpendr_sgi ran=<n> pending=<p>`: an SGI pending in a list register,
//!   cleared with ICPENDR0: never taken, reads not pending (0 0);
//! - `icenabler_sgi while_disabled=<n> after_enable=<m>`: an SGI pending,
//!   then disabled: not taken until enabled again (0 1);
//! - `icpendr_spi ran=<n>`: the PL031's alarm taken by the hypervisor,
//!   then the device cleared and ICPENDR written: never taken (0);
//! - `icactiver_sgi active=<a>`: inside its handler an SGI clears its own
//!   active state with ICACTIVER0, and reads it back (0);
//! - `cpu_off_timer ticks=<n>`: vCPU 1 powers off with its timer's
//!   interrupt forwarded and pending, then is started again and runs a
//!   10 ms timer for 300 ms: it ticks (about 30);
//! - `cpu_off_in_handler rpr=<hex> sgis=<n>`: vCPU 1 powers off inside an
//!   SGI handler, is started again, reads ICC_RPR_EL1 (idle: 0xff) and
//!   takes 10 SGIs (10);
//! - `irouter_none before=<n> after=<m>`: the PL031's SPI routed to an
//!   affinity no vCPU has: its alarm is delivered to nobody (0), then,
//!   routed to vCPU 0, once (1);
//! - `sgi0r refused=<n> received=<m>`: a group 0 SGI (ICC_SGI0R_EL1) to
//!   vCPU 1: reaches nobody (every SGI is group 1) and is counted (1 0);
//! - `group1_off while_off=<n> after_on=<m>`: with GICD_CTLR.EnableGrp1
//!   clear, an SGI sent to vCPU 1 (running) stays pending; once the
//!   group is enabled again it arrives, once (0 1);
//! - `cpu_suspend status=<s>`: PSCI CPU_SUSPEND, standby: SUCCESS (0);
//! - `pmu pmccntr_undefined=<b> actlr=<v> set_way_ok=<b>`: the performance
//!   monitors are not the guest's (true), ACTLR_EL1 reads as zero, data
//!   cache maintenance by set/way does nothing and takes no exception;
//! - `ptimer ticks=<n> vticks=<m> undefined=<b>`: the EL1 physical timer
//!   (CNTP_*, PPI 30) and the virtual timer, each periodic at 10 ms for
//!   300 ms side by side: both tick at the guest's own vector (about 30
//!   each), and no CNTP_* access is UNDEFINED (false);
//! - `ispendr_timer v_fired=<a> v_cleared=<b> p_fired=<c> p_cleared=<d>
//!   other_fired=<e> other_cleared=<f>`: each timer's PPI disabled, the
//!   timer made to fire: GICR_ISPENDR0 reads it pending (1), and not
//!   pending once the timer is stopped (0); the same for vCPU 1's virtual
//!   timer read by vCPU 0 through vCPU 1's redistributor (1 0);
//! - `level_drop daif=<a> flag=<b> eoi_first=<c>`: the PL031's level
//!   interrupt raised while the guest masks IRQs (`daif`: PSTATE.I; `flag`:
//!   the control page's flag word), its device cleared before it unmasks:
//!   no handler runs for it (0 0); and a handler that ends the interrupt
//!   before it clears its device runs once per alarm (1);
//! - `level_plain alarms=<n> sysreg_traps=<t>`: an alarm taken while the
//!   guest runs with IRQs unmasked: handled once (1) without any trapped
//!   system-register access (0).
#![no_std]
#![no_main]

use core::arch::asm;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;

use guest_lib::abi::{Counter, psci};
use guest_lib::exception::probe;
use guest_lib::gic::{self, SgiTargets};
use guest_lib::{hvc, irq, pl031, println, smp, timer};

guest_lib::entry!(main);

const GICD: usize = 0x0800_0000;
const GICR: usize = 0x080A_0000;
/// One redistributor: RD_base and SGI_base, 64 KiB each.
const GICR_STRIDE: usize = 0x2_0000;
const SGI_BASE: usize = 0x1_0000;
const ISPENDR: usize = 0x200;
const ICPENDR: usize = 0x280;
const ISACTIVER: usize = 0x300;
const ICACTIVER: usize = 0x380;
const GICD_IROUTER: usize = 0x6000;

const RTC_INTID: u32 = pl031::INTID;
const VTIMER: u32 = 27;
const PTIMER: u32 = 30;

fn mmio_read(addr: usize) -> u32 {
    // SAFETY: a 32-bit register of the partition's own virtual GIC,
    // Device memory in guest-lib's identity map.
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

fn mmio_write(addr: usize, value: u32) {
    // SAFETY: as for `mmio_read`.
    unsafe { core::ptr::write_volatile(addr as *mut u32, value) }
}

fn mmio_write64(addr: usize, value: u64) {
    // SAFETY: as for `mmio_read`; IROUTER is a 64-bit register.
    unsafe { core::ptr::write_volatile(addr as *mut u64, value) }
}

/// This vCPU's redistributor SGI frame register at `offset`.
fn sgi_frame(offset: usize) -> usize {
    GICR + guest_lib::cpu_index() * GICR_STRIDE + SGI_BASE + offset
}

/// GICD's bank register at `bank` for `intid`, and its bit.
fn gicd_bit(bank: usize, intid: u32) -> (usize, u32) {
    (GICD + bank + (intid / 32) as usize * 4, 1 << (intid % 32))
}

fn delay_ms(ms: u64) {
    timer::delay(Duration::from_millis(ms));
}

static TICKS: AtomicU64 = AtomicU64::new(0);
static ALARMS: AtomicU64 = AtomicU64::new(0);
static SGIS: AtomicU64 = AtomicU64::new(0);
static ACTIVE_SEEN: AtomicU64 = AtomicU64::new(u64::MAX);
static RESULT: AtomicU64 = AtomicU64::new(u64::MAX);
static RESULT2: AtomicU64 = AtomicU64::new(u64::MAX);

fn tick(_: u64) {
    TICKS.fetch_add(1, Ordering::Relaxed);
}

fn on_alarm(_: u32) {
    pl031::clear();
    ALARMS.fetch_add(1, Ordering::Relaxed);
}

fn on_sgi(_: u32) {
    SGIS.fetch_add(1, Ordering::Relaxed);
}

fn on_sgi_clears_its_active_state(intid: u32) {
    mmio_write(sgi_frame(ICACTIVER), 1 << intid);
    let active = mmio_read(sgi_frame(ISACTIVER)) >> intid & 1;
    ACTIVE_SEEN.store(u64::from(active), Ordering::Relaxed);
}

/// Waits up to `ms` for `done`, interrupts enabled.
fn wait_for(ms: u64, done: impl Fn() -> bool) {
    let end = timer::now() + timer::ticks(Duration::from_millis(ms));
    while !done() && timer::now() < end {
        core::hint::spin_loop();
    }
}

fn timer_resend() {
    irq::disable();
    timer::start_periodic(Duration::from_millis(10), tick);
    mmio_write(sgi_frame(ISPENDR), 1 << VTIMER);
    // The timer fires meanwhile: its physical interrupt meets the software one.
    delay_ms(25);
    irq::enable();
    delay_ms(5);
    TICKS.store(0, Ordering::Relaxed);
    delay_ms(330);
    timer::stop();
    println!(
        "fidelity: timer_resend ticks={}",
        TICKS.load(Ordering::Relaxed)
    );
}

fn rtc_resend() {
    let _ = irq::register(RTC_INTID, on_alarm);
    let _ = gic::enable(RTC_INTID);
    irq::disable();
    let (ispendr, bit) = gicd_bit(ISPENDR, RTC_INTID);
    mmio_write(ispendr, bit);
    pl031::arm_alarm(1);
    delay_ms(1500);
    irq::enable();
    wait_for(1000, || ALARMS.load(Ordering::Relaxed) >= 1);
    pl031::arm_alarm(1);
    wait_for(3000, || ALARMS.load(Ordering::Relaxed) >= 2);
    pl031::mask();
    println!(
        "fidelity: rtc_resend alarms={}",
        ALARMS.load(Ordering::Relaxed)
    );
}

fn icpendr_sgi() {
    let _ = irq::register(4, on_sgi);
    let _ = gic::enable(4);
    SGIS.store(0, Ordering::Relaxed);
    irq::disable();
    let me = 1 << guest_lib::cpu_index();
    let _ = gic::send_sgi(SgiTargets::List(me), 4);
    mmio_write(sgi_frame(ICPENDR), 1 << 4);
    let pending = mmio_read(sgi_frame(ISPENDR)) >> 4 & 1;
    irq::enable();
    delay_ms(2);
    println!(
        "fidelity: icpendr_sgi ran={} pending={}",
        SGIS.load(Ordering::Relaxed),
        pending
    );
}

fn icenabler_sgi() {
    let _ = irq::register(5, on_sgi);
    let _ = gic::enable(5);
    SGIS.store(0, Ordering::Relaxed);
    irq::disable();
    let me = 1 << guest_lib::cpu_index();
    let _ = gic::send_sgi(SgiTargets::List(me), 5);
    let _ = gic::disable(5);
    irq::enable();
    delay_ms(2);
    let while_disabled = SGIS.load(Ordering::Relaxed);
    let _ = gic::enable(5);
    delay_ms(2);
    println!(
        "fidelity: icenabler_sgi while_disabled={} after_enable={}",
        while_disabled,
        SGIS.load(Ordering::Relaxed)
    );
}

fn icpendr_spi() {
    let _ = gic::enable(RTC_INTID);
    let before = ALARMS.load(Ordering::Relaxed);
    irq::disable();
    pl031::arm_alarm(1);
    delay_ms(1500);
    // The alarm came (the hypervisor took it): clear the device, then the
    // interrupt's pending state.
    pl031::mask();
    pl031::clear();
    let (icpendr, bit) = gicd_bit(ICPENDR, RTC_INTID);
    mmio_write(icpendr, bit);
    irq::enable();
    delay_ms(10);
    println!(
        "fidelity: icpendr_spi ran={}",
        ALARMS.load(Ordering::Relaxed) - before
    );
}

fn icactiver_sgi() {
    let _ = irq::register(6, on_sgi_clears_its_active_state);
    let _ = gic::enable(6);
    let me = 1 << guest_lib::cpu_index();
    let _ = gic::send_sgi(SgiTargets::List(me), 6);
    wait_for(100, || ACTIVE_SEEN.load(Ordering::Relaxed) != u64::MAX);
    println!(
        "fidelity: icactiver_sgi active={}",
        ACTIVE_SEEN.load(Ordering::Relaxed)
    );
}

fn affinity_off(vcpu: u64) -> bool {
    hvc::call(psci::AFFINITY_INFO_64, [vcpu, 0])[0] == psci::AFFINITY_OFF
}

fn start(entry: fn(usize) -> !) {
    wait_for(2000, || affinity_off(1));
    if smp::start_cpu(1, entry).is_err() {
        println!("fidelity: vCPU 1 did not start");
    }
}

fn cpu_off() -> ! {
    hvc::call(psci::CPU_OFF, []);
    println!("fidelity: CPU_OFF returned");
    guest_lib::exit(1)
}

/// vCPU 1, first life: its timer's interrupt forwarded and waiting in a
/// list register (IRQs masked), then CPU_OFF.
fn off_with_timer_pending(_: usize) -> ! {
    irq::disable();
    timer::start_periodic(Duration::from_millis(10), tick);
    delay_ms(25);
    cpu_off()
}

/// vCPU 1, second life: a 10 ms timer for 300 ms.
fn count_ticks(_: usize) -> ! {
    TICKS.store(0, Ordering::Relaxed);
    timer::start_periodic(Duration::from_millis(10), tick);
    irq::enable();
    delay_ms(300);
    timer::stop();
    RESULT.store(TICKS.load(Ordering::Relaxed), Ordering::Release);
    irq::disable();
    cpu_off()
}

fn cpu_off_timer() {
    start(off_with_timer_pending);
    start(count_ticks);
    wait_for(3000, || RESULT.load(Ordering::Acquire) != u64::MAX);
    println!(
        "fidelity: cpu_off_timer ticks={}",
        RESULT.swap(u64::MAX, Ordering::AcqRel)
    );
}

fn off_in_handler(_: u32) {
    cpu_off()
}

/// vCPU 1: powers off inside the handler of SGI 2.
fn wait_for_sgi_2(_: usize) -> ! {
    let _ = irq::register(2, off_in_handler);
    let _ = gic::enable(2);
    irq::enable();
    loop {
        guest_lib::wfi();
    }
}

/// vCPU 1, after that: its running priority, then SGIs.
fn after_off_in_handler(_: usize) -> ! {
    let rpr: u64;
    // SAFETY: reading ICC_RPR_EL1 (the running priority) has no effect.
    unsafe { asm!("mrs {}, s3_0_c12_c11_3", out(reg) rpr, options(nomem, nostack)) };
    RESULT2.store(rpr, Ordering::Release);
    let _ = irq::register(3, on_sgi);
    let _ = gic::enable(3);
    // SGI 2 powers it off again when vCPU 0 is done.
    let _ = irq::register(2, off_in_handler);
    let _ = gic::enable(2);
    irq::enable();
    loop {
        guest_lib::wfi();
    }
}

fn cpu_off_in_handler() {
    start(wait_for_sgi_2);
    delay_ms(20);
    let _ = gic::send_sgi(SgiTargets::List(1 << 1), 2);
    start(after_off_in_handler);
    wait_for(2000, || RESULT2.load(Ordering::Acquire) != u64::MAX);
    delay_ms(5);
    SGIS.store(0, Ordering::Relaxed);
    for n in 1..=10 {
        let _ = gic::send_sgi(SgiTargets::List(1 << 1), 3);
        wait_for(100, || SGIS.load(Ordering::Relaxed) >= n);
    }
    println!(
        "fidelity: cpu_off_in_handler rpr={:#x} sgis={}",
        RESULT2.load(Ordering::Acquire),
        SGIS.load(Ordering::Relaxed)
    );
    let _ = gic::send_sgi(SgiTargets::List(1 << 1), 2);
}

fn irouter_none() {
    let irouter = GICD + GICD_IROUTER + 8 * RTC_INTID as usize;
    let _ = gic::enable(RTC_INTID);
    let before = ALARMS.load(Ordering::Relaxed);
    mmio_write64(irouter, 0x77);
    pl031::arm_alarm(1);
    delay_ms(1500);
    let while_unrouted = ALARMS.load(Ordering::Relaxed) - before;
    mmio_write64(irouter, guest_lib::mpidr() & 0xff_00ff_ffff);
    wait_for(500, || ALARMS.load(Ordering::Relaxed) > before);
    pl031::mask();
    println!(
        "fidelity: irouter_none before={} after={}",
        while_unrouted,
        ALARMS.load(Ordering::Relaxed) - before
    );
}

/// vCPU 1: counts SGI 7 until vCPU 0 is done with it (`LISTENING`
/// cleared), then powers off. It spins rather than wait in WFI (which
/// traps): an SGI then reaches it through the hypervisor's fast path.
fn listen_for_sgi_7(_: usize) -> ! {
    let _ = irq::register(7, on_sgi);
    let _ = gic::enable(7);
    LISTENING.store(true, Ordering::Release);
    RESULT.store(0, Ordering::Release);
    irq::enable();
    while LISTENING.load(Ordering::Acquire) {
        core::hint::spin_loop();
    }
    irq::disable();
    cpu_off()
}

static LISTENING: AtomicBool = AtomicBool::new(false);

fn sgi0r() {
    SGIS.store(0, Ordering::Relaxed);
    start(listen_for_sgi_7);
    wait_for(2000, || RESULT.load(Ordering::Acquire) == 0);
    let refused = || hvc::exit_count(Counter::SgiRefused).unwrap_or(0);
    let before = refused();
    let value = (7u64 << 24) | 1 << 1; // SGI 7, TargetList {vCPU 1}
    // SAFETY: writing ICC_SGI0R_EL1 only asks for an SGI.
    unsafe { asm!("msr s3_0_c12_c11_7, {}", "isb", in(reg) value, options(nomem, nostack)) };
    delay_ms(5);
    println!(
        "fidelity: sgi0r refused={} received={}",
        refused() - before,
        SGIS.load(Ordering::Relaxed)
    );
    RESULT.store(u64::MAX, Ordering::Release);
}

/// After `sgi0r`: vCPU 1 still counts SGI 7 in `SGIS`.
fn group1_off() {
    const GICD_CTLR_ENABLE_GRP1: u32 = 1 << 1;
    const GICD_CTLR_RWP: u32 = 1 << 31;
    let set_ctlr = |value: u32| {
        mmio_write(GICD, value);
        while mmio_read(GICD) & GICD_CTLR_RWP != 0 {
            core::hint::spin_loop();
        }
    };
    let ctlr = mmio_read(GICD);
    SGIS.store(0, Ordering::Relaxed);
    set_ctlr(ctlr & !GICD_CTLR_ENABLE_GRP1);
    let _ = gic::send_sgi(SgiTargets::List(1 << 1), 7);
    delay_ms(5);
    let while_off = SGIS.load(Ordering::Relaxed);
    set_ctlr(ctlr | GICD_CTLR_ENABLE_GRP1);
    wait_for(50, || SGIS.load(Ordering::Relaxed) > 0);
    delay_ms(5);
    println!(
        "fidelity: group1_off while_off={} after_on={}",
        while_off,
        SGIS.load(Ordering::Relaxed)
    );
    LISTENING.store(false, Ordering::Release);
}

fn cpu_suspend() {
    let status = hvc::call(psci::CPU_SUSPEND_64, [0, 0, 0])[0] as i64;
    println!("fidelity: cpu_suspend status={}", status);
}

fn pmu() {
    let (_, pmccntr) = probe(|| {
        let value: u64;
        // SAFETY: a read of the cycle counter; under Bulkhead it is UNDEFINED.
        unsafe { asm!("mrs {}, pmccntr_el0", out(reg) value, options(nomem, nostack)) };
        value
    });
    let (actlr, actlr_exception) = probe(|| {
        let value: u64;
        // SAFETY: reading ACTLR_EL1 has no effect.
        unsafe { asm!("mrs {}, actlr_el1", out(reg) value, options(nomem, nostack)) };
        value
    });
    let ((), set_way) = probe(|| {
        // SAFETY: clean and invalidate by set/way of set 0, way 0, level 1:
        // at worst it writes back and drops lines this guest wrote.
        unsafe { asm!("dc cisw, {}", in(reg) 0u64, options(nostack)) };
    });
    println!(
        "fidelity: pmu pmccntr_undefined={} actlr={:#x} actlr_exception={} set_way_ok={}",
        pmccntr.is_some_and(|esr| esr >> 26 == 0),
        actlr,
        actlr_exception.is_some(),
        set_way.is_none()
    );
}

// ---- the EL1 physical timer, ISPENDR of forwarded PPIs ---------------------

/// CNTP_CTL_EL0.ENABLE (IMASK clear: the interrupt is signalled).
const CNT_CTL_ENABLE: u64 = 1;
/// The physical timer's period, in counter ticks (set before it starts).
static PTIMER_PERIOD: AtomicU64 = AtomicU64::new(0);
static PTICKS: AtomicU64 = AtomicU64::new(0);

fn cntp_ctl(value: u64) {
    // SAFETY: programs this vCPU's own EL1 physical timer.
    unsafe { asm!("msr cntp_ctl_el0, {}", "isb", in(reg) value, options(nomem, nostack)) };
}

fn cntp_cval(value: u64) {
    // SAFETY: as for `cntp_ctl`.
    unsafe { asm!("msr cntp_cval_el0, {}", "isb", in(reg) value, options(nomem, nostack)) };
}

fn cntp_cval_read() -> u64 {
    let value: u64;
    // SAFETY: reading the deadline has no effect.
    unsafe { asm!("mrs {}, cntp_cval_el0", out(reg) value, options(nomem, nostack)) };
    value
}

fn cntp_tval_read() -> u64 {
    let value: u64;
    // SAFETY: reading the timer value has no effect.
    unsafe { asm!("mrs {}, cntp_tval_el0", out(reg) value, options(nomem, nostack)) };
    value
}

fn cntv_ctl(value: u64) {
    // SAFETY: programs this vCPU's own EL1 virtual timer.
    unsafe { asm!("msr cntv_ctl_el0, {}", "isb", in(reg) value, options(nomem, nostack)) };
}

fn cntv_cval(value: u64) {
    // SAFETY: as for `cntv_ctl`.
    unsafe { asm!("msr cntv_cval_el0, {}", "isb", in(reg) value, options(nomem, nostack)) };
}

/// The PPI 30 handler: the next deadline one period on (the interrupt is
/// level: moved before the end of interrupt), then a tick.
fn on_ptimer(_: u32) {
    let period = PTIMER_PERIOD.load(Ordering::Relaxed);
    let now = timer::physical_now();
    let mut next = cntp_cval_read() + period;
    if next <= now {
        next = now + period;
    }
    cntp_cval(next);
    PTICKS.fetch_add(1, Ordering::Relaxed);
}

fn ptimer() {
    let ((), undefined) = probe(|| {
        // A TVAL read first: under a hypervisor that does not give EL1 the
        // physical timer it is UNDEFINED, and nothing is programmed.
        let _ = cntp_tval_read();
    });
    TICKS.store(0, Ordering::Relaxed);
    PTICKS.store(0, Ordering::Relaxed);
    if undefined.is_none() {
        let period = timer::ticks(Duration::from_millis(10));
        PTIMER_PERIOD.store(period, Ordering::Relaxed);
        let _ = irq::register(PTIMER, on_ptimer);
        let _ = gic::enable(PTIMER);
        irq::disable();
        cntp_cval(timer::physical_now() + period);
        cntp_ctl(CNT_CTL_ENABLE);
        timer::start_periodic(Duration::from_millis(10), tick);
        irq::enable();
        delay_ms(300);
        irq::disable();
        cntp_ctl(0);
        timer::stop();
        irq::enable();
    }
    println!(
        "fidelity: ptimer ticks={} vticks={} undefined={}",
        PTICKS.load(Ordering::Relaxed),
        TICKS.load(Ordering::Relaxed),
        undefined.is_some()
    );
}

/// Bit `intid` of GICR_ISPENDR0 of vCPU `vcpu`'s redistributor.
fn private_pending(vcpu: usize, intid: u32) -> u32 {
    mmio_read(GICR + vcpu * GICR_STRIDE + SGI_BASE + ISPENDR) >> intid & 1
}

/// Disables `intid` (a timer PPI of this vCPU), makes the timer fire with
/// `arm`, reads its pending bit, stops it with `stop` and reads again.
fn fired_then_cleared(intid: u32, arm: fn(), stop: fn()) -> (u32, u32) {
    let me = guest_lib::cpu_index();
    let _ = gic::disable(intid);
    arm();
    delay_ms(2);
    let fired = private_pending(me, intid);
    stop();
    delay_ms(2);
    (fired, private_pending(me, intid))
}

fn vtimer_fire_now() {
    cntv_cval(0);
    cntv_ctl(CNT_CTL_ENABLE);
}

fn vtimer_stop() {
    cntv_ctl(0);
}

/// vCPU 1: its virtual timer's PPI disabled and the timer fired, until
/// vCPU 0 has read its pending bit (`OTHER` 1, then 2); stopped, until
/// vCPU 0 has read it again (3).
static OTHER: AtomicU64 = AtomicU64::new(0);

fn fire_for_vcpu_0(_: usize) -> ! {
    irq::disable();
    let _ = gic::disable(VTIMER);
    vtimer_fire_now();
    OTHER.store(1, Ordering::Release);
    while OTHER.load(Ordering::Acquire) != 2 {
        core::hint::spin_loop();
    }
    vtimer_stop();
    OTHER.store(3, Ordering::Release);
    while OTHER.load(Ordering::Acquire) != 4 {
        core::hint::spin_loop();
    }
    cpu_off()
}

fn ispendr_timer() {
    irq::disable();
    let (v_fired, v_cleared) = fired_then_cleared(VTIMER, vtimer_fire_now, vtimer_stop);
    // Probed: where the physical timer is UNDEFINED, it never fires (0 0).
    let ((p_fired, p_cleared), _) = probe(|| {
        fired_then_cleared(
            PTIMER,
            || {
                cntp_cval(0);
                cntp_ctl(CNT_CTL_ENABLE);
            },
            || cntp_ctl(0),
        )
    });
    irq::enable();
    OTHER.store(0, Ordering::Release);
    start(fire_for_vcpu_0);
    wait_for(2000, || OTHER.load(Ordering::Acquire) == 1);
    delay_ms(2);
    let other_fired = private_pending(1, VTIMER);
    OTHER.store(2, Ordering::Release);
    wait_for(2000, || OTHER.load(Ordering::Acquire) == 3);
    delay_ms(2);
    let other_cleared = private_pending(1, VTIMER);
    OTHER.store(4, Ordering::Release);
    println!(
        "fidelity: ispendr_timer v_fired={} v_cleared={} p_fired={} p_cleared={} \
         other_fired={} other_cleared={}",
        v_fired, v_cleared, p_fired, p_cleared, other_fired, other_cleared
    );
}

// ---- a level interrupt whose line drops before it is acknowledged ---------

static LEVEL_HITS: AtomicU64 = AtomicU64::new(0);

/// Counts the alarm; clears and masks the device so that a level line
/// never stays high (this handler should not run in most checks).
fn on_level(_: u32) {
    pl031::clear();
    pl031::mask();
    LEVEL_HITS.fetch_add(1, Ordering::Relaxed);
}

/// Ends the interrupt first, then clears the device: the line is still high
/// at the end of interrupt, so the GIC raises it again, and it has dropped
/// by the time the handler returns.
fn on_level_eoi_first(intid: u32) {
    irq::end_now(intid);
    delay_ms(1);
    pl031::clear();
    LEVEL_HITS.fetch_add(1, Ordering::Relaxed);
}

/// Arms the alarm a second ahead and waits (IRQs as the caller left them)
/// until the device raised it, then a little more, so the hypervisor has
/// taken the physical interrupt.
fn raise_alarm() {
    pl031::arm_alarm(1);
    let end = timer::now() + timer::ticks(Duration::from_millis(3000));
    while !pl031::raised() && timer::now() < end {
        core::hint::spin_loop();
    }
    delay_ms(5);
}

fn level_drop() {
    let _ = irq::register(RTC_INTID, on_level);
    let _ = gic::enable(RTC_INTID);

    LEVEL_HITS.store(0, Ordering::Relaxed);
    irq::disable();
    raise_alarm();
    pl031::clear();
    pl031::mask();
    irq::enable();
    delay_ms(10);
    let daif = LEVEL_HITS.load(Ordering::Relaxed);

    LEVEL_HITS.store(0, Ordering::Relaxed);
    let masked = irq::mask();
    raise_alarm();
    pl031::clear();
    pl031::mask();
    irq::unmask(masked);
    delay_ms(10);
    let flag = LEVEL_HITS.load(Ordering::Relaxed);

    let _ = irq::register(RTC_INTID, on_level_eoi_first);
    LEVEL_HITS.store(0, Ordering::Relaxed);
    pl031::arm_alarm(1);
    wait_for(3000, || LEVEL_HITS.load(Ordering::Relaxed) >= 1);
    delay_ms(10);
    pl031::mask();
    let eoi_first = LEVEL_HITS.load(Ordering::Relaxed);
    println!(
        "fidelity: level_drop daif={} flag={} eoi_first={}",
        daif, flag, eoi_first
    );
}

fn level_plain() {
    let _ = irq::register(RTC_INTID, on_level);
    let _ = gic::enable(RTC_INTID);
    LEVEL_HITS.store(0, Ordering::Relaxed);
    let traps = || hvc::exit_count(Counter::SysReg).unwrap_or(0);
    let before = traps();
    pl031::arm_alarm(1);
    wait_for(3000, || LEVEL_HITS.load(Ordering::Relaxed) >= 1);
    delay_ms(10);
    let during = traps() - before;
    println!(
        "fidelity: level_plain alarms={} sysreg_traps={}",
        LEVEL_HITS.load(Ordering::Relaxed),
        during
    );
}

fn main() -> ! {
    timer_resend();
    rtc_resend();
    icpendr_sgi();
    icenabler_sgi();
    icpendr_spi();
    icactiver_sgi();
    cpu_off_timer();
    cpu_off_in_handler();
    irouter_none();
    sgi0r();
    group1_off();
    cpu_suspend();
    pmu();
    ptimer();
    ispendr_timer();
    level_drop();
    level_plain();
    println!("fidelity: done");
    guest_lib::exit(0)
}
