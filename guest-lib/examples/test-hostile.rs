//! A hostile guest (tests/configs/hostile.toml, and its GICv2 twins
//! gicv2-hostile.toml and rpi4-hostile.toml): every vCPU it has (two
//! there) runs its own deterministic pseudo-random stream (xorshift64,
//! seeded from one printed seed) of everything a guest can throw at the
//! hypervisor, while its timer ticks, its passed-through PL031 (where the
//! board has one) raises alarms, its console prints and vCPU 0 powers the
//! others off and on again. Beside it a neighbour (test-neighbour.rs)
//! checks that none of this reaches it.
//!
//! It finds out at start what it runs on: the GIC's version from
//! guest-lib's detection (ID_AA64PFR0_EL1.GIC), and whether the partition
//! has the PL031 by reading its identification register under
//! `exception::probe` (an address the partition has nothing at takes a
//! synchronous external abort: the Raspberry Pi 4 has no PL031). Both are
//! printed on the first line (`gic=3|2 rtc=1|0`).
//!
//! Each operation is one of ([`Kind`]; where a GICv2 makes it another
//! operation, that one's name is printed, after the `/`):
//!
//! - `gic_write`, `gic_read`: a random access to the partition's virtual
//!   GIC at every width and offset: GICv3, its distributor and every
//!   redistributor frame it has; GICv2, its distributor (4 KiB, trapped
//!   and emulated; byte accesses to IPRIORITYR and ITARGETSR among them)
//!   and its CPU interface (the GICV frame, not trapped: the hardware's
//!   virtual CPU interface answers); `withdraw`: ISPENDR/ICPENDR/
//!   ISENABLER/ICENABLER/ISACTIVER/ICACTIVER writes aimed at its SGIs, its
//!   timer (INTID 27, forwarded) and an SPI: the PL031's (34, passed
//!   through), or without one the emulated PL011's (33); on a GICv2 its
//!   own SGIs and PPIs only (the distributor banks them per CPU
//!   interface);
//! - `sgi1r` / `sgir`: ICC_SGI1R_EL1 writes, mostly valid encodings (its
//!   own vCPUs, absent ones, broadcast, other clusters), some random;
//!   GICv2: GICD_SGIR writes, mostly valid (TargetListFilter 0 with target
//!   lists naming its own and absent CPU interfaces, 1, 2, the reserved 3,
//!   NSATT set or not); `sgi_other` / `pendsgir`: ICC_SGI0R_EL1 and
//!   ICC_ASGI1R_EL1; GICv2: random SPENDSGIR/CPENDSGIR accesses, and
//!   checked ones on a disabled SGI (pended from a source it reads pending
//!   from it and in ISPENDR0; clearing every source leaves it pending from
//!   none);
//! - `hvc`, `smc`: Bulkhead, PSCI and SMCCC calls with random arguments
//!   (CPU_SUSPEND, CPU_ON of itself, random function numbers, garbage in
//!   the upper half of x0), never the ones that end it on purpose;
//! - `control`: garbage in its control page (flag and pending words,
//!   magic, reserved space);
//! - `console`: real lines through CONSOLE_WRITE and through the emulated
//!   PL011, lines too long for the console, refused writes, random PL011
//!   register accesses (at most [`LINES_MAX`] lines in all);
//! - `isv0`: accesses the syndrome does not describe (pairs, pre- and
//!   post-indexed, exclusives, SIMD&FP) to the GIC's emulated frames and
//!   the PL011: each must take a synchronous external abort (EC 0x25, DFSC
//!   0x10, FAR the address), caught with `exception::probe`;
//! - `sext`, `xzr`, `acqrel`: sign-extending loads, xzr/wzr as the
//!   register, load-acquire/store-release, each checked against a value
//!   the same vCPU wrote;
//! - `pmu` (must be UNDEFINED; PMUSERENR_EL0 reads 0 and ignores writes),
//!   `debug` (the guest's own: no exception),
//!   `actlr` (reads 0), `set_way` (no exception), `icc` (the virtual CPU
//!   interface: priority mask, acknowledges, EOIs, active priorities,
//!   EOImode; on a GICv2 through the GICV frame, and the ICC_* system
//!   registers must be UNDEFINED: EC 0x0 at EL1), `impdef`
//!   (implementation-defined registers and the EL1 physical timer),
//!   `pl031` (only with the PL031: immediate and later alarms, random
//!   registers, its SPI set pending and cleared); `unbacked`: reads and
//!   writes of every width at addresses the partition has nothing at
//!   (below its RAM, clear of its devices, and above it), and calls to
//!   them: each must take a synchronous external abort (data: EC 0x25,
//!   DFSC 0x10, WnR, FAR the address; fetch: EC 0x21, IFSC 0x10), caught
//!   with `exception::probe`, and the guest carries on.
//!
//! Operations run with IRQs masked; between two of them each vCPU opens an
//! interrupt window, where its timer ticks, alarms and SGIs are taken, and
//! every 64 it puts back what it needs of its interrupt state (the random
//! writes may have disabled, demoted or rerouted anything). vCPU 0
//! orchestrates CPU_OFF/CPU_ON cycles of the others: a vCPU powers off
//! from its loop, from an SGI handler or from its timer handler.
//!
//! The number of operations is `BULKHEAD_HOSTILE_OPS` at build time
//! (default 100,000, in total over the vCPUs), the seed
//! `BULKHEAD_HOSTILE_SEED`. At the end vCPU 0 prints the counts of every
//! kind of operation it has (`pl031` only with the PL031) and of every
//! outcome as `key=value` lines, then `hostile: survived <n> operations`,
//! and exits with code 0 (1 if a vCPU stopped answering).
#![no_std]
#![no_main]

use core::arch::asm;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use core::time::Duration;

use guest_lib::abi::{board, bulkhead_call, call, control, psci};
use guest_lib::exception::probe;
use guest_lib::gic::{self, INTID_LIMIT, SgiTargets};
use guest_lib::{hvc, irq, pl031, println, smp, timer};

guest_lib::entry!(main);

// --- Configuration -----------------------------------------------------------

/// Operations in total, over every vCPU.
const OPERATIONS: u64 = match option_env!("BULKHEAD_HOSTILE_OPS") {
    Some(text) => number(text),
    None => 100_000,
};
/// The seed every vCPU's stream derives from.
const SEED: u64 = match option_env!("BULKHEAD_HOSTILE_SEED") {
    Some(text) => number(text),
    None => 0x9e37_79b9_7f4a_7c15,
};
/// The most vCPUs this guest drives (it uses as many as its partition
/// has, up to this: two in tests/configs/hostile.toml).
const CPUS: usize = 4;
/// Console lines the whole run may print (so the output stays small).
const LINES_MAX: u64 = 1500;
/// Each vCPU's timer period.
const TICK: Duration = Duration::from_millis(1);
/// Each vCPU restores the interrupt state it relies on this often.
const REPAIR_EVERY: u64 = 64;
/// A vCPU asked to power off from a handler does it from its loop if no
/// handler did within this many of its own operations.
const GRACE: u64 = 256;

/// A decimal or `0x` hexadecimal number (with optional `_`), at compile time.
const fn number(text: &str) -> u64 {
    let bytes = text.as_bytes();
    let (radix, mut i) = if bytes.len() > 2 && bytes[0] == b'0' && bytes[1] == b'x' {
        (16, 2)
    } else {
        (10, 0)
    };
    assert!(i < bytes.len(), "not a number");
    let mut value: u64 = 0;
    while i < bytes.len() {
        let b = bytes[i];
        i += 1;
        let digit = match b {
            b'_' => continue,
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' if radix == 16 => b - b'a' + 10,
            b'A'..=b'F' if radix == 16 => b - b'A' + 10,
            _ => panic!("not a number"),
        };
        value = value * radix + digit as u64;
    }
    value
}

// --- The partition's devices -------------------------------------------------

const GICD: u64 = 0x0800_0000;
const GICD_SIZE: u64 = 0x1_0000;
const GICR: u64 = 0x080A_0000;
/// One redistributor: RD_base, then SGI_base, 64 KiB each.
const GICR_STRIDE: u64 = 0x2_0000;
const SGI_FRAME: u64 = 0x1_0000;
const GICD_CTLR_ARE_G1: u32 = (1 << 4) | (1 << 1);
const IGROUPR: u64 = 0x080;
const ISENABLER: u64 = 0x100;
const ICENABLER: u64 = 0x180;
const ISPENDR: u64 = 0x200;
const ICPENDR: u64 = 0x280;
const ISACTIVER: u64 = 0x300;
const ICACTIVER: u64 = 0x380;
const IPRIORITYR: u64 = 0x400;
const GICD_IROUTER: u64 = 0x6000;
const GICR_WAKER: u64 = 0x014;
/// IPRIORITYR of SGIs 8..11 in every SGI frame: each vCPU's own for the
/// checked accesses, which the random ones leave alone.
const CHECKED_PRIORITY: u64 = IPRIORITYR + 8;

/// The emulated PL011 (`console_pl011`).
const PL011: u64 = 0x0900_0000;
const PL011_SIZE: u64 = 0x1000;
/// Per vCPU, a PL011 register that reads back what was written (IBRD,
/// FBRD, IFLS): its checked accesses; the random ones leave them alone.
const PL011_CHECKED: [u64; CPUS] = [0x024, 0x028, 0x034, 0x02c];

/// The PL031's SPI, the virtual timer's PPI, and the SGI that asks a vCPU
/// to power off from its handler.
const RTC: u32 = pl031::INTID;
const VTIMER: u32 = timer::VIRTUAL_TIMER_INTID;
const SGI_OFF: u32 = 15;
/// RTCRIS: the alarm's raw status.
const RTCRIS: usize = 0x014;
const RTCLR: usize = 0x008;
/// RTCPeriphID0: the low byte of the part number, 0x31.
const PL031_PERIPH_ID0: usize = 0xfe0;

/// The emulated PL011's SPI: the SPI the GIC operations aim at when the
/// partition has no PL031.
const PL011_SPI: u32 = board::CONSOLE_PL011_INTID;

// A virtual GICv2 (Arm IHI 0048B), at QEMU virt's addresses on every
// GICv2 board: the distributor (4 KiB, emulated) and the CPU interface
// (the GICV frame, 8 KiB, mapped: its accesses do not trap).
const GICD_V2_SIZE: u64 = 0x1000;
const GICC: u64 = board::GUEST_GICV2_CPU_INTERFACE.as_u64();
const GICC_SIZE: u64 = 0x2000;
const GICD_ITARGETSR: u64 = 0x800;
const GICD_ICFGR: u64 = 0xc00;
const GICD_SGIR: u64 = 0xf00;
const GICD_CPENDSGIR: u64 = 0xf10;
const GICD_SPENDSGIR: u64 = 0xf20;
/// GICD_SGIR: TargetListFilter [25:24], CPUTargetList [23:16], NSATT [15].
const SGIR_FILTER_SHIFT: u32 = 24;
const SGIR_TARGETS_SHIFT: u32 = 16;
const SGIR_NSATT: u32 = 1 << 15;
const GICC_CTLR: u64 = 0x00;
const GICC_PMR: u64 = 0x04;
const GICC_BPR: u64 = 0x08;
const GICC_IAR: u64 = 0x0c;
const GICC_EOIR: u64 = 0x10;
const GICC_RPR: u64 = 0x14;
const GICC_HPPIR: u64 = 0x18;
const GICC_ABPR: u64 = 0x1c;
const GICC_AIAR: u64 = 0x20;
const GICC_AHPPIR: u64 = 0x28;
const GICC_APR0: u64 = 0xd0;
const GICC_IIDR: u64 = 0xfc;
const GICC_DIR: u64 = 0x1000;
/// GICC_CTLR: EnableGrp0 [0] (what guest-lib sets), FIQEn [3] (group 0
/// as FIQ: never set, this guest takes no FIQ), EOImode [9].
const GICC_CTLR_ENABLE_GRP0: u32 = 1 << 0;
const GICC_CTLR_FIQEN: u32 = 1 << 3;
const GICC_CTLR_EOIMODE: u32 = 1 << 9;
/// The INTID of an acknowledge (bits 12:10 are an SGI's source).
const GICC_IAR_INTID: u32 = 0x3ff;

/// The partition's GIC is a GICv2 (set once by vCPU 0 at start).
static GICV2: AtomicBool = AtomicBool::new(false);
/// The partition has the PL031 (probed once by vCPU 0 at start).
static HAS_RTC: AtomicBool = AtomicBool::new(false);

fn v2() -> bool {
    GICV2.load(Ordering::Relaxed)
}

fn has_rtc() -> bool {
    HAS_RTC.load(Ordering::Relaxed)
}

/// The SPI the GIC operations aim at: the PL031's, or the PL011's.
fn spi() -> u32 {
    if has_rtc() { RTC } else { PL011_SPI }
}

/// What the partition has: its GIC's version (guest-lib found it at boot)
/// and whether a PL031 answers with its part number (PeriphID0 0x31) at
/// its address, or the access aborts (nothing there).
fn discover() {
    GICV2.store(gic::version() == gic::Version::V2, Ordering::Relaxed);
    let (id, esr) = probe(|| pl031::read(PL031_PERIPH_ID0));
    HAS_RTC.store(esr.is_none() && id & 0xff == 0x31, Ordering::Relaxed);
}

fn vcpus() -> usize {
    VCPUS.load(Ordering::Relaxed)
}

/// One of the partition's vCPUs, at random.
fn any_vcpu(rng: &mut Rng) -> usize {
    rng.below(vcpus() as u64) as usize
}

fn own_sgi_frame(v: usize) -> u64 {
    GICR + v as u64 * GICR_STRIDE + SGI_FRAME
}

fn gicd_bank(bank: u64, intid: u32) -> (u64, u32) {
    (GICD + bank + u64::from(intid / 32) * 4, 1 << (intid % 32))
}

// --- Counting ----------------------------------------------------------------

macro_rules! kinds {
    ($($kind:ident = $name:literal $(/ $v2:literal)?, $weight:literal;)*) => {
        /// The kinds of operation, with their names (on a GICv3, on a
        /// GICv2) and weights (per mille).
        #[derive(Clone, Copy, PartialEq, Eq)]
        #[repr(usize)]
        enum Kind { $($kind),* }
        const KIND_NAMES: &[&str] = &[$($name),*];
        const KIND_NAMES_V2: &[&str] = &[$(kinds!(@v2 $name $(, $v2)?)),*];
        const KIND_WEIGHTS: &[u64] = &[$($weight),*];
        const KIND_ALL: &[Kind] = &[$(Kind::$kind),*];
    };
    (@v2 $name:literal) => { $name };
    (@v2 $name:literal, $v2:literal) => { $v2 };
}

kinds! {
    GicWrite = "gic_write", 180;
    GicRead = "gic_read", 120;
    Withdraw = "withdraw", 80;
    Sgi1r = "sgi1r" / "sgir", 120;
    SgiOther = "sgi_other" / "pendsgir", 20;
    Hvc = "hvc", 80;
    Smc = "smc", 20;
    Control = "control", 40;
    Console = "console", 15;
    Isv0 = "isv0", 60;
    Sext = "sext", 40;
    Xzr = "xzr", 30;
    AcqRel = "acqrel", 20;
    Pmu = "pmu", 30;
    Debug = "debug", 30;
    Actlr = "actlr", 15;
    SetWay = "set_way", 15;
    Icc = "icc", 30;
    ImpDef = "impdef", 15;
    Pl031 = "pl031", 20;
    Unbacked = "unbacked", 20;
}

impl Kind {
    /// Whether this partition has what the kind needs (the PL031).
    fn available(self) -> bool {
        self != Kind::Pl031 || has_rtc()
    }
}

/// Kind `k`'s name on this GIC.
fn kind_name(k: usize) -> &'static str {
    if v2() {
        KIND_NAMES_V2[k]
    } else {
        KIND_NAMES[k]
    }
}

const KINDS: usize = KIND_NAMES.len();
const _: () = {
    let mut sum = 0;
    let mut i = 0;
    while i < KINDS {
        sum += KIND_WEIGHTS[i];
        i += 1;
    }
    assert!(sum == 1000);
};

macro_rules! events {
    ($($event:ident = $name:literal;)*) => {
        /// Outcomes and events, counted over the whole partition.
        #[derive(Clone, Copy)]
        #[repr(usize)]
        enum Ev { $($event),* }
        const EVENT_NAMES: &[&str] = &[$($name),*];
    };
}

events! {
    // Interrupts taken.
    Ticks = "ticks";
    Alarms = "alarms";
    AlarmsSoftware = "alarms_sw";
    AlarmRearms = "alarm_rearms";
    Sgis = "sgis";
    OffSgis = "off_sgis";
    Ppis = "ppis";
    Spis = "spis";
    // Power.
    OffRequests = "off_requests";
    OffLoop = "off_loop";
    OffSgiHandler = "off_in_sgi_handler";
    OffTimerHandler = "off_in_timer_handler";
    OffFallback = "off_fallback";
    OffReturned = "off_returned";
    CpuOn = "cpu_on";
    CpuOnRefused = "cpu_on_refused";
    Cycles = "cycles";
    Stuck = "stuck";
    // Console.
    Lines = "lines";
    Pl011Lines = "pl011_lines";
    LongLines = "long_lines";
    ConsoleRefused = "refused";
    Pl011Regs = "pl011_regs";
    // Calls.
    CallsOk = "calls_ok";
    CallsError = "calls_error";
    // Checks: `*_bad` must stay 0.
    Isv0Aborts = "isv0_aborts";
    Isv0Bad = "isv0_bad";
    ExclStoreFailed = "excl_store_failed";
    ExclStoreBad = "excl_store_bad";
    UnbackedAborts = "unbacked_aborts";
    UnbackedFetches = "unbacked_fetches";
    UnbackedBad = "unbacked_bad";
    DcVaAborts = "dc_va_aborts";
    DcVaDone = "dc_va_done";
    SextChecked = "sext_checked";
    SextBad = "sext_bad";
    XzrChecked = "xzr_checked";
    XzrBad = "xzr_bad";
    AcqRelChecked = "acqrel_checked";
    AcqRelBad = "acqrel_bad";
    PmuUndefined = "pmu_undefined";
    PmuBad = "pmu_bad";
    DebugDone = "debug_done";
    DebugBad = "debug_bad";
    ActlrBad = "actlr_bad";
    SetWayBad = "set_way_bad";
    IccDone = "icc_done";
    IccUndefined = "icc_undefined";
    IccBad = "icc_bad";
    PendSgirChecked = "pendsgir_checked";
    PendSgirBad = "pendsgir_bad";
    ImpDefUndefined = "impdef_undefined";
    ImpDefDone = "impdef_done";
    CntpUndefined = "cntp_undefined";
    CntpDone = "cntp_done";
    Repairs = "repairs";
}

const EVENTS: usize = EVENT_NAMES.len();

static OPS: [[AtomicU64; KINDS]; CPUS] = [const { [const { AtomicU64::new(0) }; KINDS] }; CPUS];
static EVENT: [AtomicU64; EVENTS] = [const { AtomicU64::new(0) }; EVENTS];

fn count(event: Ev) {
    EVENT[event as usize].fetch_add(1, Ordering::Relaxed);
}

fn counted(event: Ev) -> u64 {
    EVENT[event as usize].load(Ordering::Relaxed)
}

/// Says what a failed check, to be counted as `bad`, saw: the first few
/// of each only.
fn say_bad(bad: Ev, what: fmt::Arguments) {
    if counted(bad) < 4 {
        println!("hostile: bad {}", what);
    }
}

/// `good` when `ok`, else `bad`.
fn check(ok: bool, good: Ev, bad: Ev) {
    count(if ok { good } else { bad });
}

// --- Shared state --------------------------------------------------------------

/// Operations claimed so far, over all vCPUs.
static CLAIMED: AtomicU64 = AtomicU64::new(0);
/// Each vCPU's stream, kept across its lives.
static STREAM: [AtomicU64; CPUS] = [const { AtomicU64::new(0) }; CPUS];
/// Each vCPU's lives (CPU_ON starts one).
static LIVES: [AtomicU64; CPUS] = [const { AtomicU64::new(0) }; CPUS];
/// Set by a vCPU at the start of a life, cleared right before CPU_OFF.
static RUNNING: [AtomicBool; CPUS] = [const { AtomicBool::new(false) }; CPUS];
/// Set by a vCPU once the operations are all claimed.
static FINISHED: [AtomicBool; CPUS] = [const { AtomicBool::new(false) }; CPUS];
/// vCPU 0's request that a vCPU power off, and where.
static OFF_REQUEST: [AtomicU32; CPUS] = [const { AtomicU32::new(0) }; CPUS];
const OFF_NONE: u32 = 0;
const OFF_LOOP: u32 = 1;
const OFF_SGI: u32 = 2;
const OFF_TIMER: u32 = 3;
/// The partition's vCPUs (VCPU_INFO), at most [`CPUS`].
static VCPUS: AtomicUsize = AtomicUsize::new(1);
/// Console lines printed (bounded by [`LINES_MAX`]).
static LINES: AtomicU64 = AtomicU64::new(0);
/// The virtual count at the last alarm (or re-arm).
static LAST_ALARM: AtomicU64 = AtomicU64::new(0);

// --- Randomness ----------------------------------------------------------------

/// xorshift64: deterministic, so a failure can be replayed from the seed.
struct Rng(u64);

impl Rng {
    /// vCPU `v`'s stream: the seed through splitmix64, never 0.
    fn for_vcpu(v: usize) -> Rng {
        let mut z = SEED.wrapping_add((v as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }

    /// A kind by weight, among those the partition has what for.
    fn kind(&mut self) -> Kind {
        loop {
            let mut pick = self.below(1000);
            for (i, &weight) in KIND_WEIGHTS.iter().enumerate() {
                if pick < weight {
                    if KIND_ALL[i].available() {
                        return KIND_ALL[i];
                    }
                    break;
                }
                pick -= weight;
            }
        }
    }
}

// --- Plain accesses --------------------------------------------------------------

/// One aligned access of `size` bytes at `addr` with a plain `str`/`ldr`,
/// so that the trap carries a syndrome the hypervisor can decode.
fn access(addr: u64, size: u64, write: bool, value: u64) -> u64 {
    let mut read = 0;
    // SAFETY: `addr` is inside one of this partition's emulated or
    // passed-through devices (Device memory in guest-lib's map), or at an
    // address the partition has nothing at (the access aborts, under
    // `probe`), aligned to `size`; any value is acceptable to what is
    // being tested.
    unsafe {
        match (size, write) {
            (1, true) => asm!("strb {v:w}, [{a}]", v = in(reg) value, a = in(reg) addr),
            (2, true) => asm!("strh {v:w}, [{a}]", v = in(reg) value, a = in(reg) addr),
            (4, true) => asm!("str {v:w}, [{a}]", v = in(reg) value, a = in(reg) addr),
            (_, true) => asm!("str {v}, [{a}]", v = in(reg) value, a = in(reg) addr),
            (1, false) => asm!("ldrb {v:w}, [{a}]", v = out(reg) read, a = in(reg) addr),
            (2, false) => asm!("ldrh {v:w}, [{a}]", v = out(reg) read, a = in(reg) addr),
            (4, false) => asm!("ldr {v:w}, [{a}]", v = out(reg) read, a = in(reg) addr),
            (_, false) => asm!("ldr {v}, [{a}]", v = out(reg) read, a = in(reg) addr),
        }
    }
    read
}

fn read32(addr: u64) -> u32 {
    access(addr, 4, false, 0) as u32
}

fn write32(addr: u64, value: u32) {
    access(addr, 4, true, u64::from(value));
}

fn read8(addr: u64) -> u8 {
    access(addr, 1, false, 0) as u8
}

fn write8(addr: u64, value: u8) {
    access(addr, 1, true, u64::from(value));
}

// --- System registers ------------------------------------------------------------

/// `mrs` of a register by name, under `probe`: (value, ESR if it trapped).
macro_rules! probe_read {
    ($reg:literal) => {
        probe(|| {
            let value: u64;
            // SAFETY: reading a system register; if the hypervisor or the
            // CPU does not give it to the guest, `probe` takes the exception.
            unsafe { asm!(concat!("mrs {}, ", $reg), out(reg) value, options(nostack)) };
            value
        })
    };
}

/// `msr` of a register by name, under `probe`: the ESR if it trapped.
macro_rules! probe_write {
    ($reg:literal, $value:expr) => {{
        let value: u64 = $value;
        probe(|| {
            // SAFETY: writing a system register with a value chosen not to
            // stop this guest (no debug exception enabled, no group 0
            // interrupt enabled); an UNDEFINED one is taken by `probe`.
            unsafe { asm!(concat!("msr ", $reg, ", {}"), "isb", in(reg) value, options(nostack)) };
        })
        .1
    }};
}

/// The CPU interface state this guest relies on: priority mask open,
/// no binary point, EOImode 0, its group on (GICv3: group 1, GICv2:
/// group 0 as IRQ), no active priority left over.
fn repair_cpu_interface() {
    if v2() {
        write32(GICC + GICC_CTLR, GICC_CTLR_ENABLE_GRP0);
        write32(GICC + GICC_PMR, 0xff);
        write32(GICC + GICC_BPR, 0);
        write32(GICC + GICC_APR0, 0);
        return;
    }
    // SAFETY: programs this vCPU's own (virtual) GIC CPU interface to what
    // guest-lib set at boot; outside any handler no interrupt is active.
    unsafe {
        asm!(
            "mov {t}, #0xff",
            "msr icc_pmr_el1, {t}",
            "msr icc_bpr1_el1, xzr",
            "mrs {t}, icc_ctlr_el1",
            "bic {t}, {t}, #2",
            "msr icc_ctlr_el1, {t}",
            "msr icc_ap1r0_el1, xzr",
            "mov {t}, #1",
            "msr icc_igrpen1_el1, {t}",
            "isb",
            t = out(reg) _,
            options(nostack)
        )
    };
}

// --- Interrupt handlers ------------------------------------------------------------

fn on_stray(intid: u32) {
    count(match intid {
        0..16 => Ev::Sgis,
        16..32 => Ev::Ppis,
        _ => Ev::Spis,
    });
}

fn on_sgi_off(_: u32) {
    count(Ev::OffSgis);
    let v = smp::cpu_index();
    if v < CPUS && OFF_REQUEST[v].load(Ordering::Acquire) == OFF_SGI {
        power_off(v, Ev::OffSgiHandler);
    }
}

fn on_tick(_: u64) {
    count(Ev::Ticks);
    let v = smp::cpu_index();
    if v < CPUS && OFF_REQUEST[v].load(Ordering::Acquire) == OFF_TIMER {
        power_off(v, Ev::OffTimerHandler);
    }
}

fn on_alarm(_: u32) {
    let raised = pl031::read(RTCRIS) & 1 != 0;
    pl031::clear();
    count(if raised {
        Ev::Alarms
    } else {
        Ev::AlarmsSoftware
    });
    if raised {
        LAST_ALARM.store(timer::now(), Ordering::Relaxed);
        // The next one a second later (never at once: that would storm).
        pl031::write(pl031::RTCMR, pl031::read(pl031::RTCDR).wrapping_add(1));
    }
}

/// CPU_OFF for vCPU `v` (itself), from its loop or a handler.
fn power_off(v: usize, why: Ev) {
    OFF_REQUEST[v].store(OFF_NONE, Ordering::Release);
    count(why);
    RUNNING[v].store(false, Ordering::Release);
    hvc::call(psci::CPU_OFF, []);
    // Only a refused CPU_OFF comes back.
    count(Ev::OffReturned);
    RUNNING[v].store(true, Ordering::Release);
}

// --- Every vCPU's loop -------------------------------------------------------------

/// Sets up this vCPU for a life: the interrupts it takes, its timer.
fn start_life(v: usize) {
    LIVES[v].fetch_add(1, Ordering::Relaxed);
    repair(v);
    timer::start_periodic(TICK, on_tick);
    RUNNING[v].store(true, Ordering::Release);
}

/// Puts back what this vCPU relies on: the CPU interface; its SGIs and
/// timer enabled, mid priority and inactive (GICv3: in its redistributor,
/// awake, group 1; GICv2: in the distributor's registers banked for it);
/// its mask byte clear; vCPU 0 also the distributor and, with the PL031,
/// its SPI routed to itself, and an alarm if none came for a while.
fn repair(v: usize) {
    count(Ev::Repairs);
    repair_cpu_interface();
    let private = if v2() {
        GICD
    } else {
        let rd = GICR + v as u64 * GICR_STRIDE;
        let waker = read32(rd + GICR_WAKER);
        if waker & 0b10 != 0 {
            write32(rd + GICR_WAKER, waker & !0b10);
        }
        let sgi = rd + SGI_FRAME;
        write32(sgi + IGROUPR, u32::MAX);
        sgi
    };
    write32(private + ICACTIVER, u32::MAX);
    write8(private + IPRIORITYR + u64::from(SGI_OFF), 0x80);
    write8(private + IPRIORITYR + u64::from(VTIMER), 0x80);
    // Every SGI (the random ones are counted when they arrive) and the timer.
    write32(private + ISENABLER, 0xffff | (1 << VTIMER));
    if let Some(page) = guest_lib::mode::control_page() {
        // SAFETY: the control page, Normal memory mapped for the guest's
        // whole life, page aligned; its flags are atomics.
        let page = unsafe { &*(page as *const control::ControlPage) };
        page.mask[v].store(0, Ordering::Release);
        // The guest's bits of the pending byte cleared too (scribbled).
        let deferred = page.pending[v].load(Ordering::Relaxed) & control::PENDING_DEFERRED;
        page.pending[v].store(deferred, Ordering::Relaxed);
        if deferred != 0 {
            let _ = hvc::irq_unmask();
        }
    }
    if v == 0 {
        repair_distributor();
    }
}

/// vCPU 0's part of [`repair`]: the distributor enabled and, with the
/// PL031, its SPI routed to vCPU 0 (GICv3: IROUTER affinity 0; GICv2:
/// ITARGETSR, CPU interface 0), mid priority, enabled and inactive, and an
/// alarm if none came for a while.
fn repair_distributor() {
    let enabled = if v2() { 1 } else { GICD_CTLR_ARE_G1 };
    if read32(GICD) != enabled {
        write32(GICD, enabled);
    }
    if !has_rtc() {
        return;
    }
    if v2() {
        write8(GICD + GICD_ITARGETSR + u64::from(RTC), 1);
    } else {
        let (igroupr, bit) = gicd_bank(IGROUPR, RTC);
        write32(igroupr, read32(igroupr) | bit);
        access(GICD + GICD_IROUTER + 8 * u64::from(RTC), 8, true, 0);
    }
    write8(GICD + IPRIORITYR + u64::from(RTC), 0x80);
    let (isenabler, bit) = gicd_bank(ISENABLER, RTC);
    write32(isenabler, bit);
    // Left active by an acknowledge under EOImode 1 (or in a handler
    // on another vCPU right now: the hypervisor copes either way).
    let (icactiver, bit) = gicd_bank(ICACTIVER, RTC);
    write32(icactiver, bit);
    let now = timer::now();
    if now.wrapping_sub(LAST_ALARM.load(Ordering::Relaxed)) > 3 * timer::frequency() {
        LAST_ALARM.store(now, Ordering::Relaxed);
        count(Ev::AlarmRearms);
        pl031::arm_alarm(1);
    }
}

/// Takes what is pending: interrupts are masked during operations.
fn interrupt_window() {
    irq::enable();
    // SAFETY: an ISB lets a pending interrupt be taken here.
    unsafe { asm!("isb", options(nostack)) };
    irq::disable();
}

/// Runs operations until they are all claimed. `v` is this vCPU.
fn work(v: usize, cycler: &mut Option<Cycler>) {
    let mut rng = Rng(STREAM[v].load(Ordering::Relaxed));
    let mut own = 0u64;
    let mut off_seen_at = None;
    loop {
        interrupt_window();
        if let Some(cycler) = cycler.as_mut() {
            cycler.step(&mut rng);
        } else {
            match OFF_REQUEST[v].load(Ordering::Acquire) {
                OFF_NONE => off_seen_at = None,
                OFF_LOOP => power_off(v, Ev::OffLoop),
                _ => match off_seen_at {
                    None => off_seen_at = Some(own),
                    Some(at) if own - at > GRACE => power_off(v, Ev::OffFallback),
                    Some(_) => {}
                },
            }
        }
        own += 1;
        if own.is_multiple_of(REPAIR_EVERY) {
            repair(v);
        }
        if CLAIMED.fetch_add(1, Ordering::Relaxed) >= OPERATIONS {
            break;
        }
        let kind = rng.kind();
        operation(kind, v, &mut rng);
        OPS[v][kind as usize].fetch_add(1, Ordering::Relaxed);
        STREAM[v].store(rng.0, Ordering::Relaxed);
    }
    STREAM[v].store(rng.0, Ordering::Relaxed);
}

fn operation(kind: Kind, v: usize, rng: &mut Rng) {
    match kind {
        Kind::GicWrite => gic_access(v, rng, true),
        Kind::GicRead => gic_access(v, rng, false),
        Kind::Withdraw => withdraw(v, rng),
        Kind::Sgi1r if v2() => {
            let _ = gic::send_sgir_raw(sgir_value(rng));
        }
        Kind::Sgi1r => {
            let _ = gic::send_sgi_raw(sgi1r_value(rng));
        }
        Kind::SgiOther if v2() => pendsgir(v, rng),
        Kind::SgiOther => sgi_other(rng),
        Kind::Hvc => random_call(v, rng, false),
        Kind::Smc => random_call(v, rng, true),
        Kind::Control => control_page(rng),
        Kind::Console => console(v, rng),
        Kind::Isv0 => isv0(v, rng),
        Kind::Sext => sign_extension(v, rng),
        Kind::Xzr => zero_register(v, rng),
        Kind::AcqRel => acquire_release(v, rng),
        Kind::Pmu => pmu(rng),
        Kind::Debug => debug(rng),
        Kind::Actlr => actlr(rng),
        Kind::SetWay => set_way(rng),
        Kind::Icc if v2() => icc_v2(rng),
        Kind::Icc => icc(rng),
        Kind::ImpDef => impdef(rng),
        Kind::Pl031 => rtc(rng),
        Kind::Unbacked => unbacked(rng),
    }
}

// --- vCPU 0: CPU_OFF / CPU_ON cycles ---------------------------------------------------

#[derive(Clone, Copy)]
enum Phase {
    /// On; the next request after this many of vCPU 0's steps.
    Running { next: u64 },
    /// Asked to power off at this step.
    Requested { since: u64 },
    /// CPU_ON accepted at this step.
    Starting { since: u64 },
}

/// vCPU 0's view of the others' power cycles.
struct Cycler {
    step: u64,
    phase: [Phase; CPUS],
}

/// A vCPU that has not done its part of a cycle after this many of vCPU
/// 0's steps is reported stuck.
const STUCK_AFTER: u64 = 50_000;

impl Cycler {
    fn new() -> Cycler {
        Cycler {
            step: 0,
            phase: [Phase::Running { next: 200 }; CPUS],
        }
    }

    fn step(&mut self, rng: &mut Rng) {
        self.step += 1;
        for s in 1..vcpus() {
            self.phase[s] = match self.phase[s] {
                Phase::Running { next }
                    if self.step >= next && !FINISHED[s].load(Ordering::Acquire) =>
                {
                    let mode = [OFF_LOOP, OFF_SGI, OFF_TIMER][rng.below(3) as usize];
                    OFF_REQUEST[s].store(mode, Ordering::Release);
                    if mode == OFF_SGI {
                        let _ = gic::send_sgi(SgiTargets::List(1 << s), SGI_OFF);
                    }
                    count(Ev::OffRequests);
                    Phase::Requested { since: self.step }
                }
                Phase::Requested { since } => {
                    if self.step.is_multiple_of(4) && affinity_off(s) {
                        match smp::start_cpu(s, secondary) {
                            Ok(()) => {
                                count(Ev::CpuOn);
                                Phase::Starting { since: self.step }
                            }
                            Err(_) => {
                                count(Ev::CpuOnRefused);
                                Phase::Requested { since }
                            }
                        }
                    } else {
                        self.stuck(s, since)
                    }
                }
                Phase::Starting { since } => {
                    if RUNNING[s].load(Ordering::Acquire) {
                        count(Ev::Cycles);
                        Phase::Running {
                            next: self.step + 100 + rng.below(400),
                        }
                    } else {
                        self.stuck(s, since)
                    }
                }
                phase => phase,
            }
        }
    }

    fn stuck(&self, s: usize, since: u64) -> Phase {
        if self.step - since == STUCK_AFTER {
            count(Ev::Stuck);
            println!("hostile: vCPU {} does not complete its power cycle", s);
        }
        self.phase[s]
    }
}

fn affinity_off(s: usize) -> bool {
    hvc::call(psci::AFFINITY_INFO_64, [s as u64, 0])[0] == psci::AFFINITY_OFF
}

/// The vCPUs other than 0, every life.
fn secondary(v: usize) -> ! {
    if v >= vcpus() {
        loop {
            guest_lib::wfi();
        }
    }
    start_life(v);
    work(v, &mut None);
    FINISHED[v].store(true, Ordering::Release);
    // Done: keep taking interrupts (and a late request to power off).
    loop {
        interrupt_window();
        if OFF_REQUEST[v].load(Ordering::Acquire) != OFF_NONE {
            power_off(v, Ev::OffLoop);
        }
        guest_lib::wfi();
    }
}

// --- Operations: the virtual GIC ---------------------------------------------------------

fn gic_access(v: usize, rng: &mut Rng, write: bool) {
    if v2() {
        return gicv2_access(rng, write);
    }
    let width = 1u64 << rng.below(4);
    let (base, offset) = if rng.chance(2) {
        let offset = match rng.below(4) {
            0 => rng.below(GICD_SIZE),
            1 => GICD_IROUTER + rng.below(0x2000),
            _ => rng.below(0x1000),
        };
        (GICD, offset.min(GICD_SIZE - width))
    } else {
        let vcpu = if rng.chance(3) { any_vcpu(rng) } else { v } as u64;
        let frame = if rng.chance(2) { SGI_FRAME } else { 0 };
        let span = if rng.chance(4) { SGI_FRAME } else { 0x1000 };
        let mut offset = rng.below(span).min(SGI_FRAME - width);
        if frame == SGI_FRAME && offset & !7 == CHECKED_PRIORITY & !7 {
            offset += 0x10;
        }
        (GICR + vcpu * GICR_STRIDE + frame, offset)
    };
    access(base + (offset & !(width - 1)), width, write, rng.next());
}

/// A random access to a virtual GICv2: its distributor (trapped), mostly
/// where its registers are, byte accesses to IPRIORITYR and ITARGETSR
/// among them; or its CPU interface (the GICV frame: the hardware's
/// virtual CPU interface answers, no trap), mostly its registers.
fn gicv2_access(rng: &mut Rng, write: bool) {
    let mut width = 1u64 << rng.below(4);
    let (base, mut offset) = if rng.chance(2) {
        let offset = match rng.below(6) {
            0 => rng.below(GICD_V2_SIZE),
            // CTLR, TYPER, IIDR and the bit banks.
            1 => rng.below(IPRIORITYR),
            // IPRIORITYR and ITARGETSR: byte-accessible.
            2 | 3 => {
                if rng.chance(2) {
                    width = 1;
                }
                IPRIORITYR + rng.below(GICD_ICFGR - IPRIORITYR)
            }
            4 => GICD_ICFGR + rng.below(0x100),
            // SGIR, CPENDSGIR, SPENDSGIR.
            _ => GICD_SGIR + rng.below(0x30),
        };
        let mut offset = offset.min(GICD_V2_SIZE - width) & !(width - 1);
        if offset & !7 == CHECKED_PRIORITY & !7 {
            offset += 0x10;
        }
        (GICD, offset)
    } else {
        let offset = match rng.below(8) {
            0 => rng.below(GICC_SIZE),
            1 => GICC_DIR + rng.below(0x10),
            _ => rng.below(0x100),
        };
        (GICC, offset.min(GICC_SIZE - width) & !(width - 1))
    };
    let mut value = rng.next();
    if base == GICC && offset == GICC_CTLR {
        // Whatever the width, never FIQEn: group 0 (every interrupt of
        // the partition) as FIQ, which this guest does not take.
        value &= !u64::from(GICC_CTLR_FIQEN);
    }
    if base == GICD && offset == GICD_SGIR && rng.chance(2) {
        // Half of the GICD_SGIR writes of this kind are well-formed.
        value = u64::from(sgir_value(rng));
        width = 4;
        offset = GICD_SGIR;
    }
    access(base + offset, width, write, value);
}

/// A set/clear-enable, -pending or -active write aimed at an interrupt the
/// guest uses (or a random mask of them): its SGIs and PPIs (GICv3: of any
/// of its redistributors, mostly its own; GICv2: its own, the only ones the
/// distributor shows it), or the SPI of [`spi`].
fn withdraw(v: usize, rng: &mut Rng) {
    const BANKS: [u64; 6] = [ISENABLER, ICENABLER, ISPENDR, ICPENDR, ISACTIVER, ICACTIVER];
    let bank = BANKS[rng.below(6) as usize];
    let (addr, bit) = match rng.below(8) {
        0..=4 => {
            let vcpu = if rng.chance(4) { any_vcpu(rng) } else { v };
            let intid = match rng.below(4) {
                0 => VTIMER,
                1 => SGI_OFF,
                _ => rng.below(32) as u32,
            };
            let private = if v2() { GICD } else { own_sgi_frame(vcpu) };
            (private + bank, 1u32 << intid)
        }
        _ => gicd_bank(bank, spi()),
    };
    let value = if rng.chance(4) {
        rng.next() as u32
    } else {
        bit
    };
    write32(addr, value);
}

/// An ICC_SGI1R_EL1 value: mostly a valid encoding.
fn sgi1r_value(rng: &mut Rng) -> u64 {
    let intid = rng.below(16) << 24;
    match rng.below(8) {
        // A target list of vCPUs 0..8: the partition has 0..3.
        0..=3 => intid | rng.below(256),
        // Broadcast (IRM).
        4 => intid | 1 << 40,
        // Another cluster (Aff1), or range selector: nobody.
        5 => intid | (1 + rng.below(3)) << 16 | rng.below(16),
        6 => intid | rng.below(16) << 44 | rng.below(0x1_0000),
        _ => rng.next(),
    }
}

/// A GICD_SGIR value: mostly a valid encoding.
fn sgir_value(rng: &mut Rng) -> u32 {
    let intid = rng.below(16) as u32;
    // NSATT: no Security Extensions in a partition, no effect.
    let nsatt = if rng.chance(4) { SGIR_NSATT } else { 0 };
    let list = (rng.below(256) as u32) << SGIR_TARGETS_SHIFT;
    match rng.below(8) {
        // TargetListFilter 0: a list of CPU interfaces 0..8; the
        // partition has 0 and 1.
        0..=3 => list | nsatt | intid,
        // 1: every interface but the sender's; 2: the sender's only.
        4 => 1 << SGIR_FILTER_SHIFT | list | nsatt | intid,
        5 => 2 << SGIR_FILTER_SHIFT | list | nsatt | intid,
        // 3: reserved, nobody.
        6 => 3 << SGIR_FILTER_SHIFT | list | nsatt | intid,
        _ => rng.next() as u32,
    }
}

/// GICv2's SPENDSGIR and CPENDSGIR (an SGI's pending state per source CPU
/// interface, banked per CPU interface): random accesses half of the time,
/// else a checked pair, on one of its SGIs disabled meanwhile so that it
/// waits in the distributor (an enabled one is listed for the guest at
/// once, and Bulkhead's registers show what waits to be listed, not what
/// a list register holds). Cleared from every source first, then set
/// pending from one, it reads pending from it (SPENDSGIR) and pending
/// (ISPENDR0); cleared from every source again it reads pending from none
/// and not pending. Another vCPU's GICD_SGIR may make it pending in
/// between: a second and third try tell that race from an error.
fn pendsgir(v: usize, rng: &mut Rng) {
    if rng.chance(2) {
        let width = if rng.chance(2) { 1 } else { 4 };
        let offset = (GICD_CPENDSGIR + rng.below(0x20)) & !(width - 1);
        access(GICD + offset, width, rng.chance(2), rng.next());
        return;
    }
    let sgi = rng.below(16);
    let source = 1u8 << any_vcpu(rng);
    let sources = GICD + GICD_SPENDSGIR + sgi;
    let pending = || read32(GICD + ISPENDR) & 1 << sgi != 0;
    let clear = || {
        let mut state = (0, false);
        for _ in 0..3 {
            write8(GICD + GICD_CPENDSGIR + sgi, 0xff);
            state = (read8(sources), pending());
            if state == (0, false) {
                break;
            }
        }
        state
    };
    write32(GICD + ICENABLER, 1 << sgi);
    let before = clear();
    write8(sources, source);
    let set = (read8(sources), pending());
    let cleared = clear();
    write32(GICD + ISENABLER, 1 << sgi);
    let ok = before == (0, false) && set.0 & source != 0 && set.1 && cleared == (0, false);
    if !ok {
        say_bad(
            Ev::PendSgirBad,
            format_args!(
                "pendsgir vcpu={v} sgi={sgi} source={source:#x} before={before:?} set={set:?} \
                 cleared={cleared:?}"
            ),
        );
    }
    check(ok, Ev::PendSgirChecked, Ev::PendSgirBad);
}

fn sgi_other(rng: &mut Rng) {
    let value = if rng.chance(2) {
        sgi1r_value(rng)
    } else {
        rng.next()
    };
    // SAFETY: ICC_SGI0R_EL1 and ICC_ASGI1R_EL1 only ask for (group 0) SGIs.
    unsafe {
        if rng.chance(2) {
            asm!("msr s3_0_c12_c11_7, {}", "isb", in(reg) value, options(nostack));
        } else {
            asm!("msr s3_0_c12_c11_6, {}", "isb", in(reg) value, options(nostack));
        }
    }
}

// --- Operations: calls ------------------------------------------------------------

/// Function ids that end or power off the caller, or start a vCPU: never
/// issued at random (as W0, whatever the upper half of x0).
const FORBIDDEN: [u64; 6] = [
    psci::CPU_OFF,
    psci::SYSTEM_OFF,
    psci::SYSTEM_RESET,
    call::PARTITION_EXIT,
    psci::CPU_ON_32,
    psci::CPU_ON_64,
];

fn random_call(v: usize, rng: &mut Rng, smc: bool) {
    const IDS: [u64; 18] = [
        call::VERSION,
        call::VCPU_INFO,
        call::EXIT_COUNT,
        call::IRQ_UNMASK,
        call::DEFER_STATS,
        call::CONSOLE_WRITE,
        psci::PSCI_VERSION,
        psci::PSCI_FEATURES,
        psci::AFFINITY_INFO_32,
        psci::AFFINITY_INFO_64,
        psci::CPU_ON_64,
        psci::CPU_ON_32,
        psci::MIGRATE_INFO_TYPE,
        psci::SMCCC_VERSION,
        psci::SMCCC_ARCH_FEATURES,
        psci::CPU_SUSPEND_32,
        psci::CPU_SUSPEND_64,
        psci::CPU_SUSPEND_64,
    ];
    let mut id = match rng.below(IDS.len() as u64 + 5) {
        n if (n as usize) < IDS.len() => IDS[n as usize],
        n if n == IDS.len() as u64 => 0x8400_0000 | rng.below(0x20) | (rng.below(2) << 30),
        n if n == IDS.len() as u64 + 1 => bulkhead_call(7 + rng.below(0xfff0) as u16),
        n if n == IDS.len() as u64 + 2 => 0x8600_0000 | rng.below(0x1_0000),
        n if n == IDS.len() as u64 + 3 => 0x8000_0000 | rng.below(0x1_0000),
        _ => rng.next(),
    };
    let mut args = [rng.next(), rng.next(), rng.next(), rng.next()];
    let w0 = id & 0xffff_ffff;
    if w0 == psci::CPU_ON_32 || w0 == psci::CPU_ON_64 {
        // Itself (already on), or an affinity no vCPU has (Aff1 set).
        args[0] = if rng.chance(2) {
            v as u64
        } else {
            args[0] | 1 << 8
        };
    } else if FORBIDDEN.contains(&w0) {
        id = call::VERSION;
    }
    if w0 == call::CONSOLE_WRITE {
        args[0] = 49 + rng.below(1 << 20); // refused: too long
    }
    if (w0 == psci::CPU_SUSPEND_32 || w0 == psci::CPU_SUSPEND_64) && rng.chance(2) {
        // Valid standby, or powerdown with an entry outside memory.
        args[0] = if rng.chance(2) { 0 } else { 1 << 16 };
        args[1] = rng.below(0x4000_0000) & !3;
    }
    if w0 == call::EXIT_COUNT {
        args[0] = rng.below(10);
    }
    if rng.chance(4) {
        id |= rng.next() << 32;
    }
    let x0 = if smc {
        smc_call(id, args)
    } else {
        hvc::call(id, args)[0]
    };
    count(if (x0 as i64) < 0 {
        Ev::CallsError
    } else {
        Ev::CallsOk
    });
}

/// `smc #0` with `x0 = id` and `x1..x4 = args` (trapped by the hypervisor).
fn smc_call(id: u64, args: [u64; 4]) -> u64 {
    let x0;
    // SAFETY: an SMC the hypervisor traps and answers as it answers HVC;
    // it writes only x0..x17 (SMCCC), all declared clobbered.
    unsafe {
        asm!(
            "smc #0",
            inout("x0") id => x0,
            inout("x1") args[0] => _, inout("x2") args[1] => _,
            inout("x3") args[2] => _, inout("x4") args[3] => _,
            out("x5") _, out("x6") _, out("x7") _, out("x8") _, out("x9") _,
            out("x10") _, out("x11") _, out("x12") _, out("x13") _,
            out("x14") _, out("x15") _, out("x16") _, out("x17") _,
            options(nostack)
        )
    };
    x0
}

fn control_page(rng: &mut Rng) {
    let Some(page) = guest_lib::mode::control_page() else {
        return;
    };
    let offset = match rng.below(10) {
        0..=4 => control::OFFSET_MASK as u64 + rng.below(2) * 4, // the flag word
        5 | 6 => control::OFFSET_PENDING as u64 + rng.below(2) * 4, // the pending word
        7 => rng.below(2) * 4,                                   // magic, version
        _ => (24 + rng.below(4096 - 24)) & !3,
    };
    // SAFETY: a word of the control page, Normal memory mapped for the
    // guest's whole life; the hypervisor must accept any value there.
    unsafe { core::ptr::write_volatile((page as u64 + offset) as *mut u32, rng.next() as u32) };
}

// --- Operations: the console ----------------------------------------------------------

/// A line being built on the stack.
struct Line {
    bytes: [u8; 256],
    len: usize,
}

impl Line {
    fn new() -> Line {
        Line {
            bytes: [0; 256],
            len: 0,
        }
    }

    fn push(&mut self, b: u8) {
        if self.len < self.bytes.len() {
            self.bytes[self.len] = b;
            self.len += 1;
        }
    }

    /// Up to `most` random printable characters (now and then a tab or a CR).
    fn random(&mut self, rng: &mut Rng, least: u64, most: u64) {
        let n = least + rng.below(most - least + 1);
        for _ in 0..n {
            let b = match rng.below(64) {
                0 => b'\t',
                1 => b'\r',
                _ => 0x20 + rng.below(0x5f) as u8,
            };
            self.push(b);
        }
    }

    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        s.bytes().for_each(|b| self.push(b));
        Ok(())
    }
}

fn console(v: usize, rng: &mut Rng) {
    // Lines spread over the run, LINES_MAX at most.
    let budget = OPERATIONS * KIND_WEIGHTS[Kind::Console as usize] / 1000;
    let line = rng.below(budget.max(1)) < LINES_MAX && rng.below(10) < 8;
    if line && LINES.fetch_add(1, Ordering::Relaxed) < LINES_MAX {
        let n = LINES.load(Ordering::Relaxed);
        let mut text = Line::new();
        match rng.below(10) {
            0..=4 => {
                let _ = write!(text, "hostile v{} line {}: ", v, n);
                text.random(rng, 0, 80);
                println!("{}", text.as_str());
                count(Ev::Lines);
            }
            5..=8 => {
                let _ = write!(text, "hostile v{} pl011 {}: ", v, n);
                text.random(rng, 0, 80);
                text.push(b'\n');
                guest_lib::raw_pl011_write(text.as_str());
                count(Ev::Pl011Lines);
            }
            _ => {
                // Longer than a console line (160): cut in two.
                let _ = write!(text, "hostile v{} long {}: ", v, n);
                text.random(rng, 170, 230);
                println!("{}", text.as_str());
                count(Ev::LongLines);
            }
        }
        return;
    }
    match rng.below(3) {
        0 => {
            let len = if rng.chance(2) {
                0
            } else {
                49 + rng.below(1000)
            };
            hvc::call(call::CONSOLE_WRITE, [len, rng.next(), rng.next()]);
            count(Ev::ConsoleRefused);
        }
        _ => {
            // A PL011 register other than the data register (no bytes out)
            // and the vCPUs' checked ones.
            let width = 1u64 << rng.below(4);
            let mut offset = (4 + rng.below(PL011_SIZE - 8)) & !(width - 1);
            if offset == 0 || PL011_CHECKED.iter().any(|&c| offset & !7 == c & !7) {
                offset = 0x30; // CR
            }
            access(PL011 + offset, width, rng.chance(2), rng.next());
            count(Ev::Pl011Regs);
        }
    }
}

// --- Operations: accesses the syndrome does not describe -------------------------------------

fn isv0(v: usize, rng: &mut Rng) {
    // The GIC's emulated frames (on a GICv2 its distributor only: its CPU
    // interface is not emulated), and the PL011.
    let addr = match rng.below(4) {
        0 => GICD + (rng.below(0x1000) & !15),
        1 | 2 if v2() => GICD + (rng.below(GICD_V2_SIZE) & !15),
        1 => GICR + any_vcpu(rng) as u64 * GICR_STRIDE + (rng.below(0x1000) & !15),
        2 => own_sgi_frame(v) + (rng.below(0x1000) & !15),
        _ => PL011 + (rng.below(PL011_SIZE) & !15),
    };
    let form = rng.below(20);
    if form == 19 {
        // Cache maintenance by address on an emulated register: either
        // nothing or an abort, never a stop.
        let ((), esr) = probe(|| {
            // SAFETY: clean and invalidate by VA of a Device address:
            // nothing is cached there.
            unsafe { asm!("dc civac, {}", in(reg) addr, options(nostack)) };
        });
        count(if esr.is_some() {
            Ev::DcVaAborts
        } else {
            Ev::DcVaDone
        });
        return;
    }
    if form >= 17 {
        // A store-exclusive without a reservation: fails without an
        // access (status 1), or aborts; never succeeds.
        let value = rng.next();
        let (status, esr) = probe(|| {
            let status: u64;
            // SAFETY: a store-exclusive to an emulated register; it does
            // not happen (no reservation) or aborts.
            unsafe {
                if form == 17 {
                    asm!("stxr {s:w}, {v:w}, [{a}]", s = out(reg) status, v = in(reg) value, a = in(reg) addr, options(nostack));
                } else {
                    asm!("stlxr {s:w}, {v}, [{a}]", s = out(reg) status, v = in(reg) value, a = in(reg) addr, options(nostack));
                }
            }
            status
        });
        match esr {
            Some(esr) if abort_syndrome_ok(esr, true, addr) => count(Ev::Isv0Aborts),
            None if status & 0xffff_ffff == 1 => count(Ev::ExclStoreFailed),
            _ => count(Ev::ExclStoreBad),
        }
        return;
    }
    let value = rng.next();
    let (write, esr) = probe(|| {
        // SAFETY: accesses of emulated registers the hypervisor cannot
        // emulate: each takes a synchronous external abort (caught by
        // `probe`) and changes nothing, writeback included.
        unsafe { isv0_access(form, addr, value) }
    });
    check(
        esr.is_some_and(|esr| abort_syndrome_ok(esr, write, addr)),
        Ev::Isv0Aborts,
        Ev::Isv0Bad,
    );
}

/// The access of `form` at `addr` (16-aligned); whether it writes.
///
/// # Safety
/// `addr` must be an emulated device register of this partition.
unsafe fn isv0_access(form: u64, addr: u64, value: u64) -> bool {
    // SAFETY: the caller's.
    unsafe {
        match form {
            0 => {
                asm!("ldp {x:w}, {y:w}, [{a}]", x = out(reg) _, y = out(reg) _, a = in(reg) addr, options(nostack))
            }
            1 => {
                asm!("ldp {x}, {y}, [{a}]", x = out(reg) _, y = out(reg) _, a = in(reg) addr, options(nostack))
            }
            2 => {
                asm!("stp {v:w}, {v:w}, [{a}]", v = in(reg) value, a = in(reg) addr, options(nostack))
            }
            3 => asm!("stp {v}, {v}, [{a}]", v = in(reg) value, a = in(reg) addr, options(nostack)),
            4 => {
                asm!("ldr {x}, [{a}], #8", x = out(reg) _, a = inout(reg) addr => _, options(nostack))
            }
            5 => {
                asm!("ldr {x:w}, [{a}, #4]!", x = out(reg) _, a = inout(reg) addr => _, options(nostack))
            }
            6 => {
                asm!("str {v:w}, [{a}], #4", v = in(reg) value, a = inout(reg) addr => _, options(nostack))
            }
            7 => {
                asm!("str {v}, [{a}, #8]!", v = in(reg) value, a = inout(reg) addr => _, options(nostack))
            }
            8 => {
                asm!("ldrb {x:w}, [{a}], #1", x = out(reg) _, a = inout(reg) addr => _, options(nostack))
            }
            9 => {
                asm!("strh {v:w}, [{a}, #2]!", v = in(reg) value, a = inout(reg) addr => _, options(nostack))
            }
            10 => asm!("ldxr {x:w}, [{a}]", x = out(reg) _, a = in(reg) addr, options(nostack)),
            11 => asm!("ldxr {x}, [{a}]", x = out(reg) _, a = in(reg) addr, options(nostack)),
            12 => asm!("ldaxr {x}, [{a}]", x = out(reg) _, a = in(reg) addr, options(nostack)),
            13 => {
                asm!("ldxp {x}, {y}, [{a}]", x = out(reg) _, y = out(reg) _, a = in(reg) addr, options(nostack))
            }
            14 => {
                asm!("ldnp {x}, {y}, [{a}]", x = out(reg) _, y = out(reg) _, a = in(reg) addr, options(nostack))
            }
            15 => {
                asm!("stnp {v:w}, {v:w}, [{a}]", v = in(reg) value, a = in(reg) addr, options(nostack))
            }
            _ => {
                if value & 1 == 0 {
                    asm!("ldr {q:q}, [{a}]", q = out(vreg) _, a = in(reg) addr, options(nostack));
                } else {
                    asm!("str {d:d}, [{a}]", d = in(vreg) value, a = in(reg) addr, options(nostack));
                    return true;
                }
            }
        }
    }
    matches!(form, 2 | 3 | 6 | 7 | 9 | 15)
}

/// A synchronous external abort on a data access from EL1 (EC 0x25, IL,
/// DFSC 0x10), WnR as the access, FAR the address.
/// The partition's RAM (tests/configs/hostile.toml) and where its control
/// page is (the default), which `unbacked` stays clear of.
const RAM: core::ops::Range<u64> = 0x4000_0000..0x4400_0000;
const CONTROL_PAGE: u64 = 0x7fff_f000;

/// An access, or a call, to an address the partition has nothing at: an
/// external abort at this vCPU's own vector every time.
fn unbacked(rng: &mut Rng) {
    let size = 1u64 << rng.below(4);
    if rng.below(8) == 0 {
        // A call into the Normal, executable half of guest-lib's map, above
        // its RAM: the fetch aborts and `probe` returns to the caller.
        let target = (RAM.end + rng.below(CONTROL_PAGE - RAM.end)) & !3;
        let ((), esr) = probe(|| {
            // SAFETY: branches with link to an address with nothing behind
            // it; the instruction abort comes back through `probe` to the
            // instruction after the `blr`, with x30 clobbered.
            unsafe { asm!("blr {}", in(reg) target, out("x30") _) };
        });
        let far: u64;
        // SAFETY: reading FAR_EL1 has no effect; IRQs are masked, so it is
        // still the abort's.
        unsafe { asm!("mrs {}, far_el1", out(reg) far, options(nomem, nostack)) };
        let ok = esr.is_some_and(|e| e >> 26 == 0x21 && e & 0x3f == 0x10) && far == target;
        check(ok, Ev::UnbackedFetches, Ev::UnbackedBad);
        return;
    }
    // Below its RAM (guest-lib maps it Device), clear of the GIC, the
    // PL011 and the PL031 (0x0800_0000..0x0a00_0000), or above its RAM.
    let addr = if rng.chance(2) {
        0x1000_0000 + rng.below(RAM.start - 0x1000_0000)
    } else {
        RAM.end + rng.below(CONTROL_PAGE - RAM.end)
    } & !(size - 1);
    let write = rng.chance(2);
    let value = rng.next();
    let (_, esr) = probe(|| access(addr, size, write, value));
    let ok = esr.is_some_and(|e| abort_syndrome_ok(e, write, addr));
    check(ok, Ev::UnbackedAborts, Ev::UnbackedBad);
}

fn abort_syndrome_ok(esr: u64, write: bool, addr: u64) -> bool {
    let far: u64;
    // SAFETY: reading FAR_EL1 has no effect; IRQs are masked, so it is
    // still the abort's.
    unsafe { asm!("mrs {}, far_el1", out(reg) far, options(nomem, nostack)) };
    esr >> 26 == 0x25
        && esr & (1 << 25) != 0
        && esr & (1 << 24) == 0
        && esr & 0x3f == 0x10
        && (esr >> 6 & 1 != 0) == write
        && far.wrapping_sub(addr) < 32
}

// --- Operations: checked emulation ----------------------------------------------------

/// A register this vCPU alone writes, its sub-word lanes readable (or not),
/// and whether a 16-bit access is defined there. (The GICv2 distributor's
/// IPRIORITYR words of SGIs are banked: each vCPU has its own.)
fn checked_register(v: usize, rng: &mut Rng) -> (u64, bool) {
    if rng.chance(2) {
        let private = if v2() { GICD } else { own_sgi_frame(v) };
        (private + CHECKED_PRIORITY, true)
    } else {
        (PL011 + PL011_CHECKED[v], false)
    }
}

/// A value with every byte negative (priority-shaped: bits 2:0 clear).
fn negative_bytes(rng: &mut Rng) -> u32 {
    (rng.next() as u32 & 0x78f8_78f8) | 0x8080_8080
}

fn sign_extension(v: usize, rng: &mut Rng) {
    let (reg, gic) = checked_register(v, rng);
    write32(reg, negative_bytes(rng));
    let stored = read32(reg);
    // GIC priorities are byte and word registers (lanes 0..4); the PL011
    // model answers every width at the register's own offset (lane 0).
    let form = if gic {
        [0, 1, 4][rng.below(3) as usize]
    } else {
        rng.below(5)
    };
    let lane = if gic && form < 2 { rng.below(4) } else { 0 };
    let addr = reg + lane;
    let raw = u64::from(stored) >> (8 * lane);
    let (got, expected): (u64, u64);
    // SAFETY: loads of a register of this partition's emulated devices,
    // aligned to their size.
    unsafe {
        match form {
            0 => {
                asm!("ldrsb {x}, [{a}]", x = out(reg) got, a = in(reg) addr, options(nostack));
                expected = raw as u8 as i8 as i64 as u64;
            }
            1 => {
                asm!("ldrsb {x:w}, [{a}]", x = out(reg) got, a = in(reg) addr, options(nostack));
                expected = u64::from(raw as u8 as i8 as i32 as u32);
            }
            2 => {
                asm!("ldrsh {x}, [{a}]", x = out(reg) got, a = in(reg) addr, options(nostack));
                expected = raw as u16 as i16 as i64 as u64;
            }
            3 => {
                asm!("ldrsh {x:w}, [{a}]", x = out(reg) got, a = in(reg) addr, options(nostack));
                expected = u64::from(raw as u16 as i16 as i32 as u32);
            }
            _ => {
                asm!("ldrsw {x}, [{a}]", x = out(reg) got, a = in(reg) addr, options(nostack));
                expected = raw as u32 as i32 as i64 as u64;
            }
        }
    }
    check(got == expected, Ev::SextChecked, Ev::SextBad);
}

fn zero_register(v: usize, rng: &mut Rng) {
    let (reg, gic) = checked_register(v, rng);
    write32(reg, negative_bytes(rng));
    let form = rng.below(6);
    // SAFETY: stores and loads of xzr/wzr at registers of this partition's
    // emulated devices, aligned to their size.
    unsafe {
        match form {
            0 => asm!("str wzr, [{a}]", a = in(reg) reg, options(nostack)),
            1 if gic => asm!("strb wzr, [{a}]", a = in(reg) reg, options(nostack)),
            1 => asm!("strh wzr, [{a}]", a = in(reg) reg, options(nostack)),
            2 => asm!("ldr wzr, [{a}]", a = in(reg) reg, options(nostack)),
            3 => asm!("ldrb wzr, [{a}]", a = in(reg) GICD, options(nostack)),
            // GICR_TYPER; GICv2: GICD_IIDR, whose 64-bit reads are refused
            // (read as zero).
            4 => {
                asm!("ldr xzr, [{a}]", a = in(reg) if v2() { GICD + 8 } else { GICR + 8 }, options(nostack))
            }
            _ => asm!("ldrsw xzr, [{a}]", a = in(reg) reg, options(nostack)),
        }
    }
    let after = read32(reg);
    let ok = match form {
        // The whole register, or its low byte (GIC) / half (PL011), is zero.
        0 => after == 0,
        1 if gic => after & 0xff == 0 && after >> 8 != 0,
        1 => after == 0, // the PL011 model keeps the halfword written
        // Loads into the zero register change nothing.
        _ => after != 0,
    };
    let routed = if v2() {
        unroute(rng)
    } else {
        // A 64-bit xzr store: the SPI routed to vCPU 0 (a register other
        // vCPUs may write at random too: a second try tells a race).
        let irouter = GICD + GICD_IROUTER + 8 * u64::from(spi());
        (0..3).any(|_| {
            access(irouter, 8, true, rng.next() & 0xff_00ff_ffff);
            // SAFETY: a 64-bit store of xzr to GICD_IROUTER<n>, 8-aligned.
            unsafe { asm!("str xzr, [{a}]", a = in(reg) irouter, options(nostack)) };
            access(irouter, 8, false, 0) == 0
        })
    };
    if !(ok && routed) {
        say_bad(
            Ev::XzrBad,
            format_args!("xzr vcpu={v} reg={reg:#x} form={form} after={after:#x} routed={routed}"),
        );
    }
    check(ok && routed, Ev::XzrChecked, Ev::XzrBad);
}

/// GICv2: a byte store of wzr to the SPI's ITARGETSR byte routes it to no
/// CPU interface (read back as zero), after a byte naming one of the
/// partition's. It stays unrouted (waiting pending, if it comes) until
/// vCPU 0's next repair routes the PL031's back, or a write routes it.
/// Other vCPUs may write it too (at random, or here): a second try tells
/// a race.
fn unroute(rng: &mut Rng) -> bool {
    let target = GICD + GICD_ITARGETSR + u64::from(spi());
    (0..3).any(|_| {
        write8(target, rng.next() as u8 | 1 << rng.below(2));
        // SAFETY: a byte store of wzr to GICD_ITARGETSR<n>.
        unsafe { asm!("strb wzr, [{a}]", a = in(reg) target, options(nostack)) };
        read8(target) == 0
    })
}

fn acquire_release(v: usize, rng: &mut Rng) {
    let (reg, gic) = checked_register(v, rng);
    let value = negative_bytes(rng);
    let (got, esr) = probe(|| {
        let got: u64;
        // SAFETY: a store-release and a load-acquire of a register of this
        // partition's emulated devices (syndrome-described accesses).
        unsafe {
            if gic && value & 0x100 != 0 {
                asm!(
                    "stlrb {v:w}, [{a}]",
                    "ldarb {g:w}, [{a}]",
                    v = in(reg) value, g = out(reg) got, a = in(reg) reg, options(nostack)
                );
            } else {
                asm!(
                    "stlr {v:w}, [{a}]",
                    "ldar {g:w}, [{a}]",
                    v = in(reg) value, g = out(reg) got, a = in(reg) reg, options(nostack)
                );
            }
        }
        got
    });
    let stored = u64::from(read32(reg));
    let expected = if gic && value & 0x100 != 0 {
        stored & 0xff
    } else {
        stored
    };
    check(
        esr.is_none() && got == expected,
        Ev::AcqRelChecked,
        Ev::AcqRelBad,
    );
}

// --- Operations: system registers -------------------------------------------------------

fn pmu(rng: &mut Rng) {
    let value = rng.next();
    let esr = match rng.below(16) {
        0 => probe_read!("pmcr_el0").1,
        1 => probe_read!("pmccntr_el0").1,
        2 => probe_read!("pmcntenset_el0").1,
        3 => probe_read!("pmevcntr0_el0").1,
        4 | 12 => return pmuserenr(value),
        5 => probe_read!("pmceid0_el0").1,
        6 => probe_read!("pmovsclr_el0").1,
        7 => probe_read!("pmxevcntr_el0").1,
        8 => probe_write!("pmcr_el0", value),
        9 => probe_write!("pmccntr_el0", value),
        10 => probe_write!("pmcntenset_el0", value),
        11 => probe_write!("pmevtyper0_el0", value),
        13 => probe_write!("pmselr_el0", value),
        14 => probe_write!("pmintenset_el1", value),
        _ => probe_write!("pmswinc_el0", value),
    };
    check(
        esr.is_some_and(|esr| esr >> 26 == 0),
        Ev::PmuUndefined,
        Ev::PmuBad,
    );
}

/// PMUSERENR_EL0 reads as zero and ignores writes: the one performance
/// monitor register that is not UNDEFINED (Linux clears it at boot).
fn pmuserenr(value: u64) {
    let written = probe_write!("pmuserenr_el0", value);
    let (read, esr) = probe_read!("pmuserenr_el0");
    if written.is_some() || esr.is_some() || read != 0 {
        count(Ev::PmuBad);
    }
}

fn debug(rng: &mut Rng) {
    let value = rng.next();
    // Never a debug exception: MDSCR_EL1's MDE, KDE and SS stay clear,
    // every breakpoint and watchpoint stays disabled (E, bit 0).
    let mdscr = value & ((1 << 12) | (3 << 22));
    let control = value & !1;
    let esr = match rng.below(20) {
        0 => probe_write!("mdscr_el1", mdscr),
        1 => probe_read!("mdscr_el1").1,
        2 => probe_write!("dbgbvr0_el1", value),
        3 => probe_write!("dbgbcr0_el1", control),
        4 => probe_write!("dbgbvr5_el1", value),
        5 => probe_write!("dbgbcr5_el1", control),
        6 => probe_write!("dbgwvr0_el1", value),
        7 => probe_write!("dbgwcr0_el1", control),
        8 => probe_write!("dbgwvr3_el1", value),
        9 => probe_write!("dbgwcr3_el1", control),
        10 => probe_read!("dbgbcr2_el1").1,
        11 => probe_read!("dbgwvr1_el1").1,
        12 => probe_write!("oslar_el1", value & 1),
        13 => probe_read!("oslsr_el1").1,
        14 => probe_write!("osdlr_el1", 0),
        15 => probe_write!("dbgclaimset_el1", value & 0xff),
        16 => probe_write!("dbgclaimclr_el1", value & 0xff),
        17 => probe_read!("dbgclaimclr_el1").1,
        18 => probe_read!("dbgwcr1_el1").1,
        _ => probe_read!("mdrar_el1").1,
    };
    check(esr.is_none(), Ev::DebugDone, Ev::DebugBad);
}

fn actlr(rng: &mut Rng) {
    let written = probe_write!("actlr_el1", rng.next());
    let (value, read) = probe_read!("actlr_el1");
    if written.is_some() || read.is_some() || value != 0 {
        count(Ev::ActlrBad);
    }
}

fn set_way(rng: &mut Rng) {
    let operand = rng.next() & 0xffff_fffe;
    let ((), esr) = probe(|| {
        // SAFETY: data cache maintenance by set/way, which the hypervisor
        // makes a no-op for guests; at worst it would clean or drop lines
        // of this guest's own memory (nothing here relies on them).
        unsafe {
            match operand % 3 {
                0 => asm!("dc isw, {}", in(reg) operand, options(nostack)),
                1 => asm!("dc csw, {}", in(reg) operand, options(nostack)),
                _ => asm!("dc cisw, {}", in(reg) operand, options(nostack)),
            }
        }
    });
    if esr.is_some() {
        count(Ev::SetWayBad);
    }
}

/// The virtual CPU interface, at random; the next repair undoes it.
fn icc(rng: &mut Rng) {
    let value = rng.next();
    let esr = match rng.below(12) {
        0 => probe_write!("icc_pmr_el1", value & 0xff),
        1 => probe_write!("icc_bpr1_el1", value & 7),
        2 => {
            // Acknowledge whatever is pending and end it unhandled.
            let (intid, esr) = probe_read!("icc_iar1_el1");
            if esr.is_none() && intid & 0xff_ffff < u64::from(INTID_LIMIT) {
                probe_write!("icc_eoir1_el1", intid)
            } else {
                esr
            }
        }
        3 => probe_write!("icc_eoir1_el1", value & 0x3ff),
        4 => probe_write!("icc_dir_el1", value & 0x3ff),
        5 => probe_write!("icc_ap1r0_el1", value & 0xffff_ffff),
        6 => {
            let (ctlr, esr) = probe_read!("icc_ctlr_el1");
            esr.or(probe_write!("icc_ctlr_el1", ctlr ^ 2)) // EOImode
        }
        7 => probe_write!("icc_igrpen1_el1", value & 1),
        8 => probe_read!("icc_rpr_el1").1,
        9 => probe_read!("icc_hppir1_el1").1,
        10 => probe_read!("icc_iar0_el1").1,
        _ => probe_write!("icc_igrpen0_el1", 0),
    };
    check(esr.is_none(), Ev::IccDone, Ev::IccBad);
}

/// GICv2: the virtual CPU interface through the GICV frame, at random
/// (the next repair undoes it), or an ICC_* system register, which must
/// be UNDEFINED (EC 0x0 at EL1): a GICv2 CPU has no GICv3 system register
/// interface, and nothing of the physical GIC's may answer either.
fn icc_v2(rng: &mut Rng) {
    let value = rng.next();
    if rng.chance(2) {
        let esr = match rng.below(12) {
            0 => probe_write!("icc_pmr_el1", value & 0xff),
            1 => probe_read!("icc_iar1_el1").1,
            2 => probe_write!("icc_eoir1_el1", value & 0x3ff),
            3 => probe_write!("icc_sgi1r_el1", sgi1r_value(rng)),
            4 => probe_write!("s3_0_c12_c11_7", sgi1r_value(rng)), // ICC_SGI0R_EL1
            5 => probe_write!("s3_0_c12_c11_6", sgi1r_value(rng)), // ICC_ASGI1R_EL1
            6 => probe_read!("icc_sre_el1").1,
            7 => probe_write!("icc_sre_el1", value & 7),
            8 => probe_read!("icc_ctlr_el1").1,
            9 => probe_write!("icc_igrpen1_el1", value & 1),
            10 => probe_read!("icc_hppir1_el1").1,
            _ => probe_write!("icc_ap1r0_el1", value & 0xffff_ffff),
        };
        return check(
            esr.is_some_and(|esr| esr >> 26 == 0),
            Ev::IccUndefined,
            Ev::IccBad,
        );
    }
    let ((), esr) = probe(|| match rng.below(12) {
        0 => write32(GICC + GICC_PMR, value as u32 & 0xff),
        1 => write32(GICC + GICC_BPR, value as u32 & 7),
        2 => {
            // Acknowledge whatever is pending and end it unhandled.
            let iar = read32(GICC + GICC_IAR);
            if iar & GICC_IAR_INTID < INTID_LIMIT {
                write32(GICC + GICC_EOIR, iar);
            }
        }
        3 => write32(GICC + GICC_EOIR, value as u32 & 0x1fff),
        4 => write32(GICC + GICC_DIR, value as u32 & 0x1fff),
        5 => write32(GICC + GICC_APR0, value as u32),
        6 => {
            let ctlr = read32(GICC + GICC_CTLR);
            write32(
                GICC + GICC_CTLR,
                (ctlr ^ GICC_CTLR_EOIMODE) & !GICC_CTLR_FIQEN,
            );
        }
        7 => {
            let _ = read32(GICC + GICC_RPR);
        }
        8 => {
            let _ = read32(GICC + GICC_HPPIR);
        }
        9 => {
            let _ = read32(GICC + GICC_AIAR);
        }
        10 => {
            let _ = read32(GICC + GICC_AHPPIR) | read32(GICC + GICC_ABPR);
        }
        _ => {
            let _ = read32(GICC + GICC_IIDR);
        }
    });
    check(esr.is_none(), Ev::IccDone, Ev::IccBad);
}

/// Implementation-defined registers (Cortex-A72's), and the EL1 physical
/// timer: UNDEFINED or the guest's own, never a stop.
fn impdef(rng: &mut Rng) {
    let value = rng.next();
    let (esr, cntp) = match rng.below(10) {
        0 => (probe_read!("s3_1_c15_c2_0").1, false),
        1 => (probe_write!("s3_1_c15_c2_0", value), false),
        2 => (probe_read!("s3_1_c15_c2_1").1, false),
        3 => (probe_write!("s3_1_c15_c2_1", value), false),
        4 => (probe_read!("s3_1_c11_c0_2").1, false),
        5 => (probe_write!("s3_0_c15_c0_0", value), false),
        6 => (probe_read!("s3_3_c14_c2_1").1, true), // CNTP_CTL_EL0
        7 => (probe_write!("s3_3_c14_c2_2", value), true), // CNTP_CVAL_EL0
        8 => (probe_read!("s3_3_c14_c2_0").1, true), // CNTP_TVAL_EL0
        // CNTP_CTL_EL0: enabled, and its interrupt masked or not.
        _ => (probe_write!("s3_3_c14_c2_1", value & 3), true),
    };
    count(match (cntp, esr.is_some()) {
        (false, true) => Ev::ImpDefUndefined,
        (false, false) => Ev::ImpDefDone,
        (true, true) => Ev::CntpUndefined,
        (true, false) => Ev::CntpDone,
    });
}

// --- Operations: the passed-through PL031 ---------------------------------------------------

fn rtc(rng: &mut Rng) {
    match rng.below(10) {
        0..=2 => {
            // An alarm now: the match register at the current second.
            pl031::write(pl031::RTCMR, pl031::read(pl031::RTCDR));
            pl031::write(pl031::RTCIMSC, 1);
        }
        3 => pl031::arm_alarm(1 + rng.below(2) as u32),
        4 => pl031::mask(),
        5 => pl031::clear(),
        6 => {
            let _ = pl031::read(rng.below(0x400) as usize * 4);
        }
        7 => {
            let offset = match rng.below(4) {
                0 => RTCLR,
                _ => rng.below(0x400) as usize * 4,
            };
            pl031::write(offset, rng.next() as u32);
        }
        _ => {
            let bank = if rng.chance(2) { ISPENDR } else { ICPENDR };
            let (addr, bit) = gicd_bank(bank, RTC);
            write32(addr, bit);
        }
    }
}

// --- vCPU 0 -------------------------------------------------------------------------------

fn main() -> ! {
    irq::disable();
    for intid in 0..INTID_LIMIT {
        let _ = irq::register(intid, on_stray);
    }
    let _ = irq::register(SGI_OFF, on_sgi_off);
    let _ = irq::register(RTC, on_alarm);
    for (v, stream) in STREAM.iter().enumerate() {
        stream.store(Rng::for_vcpu(v).0, Ordering::Relaxed);
    }
    let count = guest_lib::vcpu_info().map_or(1, |info| info.vcpu_count as usize);
    VCPUS.store(count.clamp(1, CPUS), Ordering::Relaxed);
    discover();
    // The neighbour's CPU loads its partition's memory while this one
    // starts (each partition's own CPU loads it, some 25 ms for 64 MiB
    // under -icount): the first operation waits until it surely runs, so
    // that it watches the whole run (tests/hostile.rs).
    timer::delay(core::time::Duration::from_millis(60));
    println!(
        "hostile: seed={:#x} vcpus={} operations={} gic={} rtc={} t={}",
        SEED,
        vcpus(),
        OPERATIONS,
        if v2() { 2 } else { 3 },
        u8::from(has_rtc()),
        timer::physical_now()
    );
    start_life(0);
    if has_rtc() {
        pl031::write(pl031::RTCIMSC, 0);
        pl031::clear();
        let _ = gic::enable(RTC);
        LAST_ALARM.store(timer::now(), Ordering::Relaxed);
        pl031::arm_alarm(1);
    }
    for v in 1..vcpus() {
        if smp::start_cpu(v, secondary).is_err() {
            println!("hostile: could not start vCPU {}", v);
            guest_lib::exit(1);
        }
    }
    let mut cycler = Some(Cycler::new());
    work(0, &mut cycler);
    let Some(cycler) = cycler else {
        guest_lib::exit(1)
    };
    finish(&cycler)
}

/// Waits for the others to finish (or power off), then reports.
fn finish(cycler: &Cycler) -> ! {
    let deadline = timer::now() + 10 * timer::frequency();
    for (s, finished) in FINISHED.iter().enumerate().take(vcpus()).skip(1) {
        loop {
            interrupt_window();
            let off_for_good =
                matches!(cycler.phase[s], Phase::Requested { .. }) && affinity_off(s);
            if finished.load(Ordering::Acquire) || off_for_good {
                break;
            }
            if timer::now() > deadline {
                println!("hostile: vCPU {} did not finish", s);
                guest_lib::exit(1);
            }
        }
    }
    timer::stop();
    report();
    // Leaves by its own exit with its device armed, as a hostile guest
    // would: the PL031's SPI enabled and routed to this vCPU's CPU, an
    // alarm (a level interrupt) due a second later by QEMU's RTC clock
    // (the host's), which may come while the neighbour still runs. (Its
    // parked CPU once took it again and again for ever, which under QEMU
    // delayed a tick of the neighbour's by up to 17 ms.)
    repair(0);
    if has_rtc() {
        pl031::arm_alarm(1);
    }
    guest_lib::exit(if counted(Ev::Stuck) == 0 { 0 } else { 1 })
}

/// Prints `key=value` pairs under `title`, several lines of at most 150
/// characters.
fn print_pairs(title: &str, pairs: &mut dyn Iterator<Item = (&str, u64)>) {
    let mut line = Line::new();
    let _ = write!(line, "hostile: {}", title);
    for (key, value) in pairs {
        let mut pair = Line::new();
        let _ = write!(pair, " {}={}", key, value);
        if line.len + pair.len > 150 {
            println!("{}", line.as_str());
            line = Line::new();
            let _ = write!(line, "hostile: {}", title);
        }
        let _ = line.write_str(pair.as_str());
    }
    println!("{}", line.as_str());
}

fn report() {
    let total = |k: usize| {
        OPS.iter()
            .map(|ops| ops[k].load(Ordering::Relaxed))
            .sum::<u64>()
    };
    // The kinds the partition has what for.
    let kinds = || (0..KINDS).filter(|&k| KIND_ALL[k].available());
    print_pairs("ops", &mut kinds().map(|k| (kind_name(k), total(k))));
    print_pairs(
        "events",
        &mut EVENT_NAMES
            .iter()
            .enumerate()
            .map(|(e, &name)| (name, EVENT[e].load(Ordering::Relaxed))),
    );
    for (v, ops) in OPS.iter().enumerate().take(vcpus()) {
        let ops = ops.iter().map(|c| c.load(Ordering::Relaxed));
        println!(
            "hostile: vcpu {} ops={} kinds={}/{} lives={}",
            v,
            ops.clone().sum::<u64>(),
            ops.filter(|&n| n > 0).count(),
            kinds().count(),
            LIVES[v].load(Ordering::Relaxed)
        );
    }
    println!("hostile: done t={}", timer::physical_now());
    let survived: u64 = (0..KINDS).map(total).sum();
    println!("hostile: survived {} operations", survived);
}
