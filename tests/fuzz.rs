//! Fuzzing every decoder of guest input, on the host, in stable Rust.
//!
//! The rule of the project is that guest input is hostile: every value a
//! guest writes to a trapped register, a hypercall or an emulated device is
//! checked, and a bad one gets the architected result or an error code,
//! never a hypervisor panic. This harness feeds each decoder generated
//! inputs and checks that it does not panic and that what it answers keeps
//! the promises its module makes (see each target's `check_*` function).
//!
//! Inputs come from a small deterministic PRNG. Each execution has its own
//! case seed, derived from the run seed, the target and the execution
//! number; the whole input of that execution is generated from it, so one
//! number replays it. Generators are biased toward valid encodings (real
//! exception classes with well-formed syndromes, the partition's own vCPU
//! affinities, offsets inside the real GIC register blocks, existing PSCI
//! and hypercall ids) as well as raw random values, which alone would
//! almost never reach the interesting branches.
//!
//! A failure (a panic in a decoder, or a broken invariant) is caught and
//! reported with the run seed, the case seed, the panic message and
//! location, and the input, shrunk where it is a sequence of steps.
//!
//! Environment (read by the harness; `scripts/fuzz.sh` sets them):
//! - `BULKHEAD_FUZZ_SEED`: the run seed (decimal or 0x-hex); a fixed one
//!   by default, so `cargo test` is deterministic.
//! - `BULKHEAD_FUZZ_EXECS`: executions per target (default: a short run,
//!   a few seconds in all in the debug profile).
//! - `BULKHEAD_FUZZ_REPLAY`: a case seed from a failure report; each
//!   selected target runs only that case and prints its input.
//! - `BULKHEAD_FUZZ_STRICT=1`: also fail on the known, reported issues
//!   listed in [`KNOWN`] (by default they are counted and skipped);
//!   `BULKHEAD_FUZZ_STRICT=id,id` on those only.
//!
//! Every target prints `fuzz <target>: <executions> executions ...` (seen
//! with `--nocapture`).

#![forbid(unsafe_code)]

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::fmt::{self, Debug, Write as _};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Once, OnceLock};
use std::time::Instant;

use bulkhead::config::MemoryRegion;
use bulkhead::console::pl011::{self, Effect, Pl011, Received};
use bulkhead::console::{Arbiter, LINE_MAX, Limits, OutRing, Sender};
use bulkhead::hypercall::Hypercall;
use bulkhead::mm::{Ipa, PhysAddr};
use bulkhead::partition::{MAX_VCPUS, Power, Vcpu};
use bulkhead::psci::{self, Outcome};
use bulkhead::trap::{DataAbort, Exit, sysreg};
use bulkhead::vgic::gate::{self, Gate, Stats};
use bulkhead::vgic::lr::{self, Delivery, Entry, Irq, ListRegisters, PendingQueue};
use bulkhead::vgic::regs::{self, BadAccess, Effects, Frame, Live};
use bulkhead::vgic::sgi::{AffinityMap, SgiRequest, SgiTarget};
use bulkhead::vgic::state::{NO_TARGET, VgicState};
use bulkhead_abi::psci::*;
use bulkhead_abi::{CONSOLE_WRITE_MAX, Counter, Status, call, pack_console, unpack_console};

// ---------------------------------------------------------------------------
// The PRNG
// ---------------------------------------------------------------------------

/// wyrand: one add, one 64x64->128 multiply per value; good enough
/// statistically for fuzzing and deterministic everywhere.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.0) * u128::from(self.0 ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) ^ t) as u64
    }

    fn u32(&mut self) -> u32 {
        (self.u64() >> 32) as u32
    }

    fn u8(&mut self) -> u8 {
        (self.u64() >> 56) as u8
    }

    fn bool(&mut self) -> bool {
        self.u64() >> 63 == 1
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.u64()) * u128::from(n)) >> 64) as u64
    }

    fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }

    fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.index(items.len())]
    }

    /// An index into `weights`, each chosen in proportion to its weight.
    fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let mut x = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if x < u64::from(w) {
                return i;
            }
            x -= u64::from(w);
        }
        weights.len() - 1
    }

    /// A value from the edges decoders get wrong: zero, all ones, single
    /// bits, sign boundaries of every width, small numbers; or random.
    fn interesting(&mut self) -> u64 {
        const EDGES: [u64; 14] = [
            0,
            1,
            u64::MAX,
            0x7f,
            0x80,
            0xff,
            0x7fff,
            0x8000,
            0xffff,
            0x7fff_ffff,
            0x8000_0000,
            0xffff_ffff,
            0x8000_0000_0000_0000,
            0x7fff_ffff_ffff_ffff,
        ];
        match self.below(8) {
            0 => self.pick(&EDGES),
            1 => 1 << self.below(64),
            2 => !(1 << self.below(64)),
            3 => self.below(32),
            4 => (1 << self.below(64)) - 1,
            _ => self.u64(),
        }
    }
}

/// SplitMix64's finaliser: turns related numbers into unrelated seeds.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a, to give every target its own stream from one run seed.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn case_seed(run_seed: u64, target: &str, execution: u64) -> u64 {
    mix(mix(run_seed ^ name_hash(target)).wrapping_add(execution))
}

/// Bits `hi..=lo` of `v`, as the Arm ARM draws them.
fn bits(v: u64, hi: u32, lo: u32) -> u64 {
    (v >> lo) & (u64::MAX >> (63 - (hi - lo)))
}

/// The low `size` bytes' mask.
fn width_mask(size: u8) -> u64 {
    if size >= 8 {
        u64::MAX
    } else {
        (1u64 << (u32::from(size) * 8)) - 1
    }
}

// ---------------------------------------------------------------------------
// The harness
// ---------------------------------------------------------------------------

const DEFAULT_SEED: u64 = 0xb01c_4ead_f022_5eed;

struct Settings {
    seed: u64,
    execs: Option<u64>,
    replay: Option<u64>,
    /// Known issues that fail anyway: all (`1`) or those named.
    strict: Option<Vec<String>>,
}

fn parse_number(var: &str, value: &str) -> u64 {
    let v = value.trim().replace('_', "");
    let parsed = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    parsed.unwrap_or_else(|_| panic!("{var}={value:?}: not a number"))
}

fn settings() -> &'static Settings {
    static SETTINGS: OnceLock<Settings> = OnceLock::new();
    SETTINGS.get_or_init(|| {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Settings {
            seed: var("BULKHEAD_FUZZ_SEED")
                .map_or(DEFAULT_SEED, |v| parse_number("BULKHEAD_FUZZ_SEED", &v)),
            execs: var("BULKHEAD_FUZZ_EXECS").map(|v| parse_number("BULKHEAD_FUZZ_EXECS", &v)),
            replay: var("BULKHEAD_FUZZ_REPLAY").map(|v| parse_number("BULKHEAD_FUZZ_REPLAY", &v)),
            strict: var("BULKHEAD_FUZZ_STRICT").filter(|v| v != "0").map(|v| {
                if v == "1" {
                    Vec::new()
                } else {
                    v.split(',').map(|id| id.trim().to_string()).collect()
                }
            }),
        }
    })
}

/// An input a target can run; sequences can offer smaller versions of
/// themselves, so a failure is reported on a short input.
trait Case: Debug + Clone {
    fn smaller(&self) -> Vec<Self> {
        Vec::new()
    }
}

/// Candidates for shrinking a sequence: drop a run of steps, longest first.
fn shorter<T: Clone>(steps: &[T]) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    let mut chunk = steps.len() / 2;
    while chunk >= 1 {
        let mut at = 0;
        while at + chunk <= steps.len() {
            let mut v = steps[..at].to_vec();
            v.extend_from_slice(&steps[at + chunk..]);
            out.push(v);
            at += chunk;
        }
        chunk /= 2;
    }
    out
}

thread_local! {
    /// While set, a panic on this thread is recorded, not printed.
    static QUIET: Cell<bool> = const { Cell::new(false) };
    /// The last recorded panic: its message and location.
    static LAST_PANIC: RefCell<String> = const { RefCell::new(String::new()) };
}

fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if QUIET.with(Cell::get) {
                let payload = info.payload();
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "(non-string panic payload)".into());
                let location = info
                    .location()
                    .map_or_else(|| "?".into(), |l| l.to_string());
                LAST_PANIC.with(|p| *p.borrow_mut() = format!("{message}\n    at {location}"));
            } else {
                default(info);
            }
        }));
    });
}

/// Runs `f`, turning a panic into its message and location.
fn catch<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    let outer = QUIET.with(|q| q.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(outer));
    result.map_err(|_| LAST_PANIC.with(|p| p.borrow().clone()))
}

/// The location line of a caught panic, to keep shrinking on one bug.
fn location(message: &str) -> &str {
    message.rsplit("\n    at ").next().unwrap_or(message)
}

/// Shrinks a failing input, keeping only candidates that fail at the same
/// place.
fn shrink<I: Case>(mut input: I, mut message: String, run: &impl Fn(&I) -> u64) -> (I, String) {
    let at = location(&message).to_string();
    let mut budget = 20_000u32;
    'search: loop {
        for candidate in input.smaller() {
            if budget == 0 {
                break 'search;
            }
            budget -= 1;
            if let Err(m) = catch(|| run(&candidate))
                && location(&m) == at
            {
                input = candidate;
                message = m;
                continue 'search;
            }
        }
        break;
    }
    (input, message)
}

fn truncated(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} more bytes)", &text[..end], text.len() - end)
}

/// Runs one target: `default_execs` executions (or `BULKHEAD_FUZZ_EXECS`),
/// each on a fresh input from `generate`, checked by `run`, which returns
/// how many decoder calls it made.
fn fuzz<I: Case>(
    target: &str,
    default_execs: u64,
    generate: impl Fn(&mut Rng) -> I,
    run: impl Fn(&I) -> u64,
) {
    install_panic_hook();
    let s = settings();
    if let Some(seed) = s.replay {
        let input = generate(&mut Rng::new(seed));
        println!("fuzz {target}: replaying case seed {seed:#018x}\n  input: {input:#?}");
        if let Err(message) = catch(|| run(&input)) {
            panic!("fuzz {target}: case seed {seed:#018x} fails:\n  panic: {message}");
        }
        println!("fuzz {target}: case seed {seed:#018x} passes");
        return;
    }
    let execs = s.execs.unwrap_or(default_execs);
    let start = Instant::now();
    let mut calls = 0u64;
    for execution in 0..execs {
        let seed = case_seed(s.seed, target, execution);
        let input = match catch(|| generate(&mut Rng::new(seed))) {
            Ok(input) => input,
            Err(message) => panic!(
                "fuzz {target}: the generator panicked (a harness bug) on case seed \
                 {seed:#018x}: {message}"
            ),
        };
        match catch(|| run(&input)) {
            Ok(n) => calls += n,
            Err(message) => {
                let original = format!("{input:?}");
                let (small, small_message) = shrink(input, message.clone(), &run);
                let mut report = format!(
                    "fuzz {target}: FAILED on execution {execution} of {execs} \
                     (run seed {:#018x})\n  case seed: {seed:#018x}\n  panic: {message}\n",
                    s.seed
                );
                if small_message != message {
                    let _ = writeln!(report, "  panic on the shrunk input: {small_message}");
                }
                let _ = writeln!(
                    report,
                    "  input (shrunk): {}",
                    truncated(format!("{small:#?}"), 20_000)
                );
                let _ = writeln!(
                    report,
                    "  input (as generated): {}",
                    truncated(original, 4_000)
                );
                let _ = write!(
                    report,
                    "  replay: BULKHEAD_FUZZ_REPLAY={seed:#018x} cargo test --test fuzz -- \
                     --exact {target} --nocapture"
                );
                panic!("{report}");
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let mut known = String::new();
    for k in &KNOWN {
        let n = k.hits.load(Ordering::Relaxed);
        if n > 0 && k.target == target {
            let _ = write!(known, "; known issue {} skipped {n} times", k.id);
        }
    }
    println!(
        "fuzz {target}: {execs} executions, {calls} decoder calls, {secs:.2} s, seed {:#018x}{known}",
        s.seed
    );
}

/// A known, reported issue: a check that would fail today. By default the
/// harness counts it and carries on (so CI stays green while the fix is
/// under way); `BULKHEAD_FUZZ_STRICT=1` makes it fail as any other. Once
/// an issue is fixed, remove its entry: its check then always applies.
struct Known {
    id: &'static str,
    target: &'static str,
    hits: AtomicU64,
}

/// Known, reported issues not fixed yet (none now): listed here with the
/// reason, counted and skipped unless `BULKHEAD_FUZZ_STRICT` names them.
static KNOWN: [Known; 0] = [];

/// Checks `ok`, unless it is the known issue `id` and the run is not strict.
fn check_known(id: &str, ok: bool, message: impl FnOnce() -> String) {
    if ok {
        return;
    }
    let strict = settings()
        .strict
        .as_ref()
        .is_some_and(|ids| ids.is_empty() || ids.iter().any(|s| s == id));
    if !strict && let Some(k) = KNOWN.iter().find(|k| k.id == id) {
        k.hits.fetch_add(1, Ordering::Relaxed);
        return;
    }
    panic!("{} (known issue {id})", message());
}

/// Hex in `Debug` output, for addresses and register values.
struct Hex(u64);

impl Debug for Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// Bytes shown as a byte string.
#[derive(Clone, PartialEq, Eq)]
struct Bytes(Vec<u8>);

impl Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

fn hex_list(values: &[u64]) -> Vec<Hex> {
    values.iter().map(|&v| Hex(v)).collect()
}

// ---------------------------------------------------------------------------
// trap: ESR_EL2 / FAR_EL2 / HPFAR_EL2 into an Exit; load and store values
// ---------------------------------------------------------------------------

#[derive(Clone)]
struct TrapCase {
    esr: u64,
    far: u64,
    hpfar: u64,
    /// What an emulated device returned, for a load.
    raw: u64,
    /// The source register, for a store.
    reg_value: u64,
}

impl Debug for TrapCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrapCase")
            .field("esr", &Hex(self.esr))
            .field("far", &Hex(self.far))
            .field("hpfar", &Hex(self.hpfar))
            .field("raw", &Hex(self.raw))
            .field("reg_value", &Hex(self.reg_value))
            .finish()
    }
}

impl Case for TrapCase {}

/// The syndrome of a stage-2 data abort from a lower EL (ISS, Arm ARM
/// D19.2.37): mostly valid ones (ISV) of every size, register and fault.
fn dabt_iss(r: &mut Rng) -> u64 {
    let isv = r.percent(90);
    let mut iss = 0;
    if isv {
        iss |= 1 << 24;
        iss |= r.below(4) << 22; // SAS
        iss |= u64::from(r.percent(25)) << 21; // SSE
        let srt = if r.one_in(6) { 31 } else { r.below(32) };
        iss |= srt << 16;
        iss |= u64::from(r.percent(60)) << 15; // SF
        iss |= u64::from(r.one_in(10)) << 14; // AR
    } else if r.one_in(3) {
        iss |= r.below(1 << 10) << 14; // RES0 / FEAT_LS64 bits, garbage
    }
    iss |= u64::from(r.one_in(20)) << 13; // VNCR
    iss |= u64::from(r.one_in(20)) << 10; // FnV
    iss |= u64::from(r.one_in(20)) << 9; // EA
    iss |= u64::from(r.one_in(20)) << 8; // CM
    iss |= u64::from(r.one_in(20)) << 7; // S1PTW
    iss |= u64::from(r.bool()) << 6; // WnR
    let dfsc = if r.percent(80) {
        r.pick(&[
            0x04, 0x05, 0x06, 0x07, 0x09, 0x0a, 0x0b, 0x0d, 0x0e, 0x0f, 0x10, 0x21, 0x30,
        ])
    } else {
        r.below(64)
    };
    iss | dfsc
}

/// A trapped MSR/MRS syndrome: the GIC's SGI registers most of the time.
fn sysreg_iss(r: &mut Rng) -> u64 {
    let (op0, op1, crn, crm, op2) = match r.below(6) {
        0..=2 => (3, 0, 12, 11, 5), // ICC_SGI1R_EL1
        3 => (3, 1, 12, 11, 6),     // ICC_ASGI1R_EL1
        4 => (3, 2, 12, 11, 7),     // ICC_SGI0R_EL1
        _ => (r.below(4), r.below(8), r.below(16), r.below(16), r.below(8)),
    };
    let rt = if r.one_in(6) { 31 } else { r.below(32) };
    let garbage = if r.one_in(8) { r.below(8) << 22 } else { 0 };
    garbage
        | (op0 << 20)
        | (op2 << 17)
        | (op1 << 14)
        | (crn << 10)
        | (rt << 5)
        | (crm << 1)
        | u64::from(r.bool())
}

fn gen_esr(r: &mut Rng) -> u64 {
    if r.percent(10) {
        return r.interesting();
    }
    const OTHER: [u64; 14] = [
        0x00, 0x01, 0x07, 0x0e, 0x11, 0x15, 0x19, 0x1a, 0x21, 0x22, 0x25, 0x2c, 0x2f, 0x3c,
    ];
    let ec = match r.weighted(&[30, 20, 10, 10, 8, 12, 10]) {
        0 => 0x24,
        1 => 0x18,
        2 => 0x16,
        3 => 0x17,
        4 => 0x20,
        5 => r.pick(&OTHER),
        _ => r.below(64),
    };
    let il = if r.percent(95) { 1 << 25 } else { 0 };
    let iss = match ec {
        0x24 | 0x25 => dabt_iss(r),
        0x18 => sysreg_iss(r),
        0x16 | 0x17 if r.percent(80) => {
            if r.percent(70) {
                0
            } else {
                r.below(1 << 16)
            }
        }
        0x20 | 0x21 if r.percent(70) => {
            (u64::from(r.one_in(10)) << 7) | r.pick(&[0x04, 0x05, 0x06, 0x07, 0x0d, 0x0f, 0x10])
        }
        _ => r.below(1 << 25),
    };
    // ESR_EL2[63:32]: ISS2 and RES0; a decoder must not trip on them.
    let upper = if r.one_in(10) {
        r.u64() & !0xffff_ffff
    } else {
        0
    };
    upper | (ec << 26) | il | iss
}

fn gen_trap(r: &mut Rng) -> TrapCase {
    // The faulting IPA: the GIC, the UART, RAM, or anywhere in 48 bits.
    let ipa = match r.below(5) {
        0 => 0x0800_0000 + r.below(0x1_0000),
        1 => 0x080a_0000 + r.below(0x10_0000),
        2 => 0x0900_0000 + r.below(0x1000),
        3 => 0x4000_0000 + r.below(0x1000_0000),
        _ => r.below(1 << 48),
    };
    let hpfar = match r.below(10) {
        0 => r.u64(),
        // FIPA plus bits HPFAR does not define (NS, RES0).
        1 => ((ipa >> 12) << 4) | (r.u64() & !0x0fff_ffff_fff0),
        _ => (ipa >> 12) << 4,
    };
    let far = if r.percent(70) {
        (r.u64() & !0xfff) | (ipa & 0xfff)
    } else {
        r.u64()
    };
    TrapCase {
        esr: gen_esr(r),
        far,
        hpfar,
        raw: r.interesting(),
        reg_value: r.interesting(),
    }
}

/// The bytes a load leaves in its register, by the Arm ARM: the `size`
/// bytes zero- or sign-extended, then the upper half cleared for a W
/// register.
fn reference_load(size: u8, sign_extend: bool, wide: bool, raw: u64) -> u64 {
    let low = raw & width_mask(size);
    let value = match (sign_extend, size) {
        (true, 1) => low as u8 as i8 as i64 as u64,
        (true, 2) => low as u16 as i16 as i64 as u64,
        (true, 4) => low as u32 as i32 as i64 as u64,
        _ => low,
    };
    if wide { value } else { value & 0xffff_ffff }
}

fn check_trap(c: &TrapCase) -> u64 {
    let exit = Exit::decode(c.esr, c.far, c.hpfar);
    assert_eq!(
        Exit::decode(c.esr & 0xffff_ffff, c.far, c.hpfar),
        exit,
        "ESR_EL2[63:32] (ISS2, RES0) changed the decoding"
    );
    let ec = bits(c.esr, 31, 26) as u8;
    let iss = bits(c.esr, 24, 0);
    // HPFAR_EL2.FIPA [43:4] is IPA[51:12]; FAR_EL2 gives the page offset.
    let ipa = (bits(c.hpfar, 43, 4) << 12) | (c.far & 0xfff);
    let mut calls = 2;
    match ec {
        0x16 => assert_eq!(exit, Exit::Hvc { imm: iss as u16 }),
        0x17 => assert_eq!(exit, Exit::Smc { imm: iss as u16 }),
        0x18 => {
            let Exit::SysReg(s) = exit else {
                panic!("EC 0x18 decoded as {exit:?}")
            };
            let reg = sysreg(
                bits(iss, 21, 20) as u32,
                bits(iss, 16, 14) as u32,
                bits(iss, 13, 10) as u32,
                bits(iss, 4, 1) as u32,
                bits(iss, 19, 17) as u32,
            );
            assert_eq!(s.reg, reg, "system register fields");
            assert!(s.reg < 1 << 16);
            assert_eq!(u64::from(s.rt), bits(iss, 9, 5), "Rt");
            assert_eq!(s.read, iss & 1 == 1, "direction");
        }
        0x24 => {
            let Exit::DataAbort(d) = exit else {
                panic!("EC 0x24 decoded as {exit:?}")
            };
            assert_eq!(d.ipa, Ipa(ipa), "IPA from HPFAR.FIPA and FAR[11:0]");
            assert!(d.ipa.0 < 1 << 52, "IPA beyond 52 bits");
            assert_eq!(d.valid, bits(iss, 24, 24) == 1, "ISV");
            assert_eq!(u64::from(d.size), 1 << bits(iss, 23, 22), "SAS");
            assert!(matches!(d.size, 1 | 2 | 4 | 8));
            assert_eq!(d.sign_extend, bits(iss, 21, 21) == 1, "SSE");
            assert_eq!(u64::from(d.reg), bits(iss, 20, 16), "SRT");
            assert!(d.reg <= 31);
            assert_eq!(d.wide, bits(iss, 15, 15) == 1, "SF");
            assert_eq!(d.write, bits(iss, 6, 6) == 1, "WnR");
            assert_eq!(u64::from(d.dfsc), bits(iss, 5, 0), "DFSC");
            check_abort_values(&d, c);
            calls += 2;
        }
        0x20 => assert_eq!(exit, Exit::InstructionAbort { ipa: Ipa(ipa) }),
        _ => assert_eq!(exit, Exit::Other { ec }),
    }
    calls
}

fn check_abort_values(d: &DataAbort, c: &TrapCase) {
    let n = usize::from(d.size);
    let mut bytes = [0u8; 8];
    bytes[..n].copy_from_slice(&c.reg_value.to_le_bytes()[..n]);
    let store = d.store_value(c.reg_value);
    assert_eq!(
        store,
        u64::from_le_bytes(bytes),
        "a store of {n} bytes writes the register's low bytes"
    );
    let load = d.load_value(c.raw);
    assert_eq!(
        load,
        reference_load(d.size, d.sign_extend, d.wide, c.raw),
        "load of {n} bytes (SSE {}, SF {})",
        d.sign_extend,
        d.wide
    );
    if !d.wide {
        assert!(load <= u64::from(u32::MAX), "a W register got upper bits");
    }
    if !d.sign_extend {
        assert!(load <= width_mask(d.size), "a zero-extending load grew");
    }
}

#[test]
fn trap() {
    fuzz("trap", 150_000, gen_trap, check_trap);
}

// ---------------------------------------------------------------------------
// console: framing and the arbiter
// ---------------------------------------------------------------------------

/// What one step of the console case does.
#[derive(Clone, Debug)]
enum ConsoleOp {
    /// Partition `p` writes bytes.
    Write(usize, Bytes),
    /// A hypervisor line about partition `p`.
    Hyp(usize),
    /// Partition `p`'s CPU pumps, with the UART taking `room` bytes.
    Pump(usize, usize),
    /// Time passes (counter ticks).
    Wait(u64),
}

#[derive(Clone, Debug)]
struct ConsoleCase(Vec<ConsoleOp>);

impl Case for ConsoleCase {
    fn smaller(&self) -> Vec<Self> {
        let mut out: Vec<Self> = shorter(&self.0).into_iter().map(ConsoleCase).collect();
        // Then shorter byte runs.
        for (i, op) in self.0.iter().enumerate() {
            if let ConsoleOp::Write(p, b) = op
                && b.0.len() > 1
            {
                for bytes in shorter(&b.0) {
                    let mut v = self.0.clone();
                    v[i] = ConsoleOp::Write(*p, Bytes(bytes));
                    out.push(ConsoleCase(v));
                }
            }
        }
        out
    }
}

/// Each partition's own printable characters, so the output shows whose
/// byte is where; control bytes are everybody's.
const ALPHABETS: [&[u8]; 3] = [b"abcdefgh", b"ijklmnop", b"qrstuvwx"];
const NAMES: [&str; 3] = ["p0", "p1", "partition-two"];
const CONSOLE_HOLD: u64 = 20;
const CONSOLE_IDLE: u64 = 50;

/// A run of guest output: text of every length around LINE_MAX, newlines,
/// carriage returns, escape sequences, control characters.
fn gen_output(r: &mut Rng, p: usize) -> Vec<u8> {
    let printable =
        |r: &mut Rng, n: usize| -> Vec<u8> { (0..n).map(|_| r.pick(ALPHABETS[p])).collect() };
    match r.weighted(&[30, 10, 8, 15, 10, 10, 10]) {
        0 => {
            let n = r.index(40);
            printable(r, n)
        }
        1 => {
            let n = LINE_MAX - 2 + r.index(5);
            printable(r, n)
        }
        2 => {
            let n = r.index(3 * LINE_MAX);
            printable(r, n)
        }
        3 => b"\n".to_vec(),
        4 => b"\r\n".to_vec(),
        5 => r
            .pick(&[
                &b"\x1b[K"[..],
                b"\x1b[2D",
                b"\x08\x08",
                b"\t",
                b"\r",
                b"\x07",
            ])
            .to_vec(),
        _ => {
            let n = r.index(12);
            (0..n)
                .map(|_| r.pick(&[b'\r', b'\n', 0x00, 0x08, 0x1b, 0x7f, ALPHABETS[p][0]]))
                .collect()
        }
    }
}

fn gen_console(r: &mut Rng) -> ConsoleCase {
    let n = 1 + r.index(40);
    ConsoleCase(
        (0..n)
            .map(|_| {
                let p = r.index(NAMES.len());
                match r.weighted(&[35, 5, 45, 15]) {
                    0 => ConsoleOp::Write(p, Bytes(gen_output(r, p))),
                    1 => ConsoleOp::Hyp(p),
                    2 => ConsoleOp::Pump(p, r.pick(&[0, 1, 3, 17, 64, 1 << 20])),
                    _ => ConsoleOp::Wait(r.pick(&[
                        1,
                        CONSOLE_HOLD,
                        CONSOLE_IDLE - 1,
                        CONSOLE_IDLE,
                        1000,
                    ])),
                }
            })
            .collect(),
    )
}

/// Whose prefix `line` (a visible line, or a part of one after `\r`)
/// starts with: a partition's index, or `NAMES.len()` for the hypervisor.
fn prefix_owner(line: &[u8]) -> Option<usize> {
    if line.starts_with(b"[bulkhead] ") {
        return Some(NAMES.len());
    }
    NAMES
        .iter()
        .position(|n| line.starts_with(format!("[{n}] ").as_bytes()))
}

/// Checks the framing promises on what reached the UART and returns each
/// partition's content (its bytes without the framing).
fn check_framing(out: &[u8]) -> Vec<Vec<u8>> {
    let mut content = vec![Vec::new(); NAMES.len()];
    // Visible lines end with `\n`; the last may still be open.
    for line in out.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let owner = prefix_owner(line)
            .unwrap_or_else(|| panic!("a line without a prefix: {:?}", Bytes(line.to_vec())));
        // Every `\r` in a line is followed by nothing or the same prefix.
        for (k, part) in line.split(|&b| b == b'\r').enumerate() {
            if k > 0 && part.is_empty() {
                continue;
            }
            assert_eq!(
                prefix_owner(part),
                Some(owner),
                "a part after a carriage return without its line's prefix: {:?}",
                Bytes(line.to_vec())
            );
            if owner == NAMES.len() {
                continue;
            }
            let prefix_len = NAMES[owner].len() + 3;
            for &b in &part[prefix_len..] {
                if b.is_ascii_lowercase() {
                    assert!(
                        ALPHABETS[owner].contains(&b),
                        "{b:?} of another partition in a line of {}: {:?}",
                        NAMES[owner],
                        Bytes(line.to_vec())
                    );
                }
                content[owner].push(b);
            }
        }
    }
    content
}

fn check_console(c: &ConsoleCase) -> u64 {
    let arbiter = Arbiter::new();
    let mut rings: Vec<OutRing> = (0..NAMES.len())
        .map(|_| OutRing::new(Box::leak(vec![0; 1 << 16].into_boxed_slice())))
        .collect();
    let mut senders: Vec<Sender> = (0..NAMES.len()).map(|_| Sender::new()).collect();
    let mut written = vec![Vec::new(); NAMES.len()];
    let mut out = Vec::new();
    let mut now = 0u64;
    let mut pump =
        |p: usize, room: usize, now: u64, rings: &mut Vec<OutRing>, out: &mut Vec<u8>| {
            let limits = Limits {
                now,
                hold: CONSOLE_HOLD,
                idle_after: CONSOLE_IDLE,
                budget: 1 << 20,
            };
            let mut room = room;
            let mut uart = |byte| {
                if room == 0 {
                    return false;
                }
                room -= 1;
                out.push(byte);
                true
            };
            senders[p].pump(
                &mut rings[p],
                (&arbiter, p as u32, NAMES[p]),
                limits,
                &mut uart,
            )
        };
    let mut calls = 0;
    for op in &c.0 {
        calls += 1;
        match op {
            ConsoleOp::Write(p, bytes) => {
                for &b in &bytes.0 {
                    assert!(rings[*p].push(b, now), "the ring is large enough");
                }
                written[*p].extend_from_slice(&bytes.0);
            }
            ConsoleOp::Hyp(p) => {
                assert!(rings[*p].push_hyp_line(&[b"[bulkhead] ", b"a hypervisor line"]));
            }
            ConsoleOp::Pump(p, room) => {
                pump(*p, *room, now, &mut rings, &mut out);
            }
            ConsoleOp::Wait(ticks) => now += ticks,
        }
    }
    // Everything drains: each partition in turn, the UART always ready,
    // time moving on so idle lines yield.
    for round in 0.. {
        now += CONSOLE_IDLE;
        let mut left = false;
        for p in 0..NAMES.len() {
            left |= pump(p, 1 << 20, now, &mut rings, &mut out);
        }
        if !left {
            break;
        }
        assert!(round < 10_000, "the output never drained");
        calls += 1;
    }
    let content = check_framing(&out);
    // Nothing lost, nothing twice, in order: each partition's content is
    // what it wrote but for its line ends and carriage returns.
    for p in 0..NAMES.len() {
        let strip = |v: &[u8]| -> Vec<u8> {
            v.iter()
                .copied()
                .filter(|&b| b != b'\r' && b != b'\n')
                .collect()
        };
        assert_eq!(
            Bytes(strip(&content[p])),
            Bytes(strip(&written[p])),
            "{}'s content",
            NAMES[p]
        );
    }
    calls
}

#[test]
fn console_framing() {
    fuzz("console_framing", 4_000, gen_console, check_console);
}

// ---------------------------------------------------------------------------
// console: the emulated PL011
// ---------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum UartOp {
    Access {
        write: bool,
        offset: u64,
        size: u8,
        value: u64,
    },
    Receive(u8),
}

impl Debug for UartOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            UartOp::Access {
                write: true,
                offset,
                size,
                value,
            } => write!(f, "write {offset:#x}/{size} = {value:#x}"),
            UartOp::Access { offset, size, .. } => write!(f, "read {offset:#x}/{size}"),
            UartOp::Receive(b) => write!(f, "receive {b:#04x}"),
        }
    }
}

#[derive(Clone, Debug)]
struct UartCase(Vec<UartOp>);

impl Case for UartCase {
    fn smaller(&self) -> Vec<Self> {
        shorter(&self.0).into_iter().map(UartCase).collect()
    }
}

/// An access size: what a data abort syndrome can say (1, 2, 4, 8), and
/// now and then one it cannot.
fn gen_size(r: &mut Rng) -> u8 {
    match r.weighted(&[15, 10, 50, 15, 10]) {
        0 => 1,
        1 => 2,
        2 => 4,
        3 => 8,
        _ => r.pick(&[0, 3, 5, 6, 7, 16, 64, 128, 255]),
    }
}

/// An offset near one of `known`, misaligned now and then; or anywhere.
fn gen_offset_near(r: &mut Rng, known: &[u64], frame: u64) -> u64 {
    let base = match r.weighted(&[70, 15, 10, 5]) {
        0 => r.pick(known),
        1 => r.below(frame),
        2 => frame - 8 + r.below(24),
        _ => r.u64(),
    };
    if r.percent(15) {
        base.wrapping_add(r.between(1, 7))
    } else {
        base
    }
}

fn gen_uart(r: &mut Rng) -> UartCase {
    const KNOWN: [u64; 24] = [
        0x000, 0x004, 0x018, 0x020, 0x024, 0x028, 0x02c, 0x030, 0x034, 0x038, 0x03c, 0x040, 0x044,
        0x048, 0xfe0, 0xfe4, 0xfe8, 0xfec, 0xff0, 0xff4, 0xff8, 0xffc, 0xfdc, 0x1000,
    ];
    let n = 1 + r.index(48);
    UartCase(
        (0..n)
            .map(|_| {
                if r.percent(30) {
                    return UartOp::Receive(r.u8());
                }
                let offset = gen_offset_near(r, &KNOWN, pl011::SIZE);
                // Writes to the registers that decide receiving: mostly on.
                let value = match offset {
                    pl011::CR if r.percent(80) => {
                        u64::from(pl011::CR_UARTEN | pl011::CR_RXE | pl011::CR_TXE)
                    }
                    pl011::LCR_H if r.percent(70) => u64::from(pl011::LCR_H_FEN),
                    _ => r.interesting(),
                };
                UartOp::Access {
                    write: r.bool(),
                    offset,
                    size: gen_size(r),
                    value,
                }
            })
            .collect(),
    )
}

/// PL011 registers that read back what was written (ILPR, IBRD, FBRD,
/// LCR_H, CR, IFLS, DMACR).
fn uart_readback(offset: u64) -> bool {
    matches!(offset, 0x020..=0x034 | 0x048) && offset.is_multiple_of(4)
}

fn check_uart(c: &UartCase) -> u64 {
    const ID: [u8; 8] = [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1];
    let mut uart = Pl011::new();
    let mut readback = std::collections::HashMap::<u64, u32>::new();
    readback.insert(pl011::CR, pl011::CR_RESET);
    readback.insert(pl011::IFLS, pl011::IFLS_RESET);
    // The reference receive FIFO: what went in, in order.
    let mut fifo = std::collections::VecDeque::<u8>::new();
    let mut line = false;
    for op in &c.0 {
        match *op {
            UartOp::Receive(b) => {
                let room = uart.rx_room();
                let on = uart.receiving();
                let got = uart.receive(b);
                let want = if !on {
                    Received::Off
                } else if room == 0 {
                    Received::Overrun
                } else {
                    Received::Taken
                };
                assert_eq!(got, want, "receive {b:#x}");
                if got == Received::Taken {
                    fifo.push_back(b);
                }
            }
            UartOp::Access {
                write,
                offset,
                size,
                value,
            } => {
                // Natural alignment, as `u64::is_multiple_of` has it (size 0: only 0).
                let aligned = offset
                    .checked_rem(u64::from(size))
                    .map_or(offset == 0, |r| r == 0);
                let inside = offset < pl011::SIZE && aligned;
                if write {
                    let effect = uart.write(offset, size, value);
                    let want = if inside && offset == pl011::DR {
                        Effect::Byte(value as u8)
                    } else {
                        Effect::None
                    };
                    assert_eq!(effect, want, "{op:?}");
                    if inside && uart_readback(offset) {
                        let old = readback.insert(offset, value as u32).unwrap_or(0);
                        if offset == pl011::LCR_H && (old ^ value as u32) & pl011::LCR_H_FEN != 0 {
                            fifo.clear();
                        }
                    }
                } else {
                    let got = uart.read(offset, size);
                    let want = if !inside {
                        Some(0)
                    } else if offset == pl011::DR {
                        Some(fifo.pop_front().map_or(0, u32::from))
                    } else if (0xfe0..=0xffc).contains(&offset) && offset % 4 == 0 {
                        Some(u32::from(ID[((offset - 0xfe0) / 4) as usize]))
                    } else if uart_readback(offset) {
                        Some(readback.get(&offset).copied().unwrap_or(0))
                    } else if [pl011::RSR, pl011::FR, pl011::IMSC, pl011::RIS, pl011::MIS]
                        .contains(&offset)
                    {
                        None
                    } else {
                        Some(0)
                    };
                    match want {
                        // Received data in order; bit 11 may flag an overrun.
                        Some(w) if offset == pl011::DR && inside => {
                            assert_eq!(got & !pl011::DR_OE, w, "{op:?}")
                        }
                        Some(w) => assert_eq!(got, w, "{op:?}"),
                        None => {}
                    }
                }
            }
        }
        // The flags, the status registers and the line agree with the FIFO.
        let fr = uart.read(pl011::FR, 4);
        assert_eq!(uart.rx_count(), fifo.len());
        assert_eq!(fr & pl011::FR_RXFE != 0, fifo.is_empty(), "FR {fr:#x}");
        assert_eq!(
            fr & pl011::FR_RXFF != 0,
            fifo.len() == uart.depth(),
            "FR {fr:#x}"
        );
        assert_eq!(
            fr & (pl011::FR_TXFF | pl011::FR_BUSY),
            0,
            "transmit never waits"
        );
        assert_eq!(fr & pl011::FR_TXFE, pl011::FR_TXFE);
        let (ris, imsc, mis) = (
            uart.read(pl011::RIS, 4),
            uart.read(pl011::IMSC, 4),
            uart.read(pl011::MIS, 4),
        );
        assert_eq!(mis, ris & imsc);
        assert_eq!(imsc & !pl011::INT_ALL, 0);
        if fifo.is_empty() {
            assert_eq!(
                ris & (pl011::INT_RX | pl011::INT_RT),
                0,
                "empty: no receive interrupt"
            );
        }
        assert_eq!(uart.level(), mis != 0);
        match uart.line_changed() {
            Some(level) => {
                assert_ne!(level, line, "a change is a change");
                line = level;
            }
            None => assert_eq!(uart.level(), line, "an unreported change"),
        }
    }
    assert_eq!(uart.read(0xfe0, 4), 0x11);
    c.0.len() as u64 * 8
}

#[test]
fn console_pl011() {
    fuzz("console_pl011", 20_000, gen_uart, check_uart);
}

// ---------------------------------------------------------------------------
// vgic::regs: the GICD and GICR register model
// ---------------------------------------------------------------------------

/// MPIDR affinity: Aff3 [39:32], Aff2..Aff0 [23:0].
const AFF: u64 = 0xff_00ff_ffff;
/// The private interrupts a partition owns: SGIs 0..16 and the EL1 timers'
/// PPIs, 27 (virtual) and 30 (physical) (written here from the
/// architecture, not the crate).
const OWNED_PRIVATE: u32 = 0x4800_ffff;
/// The EL1 timers' PPIs, the private interrupts forwarded from hardware.
const TIMERS: u32 = 1 << 27 | 1 << 30;
const DEFAULT_PRIORITY: u8 = 0xa0;
/// ICFGR1's Int_config[1] of PPIs 27 and 30.
const ICFGR1_TIMERS: u32 = 1 << 23 | 1 << 29;
const IROUTER_KEEP: u64 = 0xff_80ff_ffff;
const IROUTER_IRM: u64 = 1 << 31;
const GICD_SIZE: u64 = 0x1_0000;
const GICR_SIZE: u64 = 0x2_0000;
const SGI_BASE: u64 = 0x1_0000;

/// vCPU affinities for a partition of `n` vCPUs, in one of the layouts
/// boards use (identity, clusters, Aff0 beyond 15, Aff2/Aff3), with
/// non-affinity bits now and then; all distinct.
fn gen_vmpidrs(r: &mut Rng, n: usize) -> Vec<u64> {
    let layout = r.weighted(&[40, 15, 10, 10, 10, 10, 5]);
    let cluster = 1 + r.below(4);
    let mut out: Vec<u64> = Vec::new();
    let mut i = 0u64;
    while out.len() < n {
        let m = match layout {
            0 => i,
            1 => i | (r.pick(&[1u64 << 24, 1 << 30, 1 << 31, 0x8000_0000_0000_0000])),
            2 => ((i / cluster) << 8) | (i % cluster),
            3 => 16 * r.below(4) + r.below(16),
            4 => (r.below(3) << 32) | (r.below(3) << 16) | (r.below(2) << 8) | r.below(20),
            5 => r.below(2) << 8 | r.below(40),
            _ => r.u64(),
        };
        i += 1;
        if !out.iter().any(|&o| o & AFF == m & AFF) {
            out.push(m);
        }
    }
    out
}

/// The SPIs a partition owns: a few, clustered (so they share registers),
/// at the ends of the range now and then; distinct. Rarely more than
/// `MAX_SPIS` (the extra are ignored).
fn gen_spis(r: &mut Rng) -> Vec<u32> {
    let n = match r.weighted(&[5, 60, 25, 10]) {
        0 => 0,
        1 => 1 + r.index(6),
        2 => 7 + r.index(26),
        _ => 32 + r.index(3),
    };
    let base = if r.bool() {
        32
    } else {
        r.between(32, 1000) as u32
    };
    let mut out: Vec<u32> = Vec::new();
    let mut guard = 0;
    while out.len() < n && guard < 10_000 {
        guard += 1;
        let intid = match r.below(10) {
            0 => r.between(32, 1019) as u32,
            1 => r.pick(&[32, 33, 63, 64, 991, 992, 1018, 1019]),
            _ => (base + r.below(70) as u32).min(1019),
        };
        if !out.contains(&intid) {
            out.push(intid);
        }
    }
    out
}

/// The live state the model cannot see, as the hypervisor's list registers
/// and queue would report it: anything, including bits of interrupts the
/// partition does not own.
#[derive(Clone, Debug)]
struct FakeLive {
    private: [(u32, u32); MAX_VCPUS],
    spi_pending: Vec<u32>,
    spi_active: Vec<u32>,
}

impl Live for FakeLive {
    fn private(&self, vcpu: usize) -> (u32, u32) {
        self.private[vcpu]
    }
    fn spi(&self, intid: u32) -> (bool, bool) {
        (
            self.spi_pending.contains(&intid),
            self.spi_active.contains(&intid),
        )
    }
}

#[derive(Clone, Copy)]
struct RegOp {
    write: bool,
    frame: Frame,
    offset: u64,
    size: u8,
    value: u64,
}

impl Debug for RegOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let frame = match self.frame {
            Frame::Distributor => "GICD".to_string(),
            Frame::Redistributor { vcpu } => format!("GICR{vcpu}"),
            Frame::DistributorV2 { vcpu } => format!("GICDv2/{vcpu}"),
        };
        if self.write {
            write!(
                f,
                "write {frame}+{:#x}/{} = {:#x}",
                self.offset, self.size, self.value
            )
        } else {
            write!(f, "read {frame}+{:#x}/{}", self.offset, self.size)
        }
    }
}

/// What the hypervisor sets up (or left behind) before the guest's
/// accesses: which interrupts are forwarded from hardware, and withdrawals
/// its CPUs have not taken yet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Setup {
    /// `PrivateIrqs::forwarded` of each vCPU (of all `MAX_VCPUS`): the
    /// virtual timer's bit, now and then with bits of interrupts the
    /// partition does not own (which must change nothing).
    forwarded: Vec<u32>,
    /// The INTIDs of the SPIs that are forwarded (`Spi::forwarded`), and
    /// now and then one the partition does not own.
    spi_forwarded: Vec<u32>,
    /// Each vCPU's `withdraw_pending`, `withdraw_active`,
    /// `withdraw_spi_pending`, `withdraw_spi_active`, not yet taken.
    withdrawn: Vec<[u32; 4]>,
}

impl Setup {
    fn apply(&self, state: &VgicState) {
        use std::sync::atomic::Ordering::SeqCst;
        for (p, &f) in state.private.iter().zip(&self.forwarded) {
            p.forwarded.store(f, SeqCst);
        }
        for (p, w) in state.private.iter().zip(&self.withdrawn) {
            p.withdraw_pending.store(w[0], SeqCst);
            p.withdraw_active.store(w[1], SeqCst);
            p.withdraw_spi_pending.store(w[2], SeqCst);
            p.withdraw_spi_active.store(w[3], SeqCst);
        }
        for spi in state.spis() {
            spi.forwarded
                .store(self.spi_forwarded.contains(&spi.intid), SeqCst);
        }
    }
}

#[derive(Clone)]
struct RegsCase {
    vmpidrs: Vec<u64>,
    spis: Vec<u32>,
    setup: Setup,
    live: FakeLive,
    ops: Vec<RegOp>,
}

impl Debug for RegsCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegsCase")
            .field("vmpidrs", &hex_list(&self.vmpidrs))
            .field("spis", &self.spis)
            .field("setup", &self.setup)
            .field("live", &self.live)
            .field("ops", &self.ops)
            .finish()
    }
}

impl Case for RegsCase {
    fn smaller(&self) -> Vec<Self> {
        let mut out: Vec<Self> = shorter(&self.ops)
            .into_iter()
            .map(|ops| RegsCase {
                ops,
                ..self.clone()
            })
            .collect();
        if self.live.private.iter().any(|&p| p != (0, 0))
            || !self.live.spi_pending.is_empty()
            || !self.live.spi_active.is_empty()
        {
            out.push(RegsCase {
                live: FakeLive {
                    private: [(0, 0); MAX_VCPUS],
                    spi_pending: Vec::new(),
                    spi_active: Vec::new(),
                },
                ..self.clone()
            });
        }
        for spis in shorter(&self.spis) {
            out.push(RegsCase {
                spis,
                ..self.clone()
            });
        }
        // A simpler set-up: nothing forwarded, or nothing withdrawn.
        let quiet = |v: &[u32]| v.iter().all(|&f| f == 0);
        if !quiet(&self.setup.forwarded) || !self.setup.spi_forwarded.is_empty() {
            let mut setup = self.setup.clone();
            setup.forwarded.iter_mut().for_each(|f| *f = 0);
            setup.spi_forwarded.clear();
            out.push(RegsCase {
                setup,
                ..self.clone()
            });
        }
        if self.setup.withdrawn.iter().any(|w| !quiet(w)) {
            let mut setup = self.setup.clone();
            setup.withdrawn.iter_mut().for_each(|w| *w = [0; 4]);
            out.push(RegsCase {
                setup,
                ..self.clone()
            });
        }
        out
    }
}

/// A value worth writing to the register at `offset` of `frame`: ones for
/// owned interrupts, an affinity for IROUTER, the WAKER bit; or anything.
fn gen_reg_value(r: &mut Rng, frame: Frame, offset: u64, c: &RegsCase) -> u64 {
    if r.percent(40) {
        return r.interesting();
    }
    match frame {
        Frame::Distributor if offset == 0 => r.below(4),
        Frame::Distributor if (0x6000..0x8000).contains(&offset) => {
            // IROUTER: a vCPU's affinity (maybe with IRM or junk), or random.
            let m = r.pick(&c.vmpidrs);
            let v = match r.below(4) {
                0 => m & AFF,
                1 => m,
                2 => (m & AFF) | IROUTER_IRM,
                _ => r.u64(),
            };
            if offset % 8 == 4 { v >> 32 } else { v }
        }
        Frame::Distributor if (0x80..0x400).contains(&offset) => {
            let first = ((offset - 0x80) % 0x80 / 4 * 32) as u32;
            let owned = c
                .spis
                .iter()
                .filter(|&&i| i >= first && i < first + 32)
                .fold(0u64, |b, &i| b | 1 << (i - first));
            if r.bool() { owned } else { owned & r.u64() }
        }
        Frame::Redistributor { .. } if offset == 0x14 => r.pick(&[0, 2, 4, 6, u64::MAX]),
        Frame::Redistributor { .. } => {
            let some = r.u32() & OWNED_PRIVATE;
            u64::from(r.pick(&[
                OWNED_PRIVATE,
                1 << 27,
                1 << 30,
                1,
                0xffff,
                ICFGR1_TIMERS,
                some,
            ]))
        }
        _ => r.interesting(),
    }
}

fn gen_reg_op(r: &mut Rng, c: &RegsCase) -> RegOp {
    let vcpus = c.vmpidrs.len().min(MAX_VCPUS);
    let spi = |r: &mut Rng| -> u64 {
        if !c.spis.is_empty() && r.percent(75) {
            u64::from(r.pick(&c.spis))
        } else {
            r.below(1024)
        }
    };
    let (frame, offset) = if r.percent(45) {
        let offset = match r.weighted(&[10, 25, 15, 10, 10, 10, 5, 10, 5, 6]) {
            0 => r.pick(&[
                0x0, 0x4, 0x8, 0xc, 0x10, 0x40, 0x48, 0x50, 0x58, 0xf00, 0xffe8,
            ]),
            // IGROUPR..ICACTIVER: the word of an owned SPI, in any bank.
            1 => 0x80 + r.below(7) * 0x80 + spi(r) / 32 * 4,
            2 => 0x400 + spi(r),
            3 => 0xc00 + spi(r) / 16 * 4,
            4 => 0x6000 + spi(r) * 8 + if r.one_in(4) { 4 } else { 0 },
            5 => r.pick(&[0x800, 0xd00, 0xe00, 0xf10, 0xf20, 0xf2c]) + r.below(0x40),
            6 => 0xffd0 + r.below(0x30),
            7 => r.pick(&[0x1000, 0x2000, 0x8000, 0xc000]) + r.below(0x1000),
            8 => r.below(GICD_SIZE),
            // GICD_CTLR: group 1 on and off (withdrawals, drains).
            _ => 0x0,
        };
        (Frame::Distributor, offset)
    } else {
        let vcpu = match r.weighted(&[90, 8, 2]) {
            0 => r.index(vcpus),
            1 => vcpus + r.index(MAX_VCPUS + 2 - vcpus),
            _ => usize::MAX - r.index(2),
        };
        let offset = match r.weighted(&[20, 30, 15, 10, 10, 10, 5]) {
            0 => r.pick(&[
                0x0, 0x4, 0x8, 0xc, 0x10, 0x14, 0x40, 0x44, 0x48, 0x70, 0x78, 0x7c, 0xa0, 0xb0,
                0xffe8,
            ]),
            1 => {
                SGI_BASE + 0x80 + r.below(7) * 0x80 + if r.one_in(5) { r.below(32) * 4 } else { 0 }
            }
            2 => {
                let span = if r.one_in(5) { 0x80 } else { 0x20 };
                SGI_BASE + 0x400 + r.below(span)
            }
            3 => SGI_BASE + r.pick(&[0xc00, 0xc04, 0xc08, 0xd00, 0xe00]),
            4 => 0xffd0 + r.below(0x30) + if r.bool() { SGI_BASE } else { 0 },
            5 => r.below(GICR_SIZE),
            _ => r.pick(&[GICR_SIZE - 8, GICR_SIZE - 4, GICR_SIZE, GICD_SIZE - 4]),
        };
        (Frame::Redistributor { vcpu }, offset)
    };
    let offset = match r.weighted(&[88, 8, 4]) {
        0 => offset,
        1 => offset.wrapping_add(r.between(1, 7)),
        _ => r.u64(),
    };
    // A size the register takes, most of the time (and then an aligned
    // offset for it); any size otherwise.
    let (sizes, _) = match frame {
        Frame::Distributor => gicd_layout(offset),
        Frame::Redistributor { .. } => gicr_layout(offset),
        Frame::DistributorV2 { .. } => unreachable!("the generator makes GICv3 frames only"),
    };
    let (size, offset) = if r.percent(75) {
        let fits: Vec<u8> = [1u8, 2, 4, 8]
            .into_iter()
            .filter(|&z| sizes & z != 0)
            .collect();
        let size = r.pick(&fits);
        let offset = if r.percent(95) {
            offset & !(u64::from(size) - 1)
        } else {
            offset
        };
        (size, offset)
    } else {
        (gen_size(r), offset)
    };
    RegOp {
        write: r.bool(),
        frame,
        offset,
        size,
        value: gen_reg_value(r, frame, offset, c),
    }
}

fn gen_regs(r: &mut Rng) -> RegsCase {
    let n = match r.weighted(&[30, 60, 10]) {
        0 => 1,
        1 => 2 + r.index(MAX_VCPUS - 1),
        _ => MAX_VCPUS + 1 + r.index(2), // more than a partition can have: the extra are ignored
    };
    let vmpidrs = gen_vmpidrs(r, n);
    let spis = gen_spis(r);
    let bits = |r: &mut Rng| -> u32 {
        match r.below(4) {
            0 => 0,
            1 => u32::MAX,
            _ => r.u32(),
        }
    };
    let live = if r.percent(30) {
        FakeLive {
            private: [(0, 0); MAX_VCPUS],
            spi_pending: Vec::new(),
            spi_active: Vec::new(),
        }
    } else {
        let mut private = [(0, 0); MAX_VCPUS];
        for p in &mut private {
            *p = (bits(r), bits(r));
        }
        let pick_spis = |r: &mut Rng| -> Vec<u32> {
            let mut v: Vec<u32> = spis.iter().copied().filter(|_| r.bool()).collect();
            v.push(r.below(1024) as u32); // an SPI the partition does not own
            v
        };
        FakeLive {
            private,
            spi_pending: pick_spis(r),
            spi_active: pick_spis(r),
        }
    };
    let setup = gen_setup(r, &spis);
    let mut c = RegsCase {
        vmpidrs,
        spis,
        setup,
        live,
        ops: Vec::new(),
    };
    let n = 1 + r.index(32);
    c.ops = (0..n).map(|_| gen_reg_op(r, &c)).collect();
    c
}

/// Forwarded interrupts, as the hypervisor marks them: none (a plain
/// model), both EL1 timers on every vCPU, or some of them on some; with
/// bits of unowned PPIs now and then. SPIs: none, all, or some.
fn gen_setup(r: &mut Rng, spis: &[u32]) -> Setup {
    const UNOWNED: u32 = !OWNED_PRIVATE;
    let timers = r.weighted(&[30, 40, 30]);
    let forwarded = (0..MAX_VCPUS)
        .map(|_| {
            let timer = match timers {
                0 => 0,
                1 => TIMERS,
                _ => u32::from(r.bool()) << 27 | u32::from(r.bool()) << 30,
            };
            let junk = if r.one_in(8) { r.u32() & UNOWNED } else { 0 };
            timer | junk
        })
        .collect();
    let mut spi_forwarded: Vec<u32> = match r.weighted(&[30, 30, 40]) {
        0 => Vec::new(),
        1 => spis.to_vec(),
        _ => spis.iter().copied().filter(|_| r.bool()).collect(),
    };
    if r.one_in(8) {
        spi_forwarded.push(r.below(1024) as u32);
    }
    let withdrawn = (0..MAX_VCPUS)
        .map(|_| {
            if r.percent(80) {
                [0; 4]
            } else {
                std::array::from_fn(|_| if r.bool() { 0 } else { r.u32() })
            }
        })
        .collect();
    Setup {
        forwarded,
        spi_forwarded,
        withdrawn,
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct PrivateSnap {
    enabled: u32,
    pending: u32,
    active: u32,
    icfgr1: u32,
    priority: [u8; 32],
    asleep: bool,
    forwarded: u32,
    withdraw_pending: u32,
    withdraw_active: u32,
    withdraw_spi_pending: u32,
    withdraw_spi_active: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct SpiSnap {
    intid: u32,
    enabled: bool,
    pending: bool,
    active: bool,
    edge: bool,
    priority: u8,
    router: u64,
    target: u8,
    forwarded: bool,
}

/// Everything of a VgicState a register access can change.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Snap {
    ctlr: u32,
    private: Vec<PrivateSnap>,
    spis: Vec<SpiSnap>,
}

fn snap(s: &VgicState) -> Snap {
    use std::sync::atomic::Ordering::SeqCst;
    Snap {
        ctlr: s.ctlr.load(SeqCst),
        private: s
            .private
            .iter()
            .map(|p| PrivateSnap {
                enabled: p.enabled.load(SeqCst),
                pending: p.pending.load(SeqCst),
                active: p.active.load(SeqCst),
                icfgr1: p.icfgr1.load(SeqCst),
                priority: std::array::from_fn(|i| p.priority[i].load(SeqCst)),
                asleep: p.asleep.load(SeqCst),
                forwarded: p.forwarded.load(SeqCst),
                withdraw_pending: p.withdraw_pending.load(SeqCst),
                withdraw_active: p.withdraw_active.load(SeqCst),
                withdraw_spi_pending: p.withdraw_spi_pending.load(SeqCst),
                withdraw_spi_active: p.withdraw_spi_active.load(SeqCst),
            })
            .collect(),
        spis: s
            .spis()
            .iter()
            .map(|x| SpiSnap {
                intid: x.intid,
                enabled: x.enabled.load(SeqCst),
                pending: x.pending.load(SeqCst),
                active: x.active.load(SeqCst),
                edge: x.edge.load(SeqCst),
                priority: x.priority.load(SeqCst),
                router: x.router.load(SeqCst),
                target: x.target.load(SeqCst),
                forwarded: x.forwarded.load(SeqCst),
            })
            .collect(),
    }
}

/// The partition as the reference sees it.
struct Part<'a> {
    vmpidrs: &'a [u64],
    live: &'a FakeLive,
}

impl Part<'_> {
    fn vcpus(&self) -> usize {
        self.vmpidrs.len()
    }
    fn all(&self) -> u32 {
        (1u32 << self.vcpus()) - 1
    }
}

fn is_spi(intid: u32) -> bool {
    (32..1020).contains(&intid)
}

fn is_owned_private(intid: u64) -> bool {
    intid < 32 && OWNED_PRIVATE & (1 << intid) != 0
}

/// Access sizes (as a mask of byte counts) and register width of the GICD
/// register at `offset`, from the GICv3 register map (Arm IHI 0069).
fn gicd_layout(offset: u64) -> (u8, u64) {
    match offset {
        // IPRIORITYR, ITARGETSR, CPENDSGIR, SPENDSGIR: byte-accessible.
        0x400..0xc00 | 0xf10..0xf30 => (1 | 4, 4),
        // IROUTER<n> (and the reserved tail of that block): 64-bit.
        0x6000..0x8000 => (4 | 8, 8),
        _ => (4, 4),
    }
}

fn gicr_layout(offset: u64) -> (u8, u64) {
    match offset {
        // GICR_TYPER and the 64-bit LPI registers.
        0x08..0x10 | 0x40..0x50 | 0x70..0x80 | 0xa0..0xa8 | 0xb0..0xb8 => (4 | 8, 8),
        // GICR_IPRIORITYR0..7.
        0x1_0400..0x1_0420 => (1 | 4, 4),
        _ => (4, 4),
    }
}

/// Whether an owned SPI's bit reads as one in bank `bank` (IGROUPR,
/// ISENABLER, ICENABLER, ISPENDR, ICPENDR, ISACTIVER, ICACTIVER).
fn spi_bank_bit(bank: u64, spi: &SpiSnap, live: &FakeLive) -> bool {
    match bank {
        0 => true,
        1 | 2 => spi.enabled,
        3 | 4 => spi.pending || live.spi(spi.intid).0,
        _ => spi.active || live.spi(spi.intid).1,
    }
}

fn owned_spi(s: &Snap, intid: u64) -> Option<&SpiSnap> {
    s.spis
        .iter()
        .find(|x| is_spi(x.intid) && u64::from(x.intid) == intid)
}

/// The index in `VgicState::spis()` (and so the bit in
/// `Effects::spis_changed`) of the owned SPI `intid`.
fn owned_spi_index(s: &Snap, intid: u64) -> Option<usize> {
    s.spis
        .iter()
        .position(|x| is_spi(x.intid) && u64::from(x.intid) == intid)
}

/// The whole GICD register at `base`.
fn gicd_value(s: &Snap, p: &Part, base: u64) -> u64 {
    match base {
        0x0 => u64::from(s.ctlr & 3) | 1 << 4 | 1 << 6, // enables, ARE, DS
        0x4 => {
            let lines = s
                .spis
                .iter()
                .filter(|x| is_spi(x.intid))
                .map(|x| u64::from(x.intid / 32))
                .max()
                .unwrap_or(0)
                .min(31);
            9 << 19 | 1 << 24 | lines // IDbits, A3V, ITLinesNumber
        }
        0x8 => 0x43b,
        0xffe8 => 0x3b,
        0x80..0x400 => {
            let bank = (base - 0x80) / 0x80;
            let first = (base - 0x80) % 0x80 / 4 * 32;
            (0..32)
                .filter(|&i| owned_spi(s, first + i).is_some_and(|x| spi_bank_bit(bank, x, p.live)))
                .fold(0, |v, i| v | 1 << i)
        }
        0x400..0x800 => (0..4).fold(0, |v, k| {
            v | u64::from(owned_spi(s, base - 0x400 + k).map_or(0, |x| x.priority)) << (8 * k)
        }),
        0xc00..0xd00 => {
            let first = (base - 0xc00) / 4 * 16;
            (0..16)
                .filter(|&i| owned_spi(s, first + i).is_some_and(|x| x.edge))
                .fold(0, |v, i| v | 2 << (2 * i))
        }
        0x6000..0x8000 => owned_spi(s, (base - 0x6000) / 8).map_or(0, |x| x.router),
        _ => 0,
    }
}

/// The whole register at `base` of `vcpu`'s GICR pair.
fn gicr_value(s: &Snap, p: &Part, vcpu: usize, base: u64) -> u64 {
    let me = &s.private[vcpu];
    match base {
        0x4 => 0x43b,
        0x8 => {
            let m = p.vmpidrs[vcpu];
            let affinity = (bits(m, 39, 32) << 24) | bits(m, 23, 0);
            let last = if vcpu + 1 == p.vcpus() { 1 << 4 } else { 0 };
            affinity << 32 | (vcpu as u64) << 8 | last
        }
        0x14 if me.asleep => 0b110, // ProcessorSleep, ChildrenAsleep
        0xffe8 => 0x3b,
        0x1_0080..0x1_0400 if (base - 0x1_0080).is_multiple_of(0x80) => {
            let (live_pending, live_active) = p.live.private(vcpu);
            let v = match (base - 0x1_0080) / 0x80 {
                0 => u32::MAX,
                1 | 2 => me.enabled,
                3 | 4 => me.pending | live_pending,
                _ => me.active | live_active,
            };
            u64::from(v & OWNED_PRIVATE)
        }
        0x1_0400..0x1_0420 => (0..4).fold(0, |v, k| {
            let intid = base - 0x1_0400 + k;
            let prio = if is_owned_private(intid) {
                me.priority[intid as usize]
            } else {
                0
            };
            v | u64::from(prio) << (8 * k)
        }),
        0x1_0c00 => 0xaaaa_aaaa,
        0x1_0c04 => u64::from(me.icfgr1 & ICFGR1_TIMERS),
        _ => 0,
    }
}

/// A write of `value` (bits under `mask`) to the GICD register at `base`.
fn gicd_write(s: &mut Snap, fx: &mut Effects, p: &Part, base: u64, value: u64, mask: u64) {
    let word = value as u32;
    match base {
        0x0 => {
            let old = s.ctlr;
            s.ctlr = word & 3;
            if s.ctlr & 2 != 0 && old & 2 == 0 {
                fx.drain = p.all();
            }
            if (s.ctlr ^ old) & 2 != 0 {
                // Group 1 switched: every physical enable follows it.
                fx.spis_changed = ((1u64 << s.spis.len()) - 1) as u32;
                fx.ppis_changed = p.all();
            }
            if old & 2 != 0 && s.ctlr & 2 == 0 {
                // Group 1 off: every vCPU takes back what it listed.
                fx.withdraw = p.all();
            }
        }
        0x80..0x400 => {
            let bank = (base - 0x80) / 0x80;
            let first = (base - 0x80) % 0x80 / 4 * 32;
            for i in (0..32).filter(|i| word & 1 << i != 0) {
                let Some(index) = owned_spi_index(s, first + i) else {
                    continue;
                };
                let bit = 1u32 << index;
                let spi = &mut s.spis[index];
                let target = target_bit(spi.target);
                // A forwarded SPI's pending and active states are the
                // physical GIC's: the write becomes a request for it.
                let physical = spi.forwarded;
                let mut withdrawn = None;
                match bank {
                    1 if !spi.enabled => {
                        spi.enabled = true;
                        fx.spis_changed |= bit;
                        if spi.pending {
                            fx.drain |= target;
                        }
                    }
                    2 if spi.enabled => {
                        spi.enabled = false;
                        fx.spis_changed |= bit;
                        fx.withdraw = p.all();
                    }
                    3 if physical => fx.physical.spi_set_pending |= bit,
                    3 => {
                        spi.pending = true;
                        fx.drain |= target;
                    }
                    4 => {
                        if physical {
                            fx.physical.spi_clear_pending |= bit;
                        } else {
                            spi.pending = false;
                        }
                        withdrawn = Some(false);
                    }
                    5 if physical => fx.physical.spi_set_active |= bit,
                    5 => spi.active = true,
                    6 => {
                        if physical {
                            fx.physical.spi_clear_active |= bit;
                        } else {
                            spi.active = false;
                        }
                        withdrawn = Some(true);
                    }
                    _ => {}
                }
                // Cleared: whichever vCPU holds it (a reroute may have
                // moved it) takes it back.
                if let Some(active) = withdrawn {
                    for v in &mut s.private[..p.vcpus()] {
                        if active {
                            v.withdraw_spi_active |= bit;
                        } else {
                            v.withdraw_spi_pending |= bit;
                        }
                    }
                    fx.withdraw = p.all();
                }
            }
        }
        0x400..0x800 => {
            for k in (0..4).filter(|k| mask >> (8 * k) & 0xff != 0) {
                if let Some(index) = owned_spi_index(s, base - 0x400 + k) {
                    // Priorities matter only in list registers: no effect.
                    s.spis[index].priority = (value >> (8 * k)) as u8 & 0xf8;
                }
            }
        }
        // ICFGR of an SPI is read-only: its trigger is the board's.
        0xc00..0xd00 => {}
        0x6000..0x8000 => {
            if let Some(index) = owned_spi_index(s, (base - 0x6000) / 8) {
                let spi = &mut s.spis[index];
                let router = ((spi.router & !mask) | value) & IROUTER_KEEP;
                // 1-of-N: vCPU 0. An affinity no vCPU has: nobody (as on a
                // GIC whose IROUTER names no PE), until it is rerouted.
                let target = if router & IROUTER_IRM != 0 {
                    0
                } else {
                    p.vmpidrs
                        .iter()
                        .position(|m| m & AFF == router & AFF)
                        .map_or(NO_TARGET, |v| v as u8)
                };
                if target != spi.target {
                    // The physical routing follows the vCPU it resolves to.
                    fx.spis_changed |= 1 << index;
                    if spi.pending {
                        fx.drain |= target_bit(target);
                    }
                }
                spi.router = router;
                spi.target = target;
            }
        }
        _ => {}
    }
}

/// An SPI's target vCPU as a vCPU mask: none for [`NO_TARGET`] (an
/// IROUTER that names no vCPU of the partition).
fn target_bit(target: u8) -> u32 {
    if target == NO_TARGET { 0 } else { 1 << target }
}

fn gicr_write(s: &mut Snap, fx: &mut Effects, vcpu: usize, base: u64, value: u64, mask: u64) {
    let me = &mut s.private[vcpu];
    let bit = 1u32 << vcpu;
    let word = value as u32;
    match base {
        0x14 => {
            let sleep = word & 2 != 0;
            if me.asleep && !sleep {
                fx.drain = bit;
            }
            me.asleep = sleep;
        }
        0x1_0080..0x1_0400 if (base - 0x1_0080).is_multiple_of(0x80) => {
            let ones = word & OWNED_PRIVATE;
            if ones == 0 {
                return;
            }
            // The forwarded ones (the virtual timer, as the hypervisor sets
            // it up): their pending and active states are the physical
            // GIC's, so the write becomes a request for it; the others
            // stay the model's.
            let physical = ones & me.forwarded;
            let model = ones & !physical;
            match (base - 0x1_0080) / 0x80 {
                1 => {
                    let newly = ones & !me.enabled;
                    me.enabled |= ones;
                    if newly & TIMERS != 0 {
                        // The timers' enables are mirrored physically.
                        fx.ppis_changed |= bit;
                    }
                    if me.pending & newly != 0 {
                        fx.drain |= bit;
                    }
                }
                2 => {
                    let disabled = me.enabled & ones;
                    if disabled & TIMERS != 0 {
                        fx.ppis_changed |= bit;
                    }
                    if disabled != 0 {
                        fx.withdraw |= bit;
                    }
                    me.enabled &= !ones;
                }
                3 => {
                    if physical != 0 {
                        fx.physical.ppi_vcpu = vcpu;
                        fx.physical.ppi_set_pending |= physical;
                    }
                    if model != 0 {
                        me.pending |= model;
                        fx.drain |= bit;
                    }
                }
                4 => {
                    if physical != 0 {
                        fx.physical.ppi_vcpu = vcpu;
                        fx.physical.ppi_clear_pending |= physical;
                    }
                    me.pending &= !model;
                    me.withdraw_pending |= ones;
                    fx.withdraw |= bit;
                }
                5 => {
                    if physical != 0 {
                        fx.physical.ppi_vcpu = vcpu;
                        fx.physical.ppi_set_active |= physical;
                    }
                    me.active |= model;
                }
                6 => {
                    if physical != 0 {
                        fx.physical.ppi_vcpu = vcpu;
                        fx.physical.ppi_clear_active |= physical;
                    }
                    me.active &= !model;
                    me.withdraw_active |= ones;
                    fx.withdraw |= bit;
                }
                _ => {}
            }
        }
        0x1_0400..0x1_0420 => {
            for k in (0..4).filter(|k| mask >> (8 * k) & 0xff != 0) {
                let intid = base - 0x1_0400 + k;
                if is_owned_private(intid) {
                    me.priority[intid as usize] = (value >> (8 * k)) as u8 & 0xf8;
                }
            }
        }
        0x1_0c04 => me.icfgr1 = word & ICFGR1_TIMERS,
        _ => {}
    }
}

enum Expected {
    Read(u64),
    Write(Snap, Effects),
}

/// A frame's register map: (access sizes as a mask of byte counts,
/// register width) of the register at an offset.
type Layout = fn(u64) -> (u8, u64);

/// The reference model of one access, written from the GICv3 register map
/// and the module's documented behaviour: the checks in order (vCPU,
/// offset, size, alignment, the register's widths), then the value.
fn reference_access(s: &Snap, p: &Part, op: &RegOp) -> Result<Expected, BadAccess> {
    let (frame_size, layout): (u64, Layout) = match op.frame {
        Frame::Distributor => (GICD_SIZE, gicd_layout),
        Frame::Redistributor { vcpu } => {
            if vcpu >= p.vcpus() {
                return Err(BadAccess::NoSuchVcpu);
            }
            (GICR_SIZE, gicr_layout)
        }
        // The GICv2 frame has its own host tests (`vgic::regs::dist_v2`).
        Frame::DistributorV2 { .. } => unreachable!("the generator makes GICv3 frames only"),
    };
    if op.offset >= frame_size {
        return Err(BadAccess::Offset);
    }
    if !matches!(op.size, 1 | 2 | 4 | 8) {
        return Err(BadAccess::Width);
    }
    if !op.offset.is_multiple_of(u64::from(op.size)) {
        return Err(BadAccess::Alignment);
    }
    let (sizes, width) = layout(op.offset);
    if sizes & op.size == 0 {
        return Err(BadAccess::Width);
    }
    let base = op.offset & !(width - 1);
    let shift = (op.offset - base) * 8;
    let mask = width_mask(op.size);
    if !op.write {
        let register = match op.frame {
            Frame::Distributor => gicd_value(s, p, base),
            Frame::Redistributor { vcpu } => gicr_value(s, p, vcpu, base),
            Frame::DistributorV2 { .. } => unreachable!("refused above"),
        };
        return Ok(Expected::Read((register >> shift) & mask));
    }
    let (value, mask) = ((op.value & mask) << shift, mask << shift);
    let mut next = s.clone();
    let mut fx = Effects::default();
    match op.frame {
        Frame::Distributor => gicd_write(&mut next, &mut fx, p, base, value, mask),
        Frame::Redistributor { vcpu } => gicr_write(&mut next, &mut fx, vcpu, base, value, mask),
        Frame::DistributorV2 { .. } => unreachable!("refused above"),
    }
    Ok(Expected::Write(next, fx))
}

/// What holds after any sequence of accesses, whatever they were.
fn regs_invariants(s: &Snap, initial: &Snap, vcpus: usize) {
    assert!(
        s.ctlr <= 3,
        "GICD_CTLR keeps only the enables: {:#x}",
        s.ctlr
    );
    let spis = ((1u64 << s.spis.len()) - 1) as u32;
    for (v, p) in s.private.iter().enumerate() {
        if v >= vcpus {
            assert_eq!(
                p, &initial.private[v],
                "state of vCPU {v} the partition does not have"
            );
            continue;
        }
        let was = &initial.private[v];
        assert_eq!(
            p.forwarded, was.forwarded,
            "vCPU {v}: an access changed which interrupts are forwarded"
        );
        // Withdrawals accumulate (the vCPU's CPU takes them), and only of
        // the partition's own interrupts.
        for (what, now, then, owned) in [
            (
                "withdraw_pending",
                p.withdraw_pending,
                was.withdraw_pending,
                OWNED_PRIVATE,
            ),
            (
                "withdraw_active",
                p.withdraw_active,
                was.withdraw_active,
                OWNED_PRIVATE,
            ),
            (
                "withdraw_spi_pending",
                p.withdraw_spi_pending,
                was.withdraw_spi_pending,
                spis,
            ),
            (
                "withdraw_spi_active",
                p.withdraw_spi_active,
                was.withdraw_spi_active,
                spis,
            ),
        ] {
            assert_eq!(then & !now, 0, "vCPU {v}: {what} lost bits");
            assert_eq!(
                (now & !then) & !owned,
                0,
                "vCPU {v}: {what} names interrupts the partition does not own"
            );
        }
        for (what, bits) in [
            ("enabled", p.enabled),
            ("pending", p.pending),
            ("active", p.active),
        ] {
            assert_eq!(
                bits & !OWNED_PRIVATE,
                0,
                "vCPU {v}: {what} bits of interrupts the partition does not own"
            );
        }
        assert_eq!(
            p.icfgr1 & !ICFGR1_TIMERS,
            0,
            "vCPU {v}: ICFGR1 beyond the timers"
        );
        for (intid, &prio) in p.priority.iter().enumerate() {
            if is_owned_private(intid as u64) {
                assert_eq!(
                    prio & 7,
                    0,
                    "vCPU {v}: priority of {intid} keeps unimplemented bits"
                );
            } else {
                assert_eq!(
                    prio, DEFAULT_PRIORITY,
                    "vCPU {v}: priority of unowned {intid}"
                );
            }
        }
    }
    for (spi, was) in s.spis.iter().zip(&initial.spis) {
        assert_eq!(
            spi.forwarded, was.forwarded,
            "SPI {}: an access changed whether it is forwarded",
            spi.intid
        );
        assert!(
            usize::from(spi.target) < vcpus || spi.target == NO_TARGET,
            "SPI {} targets vCPU {} of {vcpus}",
            spi.intid,
            spi.target
        );
        assert_eq!(
            spi.priority & 7,
            0,
            "SPI {}: priority keeps unimplemented bits",
            spi.intid
        );
        assert_eq!(
            spi.router & !IROUTER_KEEP,
            0,
            "SPI {}: IROUTER keeps RES0 bits",
            spi.intid
        );
    }
}

/// What holds of any write's effects: every mask names only vCPUs and
/// SPIs the partition has, physical requests only forwarded interrupts,
/// and a redistributor write only its own vCPU.
fn effects_invariants(op: &RegOp, fx: &Effects, before: &Snap, all: u32) {
    assert_eq!(
        fx.drain & !all,
        0,
        "{op:?}: drain names vCPUs that do not exist"
    );
    assert_eq!(
        fx.ppis_changed & !all,
        0,
        "{op:?}: timer enables changed on vCPUs that do not exist"
    );
    assert_eq!(
        fx.withdraw & !all,
        0,
        "{op:?}: withdraw names vCPUs that do not exist"
    );
    assert_eq!(
        u64::from(fx.spis_changed) >> before.spis.len(),
        0,
        "{op:?}: changed SPIs the partition does not own"
    );
    let ph = &fx.physical;
    let forwarded_spis = before
        .spis
        .iter()
        .enumerate()
        .filter(|(_, x)| x.forwarded && is_spi(x.intid))
        .fold(0u32, |m, (i, _)| m | 1 << i);
    for (what, bits) in [
        ("spi_set_pending", ph.spi_set_pending),
        ("spi_clear_pending", ph.spi_clear_pending),
        ("spi_set_active", ph.spi_set_active),
        ("spi_clear_active", ph.spi_clear_active),
    ] {
        assert_eq!(
            bits & !forwarded_spis,
            0,
            "{op:?}: physical {what} of an SPI that is not forwarded or not owned"
        );
    }
    let timer_requests =
        ph.ppi_set_pending | ph.ppi_clear_pending | ph.ppi_set_active | ph.ppi_clear_active;
    // The vCPU the requests are for (a vCPU of the partition, and then the
    // only one they may name: see the redistributor match below).
    let requests_for = if timer_requests != 0 {
        assert!(
            all & 1 << ph.ppi_vcpu != 0,
            "{op:?}: physical PPI requests for a vCPU that does not exist"
        );
        let forwarded = before.private[ph.ppi_vcpu].forwarded;
        assert_eq!(
            timer_requests & !(forwarded & OWNED_PRIVATE),
            0,
            "{op:?}: physical requests for a PPI of a vCPU where it is not forwarded"
        );
        1 << ph.ppi_vcpu
    } else {
        0
    };
    match op.frame {
        Frame::Redistributor { vcpu } => {
            let me = 1u32 << vcpu;
            assert_eq!(
                (fx.drain | fx.ppis_changed | fx.withdraw | requests_for) & !me,
                0,
                "{op:?}: a redistributor write affects another vCPU"
            );
            assert_eq!(
                fx.spis_changed, 0,
                "{op:?}: a redistributor write changed SPIs"
            );
            assert_eq!(
                ph.spi_set_pending | ph.spi_clear_pending | ph.spi_set_active | ph.spi_clear_active,
                0,
                "{op:?}: a redistributor write asks for SPIs' physical state"
            );
        }
        Frame::Distributor => assert_eq!(
            timer_requests, 0,
            "{op:?}: a distributor write asks for the timer's physical state"
        ),
        Frame::DistributorV2 { .. } => unreachable!("the generator makes GICv3 frames only"),
    }
}

fn check_regs(c: &RegsCase) -> u64 {
    let state = VgicState::new(&c.vmpidrs, &c.spis);
    let vcpus = state.vcpus();
    assert_eq!(vcpus, c.vmpidrs.len().min(MAX_VCPUS));
    // A reset vGIC forwards nothing and has nothing to withdraw.
    let reset = snap(&state);
    for (v, p) in reset.private.iter().enumerate() {
        assert_eq!(
            (
                p.forwarded,
                p.withdraw_pending,
                p.withdraw_active,
                p.withdraw_spi_pending,
                p.withdraw_spi_active
            ),
            (0, 0, 0, 0, 0),
            "vCPU {v}: VgicState::new leaves forwarding and withdrawals set"
        );
    }
    assert!(
        reset.spis.iter().all(|x| !x.forwarded),
        "VgicState::new forwards SPIs"
    );
    c.setup.apply(&state);
    let part = Part {
        vmpidrs: &c.vmpidrs[..vcpus],
        live: &c.live,
    };
    let all = part.all();
    let initial = snap(&state);
    let mut model = initial.clone();
    for op in &c.ops {
        let before = snap(&state);
        assert_eq!(
            before, model,
            "the state drifted from the reference before {op:?}"
        );
        let expected = reference_access(&before, &part, op);
        if op.write {
            let got = regs::write(&state, op.frame, op.offset, op.size, op.value);
            let after = snap(&state);
            match (&got, expected) {
                (Err(e), Err(want)) => {
                    assert_eq!(*e, want, "{op:?}: refused for the wrong reason");
                    assert_eq!(after, before, "{op:?}: refused ({e:?}) but applied");
                }
                (Ok(fx), Ok(Expected::Write(next, want_fx))) => {
                    effects_invariants(op, fx, &before, all);
                    regs_invariants(&after, &initial, vcpus);
                    regs_invariants(&after, &before, vcpus);
                    assert_eq!(after, next, "{op:?}: state after the write");
                    assert_eq!(*fx, want_fx, "{op:?}: effects");
                    model = next;
                }
                (got, Ok(Expected::Write(..))) => {
                    panic!("{op:?}: refused ({got:?}), but it is a valid access")
                }
                (got, want) => panic!("{op:?}: got {got:?}, the reference says {:?}", want.err()),
            }
        } else {
            let got = regs::read(&state, op.frame, op.offset, op.size, &c.live);
            assert_eq!(snap(&state), before, "{op:?}: a read changed the state");
            match (got, expected) {
                (Ok(v), Ok(Expected::Read(want))) => {
                    assert!(
                        v <= width_mask(op.size),
                        "{op:?}: read {v:#x}, wider than the access"
                    );
                    assert_eq!(v, want, "{op:?}: value read");
                }
                (Err(e), Err(want)) => assert_eq!(e, want, "{op:?}: refused for the wrong reason"),
                (got, want) => panic!(
                    "{op:?}: got {got:?}, the reference says {:?}",
                    want.map(|e| match e {
                        Expected::Read(v) => v,
                        Expected::Write(..) => unreachable!(),
                    })
                ),
            }
        }
    }
    // Every unowned interrupt still reads as zero everywhere, whatever the
    // live view claims about it.
    for intid in (0..1024u64).step_by(32) {
        if c.spis.iter().any(|&s| u64::from(s) / 32 == intid / 32) {
            continue;
        }
        for bank in 0..7 {
            let offset = 0x80 + bank * 0x80 + intid / 8;
            assert_eq!(
                regs::read(&state, Frame::Distributor, offset, 4, &c.live),
                Ok(0),
                "GICD+{offset:#x} covers no owned SPI but reads non-zero"
            );
        }
    }
    c.ops.len() as u64 + 224
}

#[test]
fn vgic_regs() {
    fuzz("vgic_regs", 4_000, gen_regs, check_regs);
}

// ---------------------------------------------------------------------------
// vgic::sgi: ICC_SGI1R_EL1 decoding and routing
// ---------------------------------------------------------------------------

#[derive(Clone)]
struct SgiCase {
    vmpidrs: Vec<u64>,
    value: u64,
    sender: usize,
}

impl Debug for SgiCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SgiCase")
            .field("vmpidrs", &hex_list(&self.vmpidrs))
            .field("value", &Hex(self.value))
            .field("sender", &self.sender)
            .finish()
    }
}

impl Case for SgiCase {}

/// ICC_SGI1R_EL1 fields: TargetList [15:0], Aff1 [23:16], INTID [27:24],
/// Aff2 [39:32], IRM [40], RS [47:44], Aff3 [55:48]; the rest is RES0.
const SGI1R_DEFINED: u64 = 0x00ff_f1ff_0fff_ffff;

fn sgi_value(aff3: u64, aff2: u64, aff1: u64, rs: u64, list: u64, intid: u64) -> u64 {
    (aff3 << 48) | (rs << 44) | (aff2 << 32) | (intid << 24) | (aff1 << 16) | list
}

fn gen_sgi(r: &mut Rng) -> SgiCase {
    let n = match r.weighted(&[20, 70, 5, 5]) {
        0 => 1,
        1 => 2 + r.index(MAX_VCPUS - 1),
        2 => MAX_VCPUS + 1 + r.index(3),
        _ => 0, // no vCPU at all: routes nothing
    };
    let vmpidrs = gen_vmpidrs(r, n);
    let count = n.min(MAX_VCPUS);
    let sender = if count == 0 { 0 } else { r.index(count) };
    let intid = r.below(16);
    let junk = if r.one_in(5) {
        r.u64() & !SGI1R_DEFINED
    } else {
        0
    };
    let value = match r.weighted(&[20, 45, 15, 20]) {
        // Broadcast to all but self (IRM), other fields anything.
        0 => {
            (1 << 40) | (r.u64() & !(1 << 40) & if r.bool() { 0 } else { u64::MAX }) | (intid << 24)
        }
        // Targets named by their affinity: one or several of one cluster.
        1 if count > 0 => {
            let t = vmpidrs[r.index(count)] & AFF;
            let (aff3, aff2, aff1, aff0) = (
                bits(t, 39, 32),
                bits(t, 23, 16),
                bits(t, 15, 8),
                bits(t, 7, 0),
            );
            let mut list = 1 << (aff0 % 16);
            for &m in &vmpidrs[..count] {
                let m = m & AFF;
                if m >> 8 == t >> 8 && bits(m, 7, 0) / 16 == aff0 / 16 && r.bool() {
                    list |= 1 << (bits(m, 7, 0) % 16);
                }
            }
            if r.one_in(4) {
                list |= r.below(1 << 16); // and some that may not exist
            }
            sgi_value(aff3, aff2, aff1, aff0 / 16, list, intid) | junk
        }
        // RS = 0 and Aff3.Aff2.Aff1 = 0: the identity fast path.
        2 => sgi_value(0, 0, 0, 0, r.below(1 << 16), intid) | junk,
        _ => r.interesting(),
    };
    SgiCase {
        vmpidrs,
        value,
        sender,
    }
}

fn check_sgi(c: &SgiCase) -> u64 {
    let v = c.value;
    let req = SgiRequest::decode(v);
    assert_eq!(u64::from(req.intid), bits(v, 27, 24), "INTID");
    assert!(req.intid < 16);
    assert_eq!(
        SgiRequest::decode(v & SGI1R_DEFINED),
        req,
        "RES0 bits changed the decoding"
    );
    match req.target {
        SgiTarget::AllButSelf => assert_eq!(bits(v, 40, 40), 1),
        SgiTarget::SelfOnly | SgiTarget::Interfaces(_) => {
            panic!("only GICD_SGIR names targets so: {req:?}")
        }
        SgiTarget::List {
            aff3,
            aff2,
            aff1,
            rs,
            list,
        } => {
            assert_eq!(bits(v, 40, 40), 0);
            assert_eq!(
                (u64::from(aff3), u64::from(aff2), u64::from(aff1)),
                (bits(v, 55, 48), bits(v, 39, 32), bits(v, 23, 16))
            );
            assert_eq!(
                (u64::from(rs), u64::from(list)),
                (bits(v, 47, 44), bits(v, 15, 0))
            );
        }
    }
    let count = c.vmpidrs.len().min(MAX_VCPUS);
    let all = (1u32 << count) - 1;
    let routing = AffinityMap::new(&c.vmpidrs).route(&req, c.sender);
    assert_eq!(
        routing.vcpus & !all,
        0,
        "routed to vCPUs outside the partition ({count} vCPUs)"
    );
    // The reference: each named target looked up among the partition's
    // affinities, one at a time.
    let (want, refused) = if bits(v, 40, 40) == 1 {
        (all & !(1 << c.sender), 0)
    } else {
        let mut want = 0u32;
        let mut refused = 0;
        for bit in (0..16).filter(|&b| bits(v, b, b) == 1) {
            let affinity = (bits(v, 55, 48) << 32)
                | (bits(v, 39, 32) << 16)
                | (bits(v, 23, 16) << 8)
                | (bits(v, 47, 44) * 16 + u64::from(bit));
            match c.vmpidrs[..count].iter().position(|&m| m & AFF == affinity) {
                Some(t) => want |= 1 << t,
                None => refused += 1,
            }
        }
        (want, refused)
    };
    assert_eq!(routing.vcpus, want, "targets");
    assert_eq!(routing.refused, refused, "refused count");
    assert!(
        routing.refused <= bits(v, 15, 0).count_ones(),
        "more refusals than targets named"
    );
    3
}

#[test]
fn vgic_sgi() {
    fuzz("vgic_sgi", 150_000, gen_sgi, check_sgi);
}

// ---------------------------------------------------------------------------
// psci::handle and hypercall::Hypercall::decode
// ---------------------------------------------------------------------------

const PSCI_IDS: [u64; 14] = [
    PSCI_VERSION,
    CPU_SUSPEND_32,
    CPU_SUSPEND_64,
    CPU_OFF,
    CPU_ON_32,
    CPU_ON_64,
    AFFINITY_INFO_32,
    AFFINITY_INFO_64,
    MIGRATE_INFO_TYPE,
    SYSTEM_OFF,
    SYSTEM_RESET,
    PSCI_FEATURES,
    SMCCC_VERSION,
    SMCCC_ARCH_FEATURES,
];

const BULKHEAD_IDS: [u64; 7] = [
    call::VERSION,
    call::CONSOLE_WRITE,
    call::VCPU_INFO,
    call::PARTITION_EXIT,
    call::EXIT_COUNT,
    call::IRQ_UNMASK,
    call::DEFER_STATS,
];

/// A function id: PSCI's and Bulkhead's, with junk in the upper half now
/// and then, others of their ranges, or anything.
fn gen_fid(r: &mut Rng) -> u64 {
    match r.weighted(&[55, 10, 10, 10, 5, 10]) {
        0 => r.pick(&PSCI_IDS),
        1 => r.pick(&PSCI_IDS) | r.u64() << 32,
        2 => r.pick(&BULKHEAD_IDS),
        3 => {
            let span = if r.bool() { 0x20 } else { 1 << 24 };
            r.pick(&[
                0x8400_0000,
                0xc400_0000,
                0x8000_0000,
                0xc000_0000,
                0x8600_0000,
                0xc600_0000,
            ]) | r.below(span)
        }
        4 => r.pick(&BULKHEAD_IDS) | r.u64() << 32,
        _ => r.interesting(),
    }
}

#[derive(Clone)]
struct PsciCase {
    fid: u64,
    args: [u64; 3],
    vmpidrs: Vec<u64>,
    /// Each vCPU's power state before the call: 0 off, 1 on pending, 2 on.
    power: Vec<u8>,
    memory: Vec<MemoryRegion>,
    /// Junk for the upper halves of the arguments (the SMC32 check).
    junk: [u64; 3],
}

impl Debug for PsciCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let memory: Vec<(Hex, Hex)> = self
            .memory
            .iter()
            .map(|m| (Hex(m.ipa.0), Hex(m.size)))
            .collect();
        f.debug_struct("PsciCase")
            .field("fid", &Hex(self.fid))
            .field("args", &hex_list(&self.args))
            .field("vmpidrs", &hex_list(&self.vmpidrs))
            .field("power", &self.power)
            .field("memory (ipa, size)", &memory)
            .field("junk", &hex_list(&self.junk))
            .finish()
    }
}

impl Case for PsciCase {
    fn smaller(&self) -> Vec<Self> {
        let mut out = Vec::new();
        for n in 1..self.vmpidrs.len() {
            out.push(PsciCase {
                vmpidrs: self.vmpidrs[..n].to_vec(),
                power: self.power[..n].to_vec(),
                ..self.clone()
            });
        }
        for memory in shorter(&self.memory).into_iter().filter(|m| !m.is_empty()) {
            out.push(PsciCase {
                memory,
                ..self.clone()
            });
        }
        out
    }
}

fn gen_memory(r: &mut Rng) -> Vec<MemoryRegion> {
    let n = 1 + r.index(3);
    (0..n)
        .map(|_| {
            let (ipa, size) = match r.below(5) {
                0 => (0x4000_0000, 0x0400_0000),
                1 => (r.below(1 << 36) & !0xfff, (1 + r.below(1 << 16)) << 12),
                2 => {
                    let size = (1 + r.below(16)) << 12;
                    (0u64.wrapping_sub(size), size) // up to the top of the address space
                }
                3 => (0, 0x1000),
                _ => (r.u64(), r.u64()),
            };
            MemoryRegion {
                ipa: Ipa(ipa),
                phys: PhysAddr(r.u64()),
                size,
            }
        })
        .collect()
}

fn gen_psci(r: &mut Rng) -> PsciCase {
    let n = 1 + r.index(MAX_VCPUS);
    let vmpidrs = gen_vmpidrs(r, n);
    let power = (0..n).map(|_| r.below(3) as u8).collect();
    let memory = gen_memory(r);
    let fid = gen_fid(r);
    let target = match r.below(6) {
        0..=2 => vmpidrs[r.index(n)],
        3 => vmpidrs[r.index(n)] | r.pick(&[1 << 24, 1 << 30, 1 << 31, 1 << 40]),
        4 => r.below(16),
        _ => r.u64(),
    };
    let region = memory[r.index(memory.len())];
    let entry = match r.below(7) {
        0 | 1 => region.ipa.0.wrapping_add(r.below(region.size.max(1)) & !3),
        2 => region.ipa.0.wrapping_add(r.below(region.size.max(1))),
        3 => region.ipa.0.wrapping_add(region.size),
        4 => region.ipa.0.wrapping_add(region.size).wrapping_sub(4),
        5 => region.ipa.0.wrapping_sub(4),
        _ => r.u64(),
    };
    let args = match fid & 0xffff_ffff {
        f if f == CPU_ON_32 & 0xffff_ffff || f == CPU_ON_64 => [target, entry, r.interesting()],
        f if f == CPU_SUSPEND_32 || f == CPU_SUSPEND_64 => {
            // power_state, original format: StateID, StateType, PowerLevel;
            // now and then a reserved bit, or anything.
            let valid = r.below(1 << 16) | u64::from(r.bool()) << 16 | r.below(4) << 24;
            let power_state = match r.weighted(&[70, 15, 15]) {
                0 => valid,
                1 => valid | 1 << r.pick(&[17, 20, 23, 26, 30, 31, 32, 40, 63]),
                _ => r.interesting(),
            };
            [power_state, entry, r.interesting()]
        }
        f if f == AFFINITY_INFO_32 || f == AFFINITY_INFO_64 => [
            target,
            if r.percent(75) { 0 } else { r.interesting() },
            r.u64(),
        ],
        PSCI_FEATURES => [
            if r.percent(75) {
                r.pick(&PSCI_IDS) | if r.one_in(5) { r.u64() << 32 } else { 0 }
            } else {
                r.interesting()
            },
            r.u64(),
            r.u64(),
        ],
        _ => [r.interesting(), r.interesting(), r.interesting()],
    };
    PsciCase {
        fid,
        args,
        vmpidrs,
        power,
        memory,
        junk: [r.u64(), r.u64(), r.u64()],
    }
}

fn vcpus_in(power: &[u8]) -> Vec<Vcpu> {
    power
        .iter()
        .map(|&p| {
            let v = Vcpu::new();
            match p {
                0 => {}
                1 => v.request_on(0x4000_0000, 0x1234).unwrap(),
                _ => v.set_power(Power::On),
            }
            v
        })
        .collect()
}

fn power_code(p: Power) -> u8 {
    match p {
        Power::Off => 0,
        Power::OnPending => 1,
        Power::On => 2,
    }
}

/// The answer PSCI 1.1 (Arm DEN 0022) and SMCCC (Arm DEN 0028) give, for a
/// partition whose vCPUs have `vmpidrs` and `power` states. The function
/// id is W0 for every convention (SMCCC 1.1, 2.5); SMC32 calls use only
/// the low 32 bits of every argument (2.6).
fn reference_psci(c: &PsciCase, fid: u64, args: [u64; 3], narrow_args: bool) -> Option<Outcome> {
    let fid = fid & 0xffff_ffff;
    let smc32 = fid & (1 << 30) == 0;
    let args = if smc32 && narrow_args {
        args.map(|a| a & 0xffff_ffff)
    } else {
        args
    };
    let status = |s: Status| Some(Outcome::Return(s.as_reg()));
    let find = |target: u64| c.vmpidrs.iter().position(|m| m & AFF == target & AFF);
    match fid {
        PSCI_VERSION => Some(Outcome::Return(0x1_0001)),
        SMCCC_VERSION => Some(Outcome::Return(0x1_0001)),
        MIGRATE_INFO_TYPE => Some(Outcome::Return(2)),
        PSCI_FEATURES => {
            let supported = [
                PSCI_VERSION,
                CPU_SUSPEND_32,
                CPU_SUSPEND_64,
                CPU_OFF,
                CPU_ON_32,
                CPU_ON_64,
                AFFINITY_INFO_32,
                AFFINITY_INFO_64,
                MIGRATE_INFO_TYPE,
                SYSTEM_OFF,
                SYSTEM_RESET,
                PSCI_FEATURES,
                SMCCC_VERSION,
            ];
            if supported.contains(&(args[0] & 0xffff_ffff)) {
                Some(Outcome::Return(0))
            } else {
                status(Status::NotSupported)
            }
        }
        CPU_ON_32 | CPU_ON_64 => {
            let Some(t) = find(args[0]) else {
                return status(Status::InvalidParameters);
            };
            let entry = if smc32 {
                args[1] & 0xffff_ffff
            } else {
                args[1]
            };
            let inside = c
                .memory
                .iter()
                .any(|m| entry >= m.ipa.0 && entry - m.ipa.0 < m.size);
            if !inside || entry % 4 != 0 {
                return status(Status::InvalidAddress);
            }
            // On, or being started: ALREADY_ON (as KVM and QEMU answer).
            match c.power[t] {
                0 => Some(Outcome::Woke(t)),
                _ => status(Status::AlreadyOn),
            }
        }
        CPU_OFF => Some(Outcome::CpuOff),
        // Met as a standby the vCPU wakes from at once, which PSCI allows
        // ("as if a wakeup event were pending", 5.4.2), powerdown included;
        // power_state in the original format (PSCI_FEATURES says flags 0):
        // StateID [15:0], StateType [16] (powerdown), PowerLevel [25:24],
        // every other bit reserved, zero. A powerdown request names the
        // entry point it would resume at: it must be one.
        CPU_SUSPEND_32 | CPU_SUSPEND_64 => {
            let power_state = args[0];
            if power_state & !0x0301_ffff != 0 {
                return status(Status::InvalidParameters);
            }
            let entry = args[1];
            let inside = c
                .memory
                .iter()
                .any(|m| entry >= m.ipa.0 && entry - m.ipa.0 < m.size);
            if power_state & 1 << 16 != 0 && (!inside || entry % 4 != 0) {
                return status(Status::InvalidAddress);
            }
            status(Status::Success)
        }
        AFFINITY_INFO_32 | AFFINITY_INFO_64 => {
            if args[1] != 0 {
                return status(Status::InvalidParameters);
            }
            match find(args[0]) {
                // AFFINITY_INFO: 0 on, 1 off, 2 on pending.
                Some(t) => Some(Outcome::Return([1, 2, 0][usize::from(c.power[t])])),
                None => status(Status::InvalidParameters),
            }
        }
        SYSTEM_OFF => Some(Outcome::SystemOff),
        SYSTEM_RESET => Some(Outcome::SystemReset),
        SMCCC_ARCH_FEATURES
            if matches!(args[0] & 0xffff_ffff, SMCCC_VERSION | SMCCC_ARCH_FEATURES) =>
        {
            Some(Outcome::Return(0))
        }
        f if matches!(f >> 24, 0x80 | 0x84 | 0xc4) => status(Status::NotSupported),
        _ => None,
    }
}

/// What one PSCI call did: its outcome, each vCPU's power state after, and
/// what each woken vCPU would start with (entry, context).
type PsciRun = (Option<Outcome>, Vec<u8>, Vec<Option<(u64, u64)>>);

/// Runs one PSCI call on fresh vCPUs in the case's power states.
fn run_psci(c: &PsciCase, fid: u64, args: [u64; 3]) -> PsciRun {
    let vcpus = vcpus_in(&c.power);
    let outcome = psci::handle(fid, args, &vcpus, &c.vmpidrs, &c.memory);
    let power = vcpus.iter().map(|v| power_code(v.power())).collect();
    let starts = vcpus
        .iter()
        .zip(&c.power)
        .map(|(v, &p)| if p == 0 { v.take_on_request() } else { None })
        .collect();
    (outcome, power, starts)
}

fn check_psci(c: &PsciCase) -> u64 {
    let (outcome, power, starts) = run_psci(c, c.fid, c.args);
    // Every answer is one PSCI documents for that call.
    if let Some(Outcome::Return(v)) = outcome {
        let status = Status::from_reg(v);
        let plain_value = matches!(v, 0 | 1 | 2 | 0x1_0001);
        assert!(
            status.is_some() || plain_value,
            "fid {:#x}: returned {v:#x}, neither a status nor a documented value",
            c.fid
        );
    }
    let smc32 = c.fid & (1 << 30) == 0;
    // CPU_ON wakes at most the one vCPU it names, with the entry point and
    // context it was given (32 bits of each for CPU_ON_32).
    for (t, (&before, &after)) in c.power.iter().zip(&power).enumerate() {
        if outcome == Some(Outcome::Woke(t)) {
            assert_eq!((before, after), (0, 1), "CPU_ON woke vCPU {t}");
            let (entry, context) = starts[t].expect("the woken vCPU has a start request");
            let narrow = |a: u64| if smc32 { a & 0xffff_ffff } else { a };
            assert_eq!((entry, context), (narrow(c.args[1]), narrow(c.args[2])));
        } else {
            assert_eq!(before, after, "vCPU {t} changed state, outcome {outcome:?}");
        }
    }
    let want = reference_psci(c, c.fid, c.args, true);
    if outcome != want && smc32 && outcome == reference_psci(c, c.fid, c.args, false) {
        panic!(
            "SMC32 fid {:#x}: answered {outcome:?} from the upper halves of x1..x3; their low \
             halves say {want:?}",
            c.fid
        );
    }
    assert_eq!(outcome, want, "outcome of fid {:#x}", c.fid);
    // No call looks at the upper half of x0 (the function id is W0); an
    // SMC32 call not at those of x1..x3 either.
    let fid = (c.fid & 0xffff_ffff) | c.junk[0] << 32;
    let args = if smc32 {
        std::array::from_fn(|i| (c.args[i] & 0xffff_ffff) | c.junk[i] << 32)
    } else {
        c.args
    };
    let (junk_outcome, junk_power, _) = run_psci(c, fid, args);
    assert_eq!(
        (junk_outcome, junk_power),
        (outcome, power),
        "fid {:#x}: junk in the upper halves of x0{} changed the answer",
        c.fid,
        if smc32 { "..x3" } else { "" }
    );
    2
}

#[test]
fn psci() {
    fuzz("psci", 60_000, gen_psci, check_psci);
}

#[derive(Clone)]
struct CallCase {
    x: [u64; 8],
    /// Any length, for unpack_console on its own.
    unpack_len: usize,
}

impl Debug for CallCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallCase")
            .field("x", &hex_list(&self.x))
            .field("unpack_len", &self.unpack_len)
            .finish()
    }
}

impl Case for CallCase {}

fn gen_call(r: &mut Rng) -> CallCase {
    let x0 = match r.weighted(&[55, 10, 5, 5, 10, 15]) {
        0 => r.pick(&BULKHEAD_IDS),
        1 => bulkhead_abi::bulkhead_call(r.u64() as u16),
        2 => 0x8600_0000 | r.below(1 << 24),
        3 => r.pick(&BULKHEAD_IDS) | r.u64() << 32,
        4 => r.pick(&PSCI_IDS),
        _ => r.interesting(),
    };
    let x1 = match x0 {
        call::CONSOLE_WRITE => match r.below(5) {
            0..=2 => r.below(CONSOLE_WRITE_MAX as u64 + 1),
            3 => CONSOLE_WRITE_MAX as u64 + 1 + r.below(20),
            _ => r.interesting(),
        },
        call::EXIT_COUNT => {
            if r.percent(70) {
                r.below(Counter::ALL.len() as u64 + 2)
            } else {
                r.interesting()
            }
        }
        _ => r.interesting(),
    };
    let mut x = [x0, x1, 0, 0, 0, 0, 0, 0];
    if r.bool() {
        let text: Vec<u8> = (0..r.index(60)).map(|_| r.u8()).collect();
        x[2..].copy_from_slice(&pack_console(&text).0);
    } else {
        for v in &mut x[2..] {
            *v = r.interesting();
        }
    }
    let unpack_len = match r.below(3) {
        0 => r.index(CONSOLE_WRITE_MAX + 1),
        1 => usize::MAX - r.index(4),
        _ => r.u64() as usize,
    };
    CallCase { x, unpack_len }
}

fn check_call(c: &CallCase) -> u64 {
    let x = &c.x;
    let decoded = Hypercall::decode(x);
    // The function id is W0, whatever the convention (SMCCC 1.1, 2.5): the
    // upper half of x0 is not part of it.
    let id = x[0] & 0xffff_ffff;
    let ours = matches!(id >> 24, 0xc6 | 0x86);
    assert_eq!(
        decoded.is_some(),
        ours,
        "x0 {:#x}: only ids of Bulkhead's range (owner 6) are Bulkhead's",
        x[0]
    );
    let want = match id {
        call::VERSION => Some(Ok(Hypercall::Version)),
        call::CONSOLE_WRITE if x[1] <= CONSOLE_WRITE_MAX as u64 => {
            Some(Ok(Hypercall::ConsoleWrite {
                len: x[1] as usize,
                regs: std::array::from_fn(|i| x[2 + i]),
            }))
        }
        call::CONSOLE_WRITE => Some(Err(Status::InvalidParameters)),
        call::VCPU_INFO => Some(Ok(Hypercall::VcpuInfo)),
        call::PARTITION_EXIT => Some(Ok(Hypercall::Exit { code: x[1] })),
        call::EXIT_COUNT => Some(
            Counter::ALL
                .iter()
                .find(|&&k| k as u64 == x[1])
                .map(|&counter| Hypercall::ExitCount { counter })
                .ok_or(Status::InvalidParameters),
        ),
        call::IRQ_UNMASK => Some(Ok(Hypercall::IrqUnmask)),
        call::DEFER_STATS => Some(Ok(Hypercall::DeferStats)),
        _ if ours => Some(Err(Status::NotSupported)),
        _ => None,
    };
    assert_eq!(decoded, want, "x0 {:#x}", x[0]);
    let mut calls = 3;
    if let Some(Ok(Hypercall::ConsoleWrite { len, regs })) = decoded {
        let bytes: Vec<u8> = unpack_console(&regs, len).collect();
        let mut want: Vec<u8> = regs.iter().flat_map(|r| r.to_le_bytes()).collect();
        want.truncate(len);
        assert_eq!(Bytes(bytes.clone()), Bytes(want), "unpacked console bytes");
        assert_eq!(
            pack_console(&bytes),
            (pack_regs(&regs, len), len),
            "pack(unpack) round trip"
        );
        calls += 2 + len as u64;
    }
    let n = unpack_console(&[x[2], x[3], x[4], x[5], x[6], x[7]], c.unpack_len).count();
    assert_eq!(
        n,
        c.unpack_len.min(CONSOLE_WRITE_MAX),
        "unpack_console length"
    );
    // A call is Bulkhead's or PSCI's, never both.
    let vcpus = [Vcpu::new(), Vcpu::new()];
    let memory = [MemoryRegion {
        ipa: Ipa(0x4000_0000),
        phys: PhysAddr(0x5000_0000),
        size: 0x0400_0000,
    }];
    let psci = psci::handle(x[0], [x[1], x[2], x[3]], &vcpus, &[0, 1], &memory);
    assert!(
        decoded.is_none() || psci.is_none(),
        "x0 {:#x} is both a hypercall ({decoded:?}) and a PSCI call ({psci:?})",
        x[0]
    );
    calls
}

/// `regs` with the bytes from `len` on cleared, as pack_console makes them.
fn pack_regs(regs: &[u64; 6], len: usize) -> [u64; 6] {
    std::array::from_fn(|i| {
        let keep = len.saturating_sub(i * 8).min(8);
        if keep == 8 {
            regs[i]
        } else {
            regs[i] & ((1u64 << (keep * 8)) - 1)
        }
    })
}

#[test]
fn hypercall() {
    fuzz("hypercall", 150_000, gen_call, check_call);
}

// ---------------------------------------------------------------------------
// vgic::lr: list registers and the overflow queue
// ---------------------------------------------------------------------------

/// A bank of `count` list registers holding raw register values in the
/// GICv3 (ICH_LR<n>_EL2) or GICv2 (GICH_LR<n>) format, so the formats'
/// encoders and decoders run too.
#[derive(Clone, Debug)]
struct FakeLrs {
    regs: [u64; 16],
    count: usize,
    v2: bool,
}

impl FakeLrs {
    fn new(count: usize, v2: bool) -> FakeLrs {
        FakeLrs {
            regs: [0; 16],
            count,
            v2,
        }
    }

    fn valid(&self) -> impl Iterator<Item = (usize, Entry)> + '_ {
        (0..self.count)
            .map(|n| (n, self.read(n)))
            .filter(|(_, e)| e.pending || e.active)
    }

    fn pending_count(&self) -> usize {
        self.valid().filter(|(_, e)| e.pending).count()
    }

    /// Whether the underflow maintenance interrupt is due (when enabled):
    /// while none or one of the list registers holds a valid (pending,
    /// active, or both) interrupt (Arm IHI 0048B, GICH_HCR.UIE; Arm IHI
    /// 0069, ICH_HCR_EL2.UIE).
    fn underflow_due(&self) -> bool {
        self.valid().count() <= 1
    }
}

/// Whether `queue` holds an interrupt that only a free list register lets
/// in (no valid list register holds its INTID): what the underflow
/// maintenance interrupt is for. One behind its own INTID's entry is not:
/// while that entry is the only one in use, underflow would fire again and
/// again and the guest, never let run, would never end the entry.
fn waits_for_a_free_register(lrs: &FakeLrs, queue: &PendingQueue) -> bool {
    queued(queue)
        .iter()
        .any(|i| !lrs.valid().any(|(_, e)| e.irq.intid == i.intid))
}

impl ListRegisters for FakeLrs {
    fn count(&self) -> usize {
        self.count
    }
    fn empty(&self) -> u64 {
        (0..self.count)
            .filter(|&n| {
                let e = self.read(n);
                !e.pending && !e.active
            })
            .fold(0, |m, n| m | 1 << n)
    }
    fn read(&self, n: usize) -> Entry {
        assert!(
            n < self.count,
            "read of list register {n} of {}",
            self.count
        );
        if self.v2 {
            lr::format::gicv2::decode(self.regs[n])
        } else {
            lr::format::gicv3::decode(self.regs[n])
        }
    }
    fn write(&mut self, n: usize, entry: Entry) {
        assert!(
            n < self.count,
            "write of list register {n} of {}",
            self.count
        );
        let raw = if self.v2 {
            lr::format::gicv2::encode(entry)
        } else {
            lr::format::gicv3::encode(entry)
        };
        if self.v2 {
            assert!(
                raw <= u64::from(u32::MAX),
                "a GICv2 list register is 32 bits"
            );
        }
        self.regs[n] = raw;
        assert_eq!(self.read(n), entry, "list register format round trip");
    }
}

#[derive(Clone, Copy)]
enum LrOp {
    /// This INTID is raised (deliver): by software (an SGI, an ISPENDR
    /// write) when the flag is set, else by its physical source, which for
    /// a forwarded one means with the HW bit.
    Raise(u32, bool),
    /// The guest acknowledges its most urgent pending interrupt.
    Ack,
    /// The guest deactivates the `n`th active one (EOImode 1: any order).
    Deactivate(usize),
    /// The guest acknowledges and completes its most urgent one.
    Take,
    /// The hypervisor refills (maintenance interrupt, any exit).
    Refill,
}

impl Debug for LrOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LrOp::Raise(intid, true) => write!(f, "raise {intid} by software"),
            LrOp::Raise(intid, false) => write!(f, "raise {intid}"),
            LrOp::Ack => write!(f, "guest acknowledges"),
            LrOp::Deactivate(n) => write!(f, "guest deactivates active #{n}"),
            LrOp::Take => write!(f, "guest takes one"),
            LrOp::Refill => write!(f, "refill"),
        }
    }
}

#[derive(Clone, Debug)]
struct LrCase {
    count: usize,
    v2: bool,
    irqs: Vec<IrqSpec>,
    ops: Vec<LrOp>,
}

impl Case for LrCase {
    fn smaller(&self) -> Vec<Self> {
        let raised = |op: &LrOp| match op {
            LrOp::Raise(i, _) => Some(*i),
            _ => None,
        };
        smaller_irqs_and_ops(&self.irqs, &self.ops, raised, |irqs, ops| LrCase {
            irqs,
            ops,
            ..self.clone()
        })
    }
}

/// One of a partition's interrupts: its INTID, priority, and whether it
/// is forwarded from a physical one (the virtual timer, a device's SPI).
#[derive(Clone, Copy, PartialEq, Eq)]
struct IrqSpec {
    intid: u32,
    priority: u8,
    forwarded: bool,
}

impl Debug for IrqSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fwd = if self.forwarded { " forwarded" } else { "" };
        write!(f, "{} prio {:#04x}{fwd}", self.intid, self.priority)
    }
}

fn spec(irqs: &[IrqSpec], intid: u32) -> IrqSpec {
    *irqs
        .iter()
        .find(|i| i.intid == intid)
        .expect("an INTID of the case")
}

/// Smaller cases of interrupts and steps: only the interrupts the steps
/// name (`named`), then shorter step lists; `case` builds each.
fn smaller_irqs_and_ops<C, O: Clone>(
    irqs: &[IrqSpec],
    ops: &[O],
    named: impl Fn(&O) -> Option<u32>,
    case: impl Fn(Vec<IrqSpec>, Vec<O>) -> C,
) -> Vec<C> {
    let used: BTreeSet<u32> = ops.iter().filter_map(named).collect();
    let mut out = Vec::new();
    if used.len() < irqs.len() {
        let kept = irqs.iter().copied().filter(|i| used.contains(&i.intid));
        out.push(case(kept.collect(), ops.to_vec()));
    }
    out.extend(shorter(ops).into_iter().map(|ops| case(irqs.to_vec(), ops)));
    out
}

/// A partition's interrupts: some SGIs, the virtual timer, SPIs;
/// priorities with 5 implemented bits, often equal.
fn gen_irqs(r: &mut Rng, max: usize) -> Vec<IrqSpec> {
    let n = 1 + r.index(max);
    let levels = 1 + r.below(8);
    let mut out: Vec<IrqSpec> = Vec::new();
    while out.len() < n {
        let intid = match r.below(4) {
            _ if out.len() >= 17 => r.between(32, 1019) as u32, // few SGIs left
            0 | 1 => r.below(16) as u32,
            2 => 27,
            _ => r.between(32, 1019) as u32,
        };
        if out.iter().any(|i| i.intid == intid) {
            continue;
        }
        out.push(IrqSpec {
            intid,
            priority: ((r.below(levels) * 32 / levels) as u8) << 3,
            forwarded: intid >= 27 && r.percent(60),
        });
    }
    out
}

fn gen_lr(r: &mut Rng) -> LrCase {
    let count = match r.below(4) {
        0 => 1,
        1 => 4,
        2 => 2 + r.index(3),
        _ => 1 + r.index(16),
    };
    let irqs = gen_irqs(r, 48);
    let n = 1 + r.index(120);
    let ops = (0..n)
        .map(|_| match r.weighted(&[40, 15, 10, 20, 15]) {
            0 => LrOp::Raise(r.pick(&irqs).intid, r.percent(40)),
            1 => LrOp::Ack,
            2 => LrOp::Deactivate(r.index(4)),
            3 => LrOp::Take,
            _ => LrOp::Refill,
        })
        .collect();
    LrCase {
        count,
        v2: r.one_in(4),
        irqs,
        ops,
    }
}

/// The guest's CPU interface: acknowledge the most urgent pending entry
/// that is not active (an active and pending one waits for its
/// deactivation); `then_complete` also completes it at once.
fn guest_ack(lrs: &mut FakeLrs, then_complete: bool) -> Option<Entry> {
    let (n, e) = lrs
        .valid()
        .filter(|(_, e)| e.pending && !e.active)
        .min_by_key(|(n, e)| (e.irq.priority, *n))?;
    let next = Entry {
        pending: false,
        active: !then_complete,
        ..e
    };
    lrs.write(n, next);
    Some(e)
}

/// The guest deactivates an active entry: active+pending becomes pending.
fn guest_deactivate(lrs: &mut FakeLrs, pick: usize) -> Option<Entry> {
    let active: Vec<(usize, Entry)> = lrs.valid().filter(|(_, e)| e.active).collect();
    let &(n, e) = active.get(pick % active.len().max(1))?;
    lrs.write(n, Entry { active: false, ..e });
    Some(e)
}

/// Structural checks of a list register bank and its queue, any time.
fn lr_invariants(lrs: &FakeLrs, queue: &PendingQueue) {
    let valid: Vec<(usize, Entry)> = lrs.valid().collect();
    for (n, e) in &valid {
        assert!(
            !(e.irq.hw && e.pending && e.active),
            "LR{n}: a forwarded (HW) interrupt both pending and active: {e:?}"
        );
    }
    // Nothing pending twice: in two list registers, or listed and queued.
    let mut pending = BTreeSet::new();
    for (n, e) in valid.iter().filter(|(_, e)| e.pending) {
        assert!(
            pending.insert(e.irq.intid),
            "LR{n}: INTID {} pending twice",
            e.irq.intid
        );
        assert!(
            !queue.contains(e.irq.intid),
            "INTID {} pending in LR{n} and queued",
            e.irq.intid
        );
    }
    // No INTID in two list registers (UNPREDICTABLE in GICv3): what cannot
    // join the one that holds it waits in the queue.
    if let Some((a, b, intid)) = duplicate_intid(lrs) {
        panic!("LR{a} and LR{b} both hold INTID {intid}");
    }
    // The queue is ordered and holds each INTID once.
    let mut q = queue.clone();
    let mut seen = BTreeSet::new();
    let mut last = 0u8;
    while let Some(i) = q.pop() {
        assert!(seen.insert(i.intid), "INTID {} queued twice", i.intid);
        assert!(i.priority >= last, "queue out of priority order");
        last = i.priority;
    }
}

/// Whether a forwarded (HW) instance of `intid` is held, in a list
/// register or the queue: then its physical interrupt is active and its
/// source cannot raise it again until the guest deactivates it.
fn hw_held(lrs: &FakeLrs, queue: &PendingQueue, intid: u32) -> bool {
    if lrs.valid().any(|(_, e)| e.irq.intid == intid && e.irq.hw) {
        return true;
    }
    let mut q = queue.clone();
    while let Some(i) = q.pop() {
        if i.intid == intid {
            return i.hw;
        }
    }
    false
}

/// The two list registers holding one INTID, if any (the GIC architecture
/// makes that UNPREDICTABLE).
fn duplicate_intid(lrs: &FakeLrs) -> Option<(usize, usize, u32)> {
    let valid: Vec<(usize, Entry)> = lrs.valid().collect();
    for (i, (a, ea)) in valid.iter().enumerate() {
        for (b, eb) in &valid[i + 1..] {
            if ea.irq.intid == eb.irq.intid {
                return Some((*a, *b, ea.irq.intid));
            }
        }
    }
    None
}

/// The queue, most urgent first.
fn queued(queue: &PendingQueue) -> Vec<Irq> {
    let mut q = queue.clone();
    std::iter::from_fn(|| q.pop()).collect()
}

/// `PendingQueue::push` as documented: an INTID already queued merges (and
/// becomes forwarded if the new one is); a new one goes behind every one
/// at least as urgent.
fn reference_enqueue(queue: &mut Vec<Irq>, irq: Irq) {
    if let Some(q) = queue.iter_mut().find(|q| q.intid == irq.intid) {
        q.hw |= irq.hw;
        return;
    }
    let at = queue
        .iter()
        .position(|q| q.priority > irq.priority)
        .unwrap_or(queue.len());
    queue.insert(at, irq);
}

/// The list register holding `intid`, if any.
fn holder(lrs: &FakeLrs, intid: u32) -> Option<(usize, Entry)> {
    lrs.valid().find(|(_, e)| e.irq.intid == intid)
}

/// A queued interrupt whose INTID a list register holds (active) waits
/// for it: "blocked", not a candidate for a list register.
fn blocked(lrs: &FakeLrs, intid: u32) -> bool {
    holder(lrs, intid).is_some()
}

/// The invariant `refill` restores: nothing queued is more urgent than an
/// entry the guest could take next (pending and not active), and nothing
/// is queued while a list register is free; both of the queued interrupts
/// that are not blocked. What breaks it, if anything.
fn queue_order_violation(lrs: &FakeLrs, queue: &PendingQueue) -> Option<String> {
    // The queue is in priority order: its first unblocked one is the most
    // urgent candidate.
    let best = queued(queue).into_iter().find(|i| !blocked(lrs, i.intid))?;
    if let Some((n, e)) = lrs
        .valid()
        .find(|(_, e)| e.pending && !e.active && e.irq.priority > best.priority)
    {
        return Some(format!(
            "queued INTID {} (priority {:#x}) is more urgent than LR{n} {e:?}",
            best.intid, best.priority
        ));
    }
    (lrs.empty() != 0).then(|| {
        format!(
            "INTID {} queued (not blocked) while a list register is free",
            best.intid
        )
    })
}

/// The situation of the known issue `lr-pending-twice`: a software raise
/// of an INTID that an active-only software entry holds while its pending
/// instance waits in the queue (a forwarded raise, queued behind it).
fn pending_twice_case(lrs: &FakeLrs, queue: &PendingQueue, irq: Irq) -> bool {
    !irq.hw
        && queue.contains(irq.intid)
        && holder(lrs, irq.intid).is_some_and(|(_, e)| !e.pending && e.active && !e.irq.hw)
}

/// What `deliver` does with `irq` when a list register holds its INTID or
/// the queue does (`None` otherwise): the list registers and the queue
/// afterwards, and the answers it may give.
///
/// Held in list register n, `merge` decides: a pending-only entry merges
/// (a forwarded raise makes it forwarded); a pending and active software
/// entry merges a software raise, while a forwarded one takes the pending
/// instance to the queue, forwarded (the register keeps the active one);
/// an active-only software entry becomes active and pending for a
/// software raise; anything else waits in the queue. Queued (and blocked
/// or not): it merges there, forwarded if either is; the pending instance
/// is one, wherever it waits.
fn reference_raise(
    lrs: &FakeLrs,
    queue: &PendingQueue,
    irq: Irq,
) -> Option<(Vec<Entry>, Vec<Irq>, &'static [Delivery])> {
    let mut entries: Vec<Entry> = (0..lrs.count).map(|n| lrs.read(n)).collect();
    let mut q = queued(queue);
    let in_queue = q.iter().any(|i| i.intid == irq.intid);
    let answers: &'static [Delivery] = match holder(lrs, irq.intid) {
        Some((n, e)) => match (e.pending, e.active) {
            (true, false) => {
                entries[n].irq.hw |= irq.hw;
                &[Delivery::Merged]
            }
            (true, true) if irq.hw => {
                entries[n].pending = false;
                reference_enqueue(&mut q, irq);
                &[Delivery::Queued]
            }
            (true, true) => &[Delivery::Merged],
            _ if in_queue => {
                // Pending already, behind the active one: one instance.
                // (Merged, or Queued as `merge` says of what it queues:
                // callers look at neither.)
                reference_enqueue(&mut q, irq);
                &[Delivery::Merged, Delivery::Queued]
            }
            _ if !e.irq.hw && !irq.hw => {
                entries[n].pending = true;
                &[Delivery::Merged]
            }
            _ => {
                reference_enqueue(&mut q, irq);
                &[Delivery::Queued]
            }
        },
        None if in_queue => {
            reference_enqueue(&mut q, irq);
            &[Delivery::Merged]
        }
        None => return None,
    };
    Some((entries, q, answers))
}

fn queue_behind_listed(lrs: &FakeLrs, queue: &PendingQueue) {
    if let Some(problem) = queue_order_violation(lrs, queue) {
        panic!("{problem}");
    }
}

fn check_lr(c: &LrCase) -> u64 {
    let mut lrs = FakeLrs::new(c.count, c.v2);
    let mut queue = PendingQueue::new();
    // Raised and not yet acknowledged: pending somewhere, exactly once.
    let mut pending: BTreeSet<u32> = BTreeSet::new();
    let mut calls = 0;
    let held_pending = |lrs: &FakeLrs, queue: &PendingQueue| -> BTreeSet<u32> {
        let mut s: BTreeSet<u32> = lrs
            .valid()
            .filter(|(_, e)| e.pending)
            .map(|(_, e)| e.irq.intid)
            .collect();
        let mut q = queue.clone();
        while let Some(i) = q.pop() {
            s.insert(i.intid);
        }
        s
    };
    for op in &c.ops {
        match *op {
            LrOp::Raise(intid, soft) => {
                let s = spec(&c.irqs, intid);
                let irq = Irq {
                    intid,
                    priority: s.priority,
                    hw: s.forwarded && !soft,
                    source: 0,
                };
                if irq.hw && hw_held(&lrs, &queue, irq.intid) {
                    continue; // its physical source cannot raise it now
                }
                let was_pending = pending.contains(&irq.intid);
                let ordered_before = queue_order_violation(&lrs, &queue).is_none();
                let expected = reference_raise(&lrs, &queue, irq);
                let twice = pending_twice_case(&lrs, &queue, irq);
                let d = lr::deliver(&mut lrs, &mut queue, irq);
                calls += 1;
                assert_ne!(
                    d,
                    Delivery::Full,
                    "queue full with {} interrupts",
                    c.irqs.len()
                );
                match expected {
                    Some((entries, q, answers)) => {
                        let got: Vec<Entry> = (0..lrs.count).map(|n| lrs.read(n)).collect();
                        if twice && (got != entries || queued(&queue) != q) {
                            check_known("lr-pending-twice", false, || {
                                format!(
                                    "{irq:?} raised while pending in the queue behind its \
                                     active instance: made that one pending too ({d:?}); \
                                     list registers {got:?}, queue {:?}",
                                    queued(&queue)
                                )
                            });
                            return calls; // the case is spoilt: counted and skipped
                        }
                        assert_eq!(got, entries, "list registers after raising {irq:?}");
                        assert_eq!(queued(&queue), q, "the queue after raising {irq:?}");
                        assert!(
                            answers.contains(&d),
                            "raising {irq:?}: {d:?}, not {answers:?}"
                        );
                    }
                    None => {
                        assert!(
                            !was_pending,
                            "{irq:?} was pending, but neither listed nor queued"
                        );
                        match d {
                            Delivery::Listed(n) => assert_eq!(
                                lrs.read(n),
                                Entry::pending(irq),
                                "{irq:?} listed in LR{n}"
                            ),
                            Delivery::Queued => assert!(
                                queued(&queue).contains(&irq),
                                "{irq:?} queued, but not in the queue"
                            ),
                            _ => panic!("{irq:?}, held nowhere: {d:?}"),
                        }
                    }
                }
                pending.insert(irq.intid);
                if irq.hw {
                    assert!(
                        hw_held(&lrs, &queue, irq.intid),
                        "{irq:?} merged into a software instance ({d:?}): nothing will \
                         deactivate its physical interrupt"
                    );
                }
                if ordered_before {
                    queue_behind_listed(&lrs, &queue);
                }
            }
            LrOp::Ack | LrOp::Take => {
                if let Some(e) = guest_ack(&mut lrs, matches!(op, LrOp::Take)) {
                    assert!(
                        pending.remove(&e.irq.intid),
                        "the guest took INTID {} that was not raised (delivered twice?)",
                        e.irq.intid
                    );
                }
            }
            LrOp::Deactivate(pick) => {
                guest_deactivate(&mut lrs, pick);
            }
            LrOp::Refill => {
                let before: Vec<Entry> = (0..lrs.count).map(|n| lrs.read(n)).collect();
                let queued_before = queued(&queue);
                let more = lr::refill(&mut lrs, &mut queue);
                calls += 1;
                assert_eq!(
                    more,
                    waits_for_a_free_register(&lrs, &queue),
                    "refill's answer"
                );
                queue_behind_listed(&lrs, &queue);
                for (n, was) in before.iter().enumerate() {
                    let now = lrs.read(n);
                    // A software one queued behind its software entry joins it.
                    let joined = !was.irq.hw
                        && queued_before
                            .iter()
                            .any(|i| i.intid == was.irq.intid && !i.hw)
                        && now
                            == Entry {
                                pending: true,
                                ..*was
                            };
                    if was.active {
                        assert!(
                            now == *was || joined,
                            "refill changed LR{n}, active: {now:?}"
                        );
                    } else if now != *was {
                        assert!(
                            now.pending && !now.active,
                            "refill wrote LR{n} = {now:?}, not a pending interrupt"
                        );
                    }
                }
            }
        }
        lr_invariants(&lrs, &queue);
        assert_eq!(
            held_pending(&lrs, &queue),
            pending,
            "after {op:?}: pending in list registers and queue vs raised"
        );
    }
    // The guest handles everything: nothing is lost.
    for _ in 0..10_000 {
        while guest_deactivate(&mut lrs, 0).is_some() {}
        lr::refill(&mut lrs, &mut queue);
        calls += 1;
        match guest_ack(&mut lrs, true) {
            Some(e) => assert!(pending.remove(&e.irq.intid), "{e:?} taken twice"),
            None => break,
        }
    }
    assert!(pending.is_empty(), "never delivered: {pending:?}");
    assert!(queue.is_empty(), "left in the queue");
    calls
}

#[test]
fn vgic_lr() {
    fuzz("vgic_lr", 3_000, gen_lr, check_lr);
}

// ---------------------------------------------------------------------------
// vgic::gate: the mask flag in the guest's control page
// ---------------------------------------------------------------------------

/// vCPU n's bits of the control page, and the clock. The page is guest
/// memory: with `flicker`, another of the guest's vCPUs rewrites the mask
/// bit between any two reads.
#[derive(Default)]
struct Page {
    masked: Cell<bool>,
    pending: Cell<bool>,
    now: Cell<u64>,
    flicker: Cell<Option<u64>>,
    /// The mask values the current gate call read.
    reads: RefCell<Vec<bool>>,
    /// The last pending value the current gate call wrote.
    last_set: Cell<Option<bool>>,
}

impl Gate for Page {
    fn masked(&self) -> bool {
        let v = match self.flicker.get() {
            Some(s) => {
                let mut r = Rng::new(s);
                let v = r.bool();
                self.flicker.set(Some(r.0));
                v
            }
            None => self.masked.get(),
        };
        self.reads.borrow_mut().push(v);
        v
    }
    fn set_pending(&self, on: bool) {
        self.pending.set(on);
        self.last_set.set(Some(on));
    }
    fn now(&self) -> u64 {
        self.now.get()
    }
}

#[derive(Clone, Copy)]
enum GateOp {
    /// This INTID arrives (inject), from software when the flag is set,
    /// else from its physical source (HW if forwarded).
    Arrive(u32, bool),
    /// The guest sets its mask bit.
    Mask,
    /// The guest unmasks by the protocol: clear the bit, then IRQ_UNMASK if
    /// its pending bit is set.
    Unmask,
    /// The guest takes (acknowledges and completes) its most urgent
    /// interrupt, if it is unmasked (a hostile guest: whenever it likes).
    Take,
    /// The guest acknowledges its most urgent interrupt and keeps it
    /// active (EOImode 1), if it is unmasked (hostile: whenever it likes).
    Ack,
    /// The guest deactivates its `n`th active interrupt (no exit).
    Deactivate(usize),
    /// Time passes.
    Tick(u64),
    /// The underflow maintenance interrupt (if enabled and due).
    Maintenance,
    /// A kick from another CPU, or any exit: flush.
    Kick,
    // A hostile guest only:
    /// Writes its mask bit without the protocol.
    SetMask(bool),
    /// Writes its pending bit (the hypervisor's).
    SetPending(bool),
    /// IRQ_UNMASK whenever it likes.
    Hypercall,
    /// Another vCPU flips the mask bit between every read (seed), or stops.
    Flicker(Option<u64>),
}

impl Debug for GateOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GateOp::Arrive(intid, true) => write!(f, "{intid} arrives from software"),
            GateOp::Arrive(intid, false) => write!(f, "{intid} arrives"),
            GateOp::Mask => write!(f, "guest masks"),
            GateOp::Unmask => write!(f, "guest unmasks (protocol)"),
            GateOp::Take => write!(f, "guest takes one"),
            GateOp::Ack => write!(f, "guest acknowledges"),
            GateOp::Deactivate(n) => write!(f, "guest deactivates active #{n}"),
            GateOp::Tick(t) => write!(f, "tick {t}"),
            GateOp::Maintenance => write!(f, "maintenance (if due)"),
            GateOp::Kick => write!(f, "kick"),
            GateOp::SetMask(m) => write!(f, "guest writes mask = {m}"),
            GateOp::SetPending(p) => write!(f, "guest writes pending = {p}"),
            GateOp::Hypercall => write!(f, "IRQ_UNMASK"),
            GateOp::Flicker(Some(seed)) => write!(f, "mask bit flickers (seed {seed:#x})"),
            GateOp::Flicker(None) => write!(f, "mask bit steady"),
        }
    }
}

#[derive(Clone, Debug)]
struct GateCase {
    count: usize,
    irqs: Vec<IrqSpec>,
    hostile: bool,
    ops: Vec<GateOp>,
}

impl Case for GateCase {
    fn smaller(&self) -> Vec<Self> {
        let arrived = |op: &GateOp| match op {
            GateOp::Arrive(i, _) => Some(*i),
            _ => None,
        };
        smaller_irqs_and_ops(&self.irqs, &self.ops, arrived, |irqs, ops| GateCase {
            irqs,
            ops,
            ..self.clone()
        })
    }
}

fn gen_gate(r: &mut Rng) -> GateCase {
    let count = if r.percent(60) { 4 } else { 1 + r.index(16) };
    let irqs = gen_irqs(r, 40);
    let hostile = r.percent(50);
    let n = 1 + r.index(150);
    let ops = (0..n)
        .map(|_| {
            let w: &[u32] = if hostile {
                &[35, 8, 8, 14, 5, 8, 4, 6, 6, 4, 3, 4, 1]
            } else {
                &[35, 8, 8, 14, 5, 8, 4, 6, 6]
            };
            match r.weighted(w) {
                0 => GateOp::Arrive(r.pick(&irqs).intid, r.percent(40)),
                1 => GateOp::Mask,
                2 => GateOp::Unmask,
                3 => GateOp::Take,
                4 => GateOp::Tick(r.pick(&[1, 10, 1000, 1 << 40])),
                5 => GateOp::Maintenance,
                6 => GateOp::Kick,
                7 => GateOp::Ack,
                8 => GateOp::Deactivate(r.index(4)),
                9 => GateOp::SetMask(r.bool()),
                10 => GateOp::SetPending(r.bool()),
                11 => GateOp::Hypercall,
                _ => GateOp::Flicker(r.bool().then(|| r.u64())),
            }
        })
        .collect();
    GateCase {
        count,
        irqs,
        hostile,
        ops,
    }
}

struct GateWorld<'a> {
    c: &'a GateCase,
    lrs: FakeLrs,
    queue: PendingQueue,
    page: Page,
    stats: Stats,
    underflow: bool,
    /// Raised and not yet taken (a raise of one already here merges).
    outstanding: BTreeSet<u32>,
    /// Gate calls that found the guest masked, and so deferred.
    deferrals: u64,
    calls: u64,
    /// The guest deactivated something since the last gate call (no exit):
    /// what waited behind it in the queue waits for the next one.
    stale: bool,
    /// A known issue spoilt the case (not strict): it stops there.
    spoilt: bool,
}

/// The list registers, all of them.
fn lr_entries(lrs: &FakeLrs) -> Vec<Entry> {
    (0..lrs.count).map(|n| lrs.read(n)).collect()
}

/// What a gate call that finds the guest masked does: `flush` nothing;
/// `inject` lists nothing new and makes nothing pending in a list
/// register. A list register holding the INTID changes only by (a) a
/// pending-only software entry becoming forwarded for a forwarded raise
/// (pending is one bit), or (b) a pending and active software entry
/// losing its pending instance to the queue for a forwarded raise; a
/// software raise merges with a pending entry; everything else waits in
/// the queue. The list registers and the queue afterwards.
fn reference_masked(
    lrs: &FakeLrs,
    queue: &PendingQueue,
    irq: Option<Irq>,
) -> (Vec<Entry>, Vec<Irq>) {
    let mut entries = lr_entries(lrs);
    let mut q = queued(queue);
    if let Some(irq) = irq {
        match holder(lrs, irq.intid) {
            Some((n, e)) if e.pending && !e.active => entries[n].irq.hw |= irq.hw,
            Some((n, e)) if e.pending && irq.hw => {
                entries[n].pending = false;
                reference_enqueue(&mut q, irq);
            }
            Some((_, e)) if e.pending => {}
            _ => reference_enqueue(&mut q, irq),
        }
    }
    (entries, q)
}

/// The rule for list registers while the guest is masked, as a check of
/// each one that changed in a gate call on `irq` (see `reference_masked`).
fn masked_change_allowed(n: usize, was: Entry, now: Entry, irq: Option<Irq>, queue: &PendingQueue) {
    let Some(irq) = irq.filter(|i| i.hw && i.intid == was.irq.intid) else {
        panic!(
            "LR{n} changed while the guest was masked, not for a forwarded raise of its \
             INTID ({irq:?}): {was:?} -> {now:?}"
        );
    };
    let gains_hw = was.pending
        && !was.active
        && !was.irq.hw
        && now
            == Entry {
                irq: Irq {
                    hw: true,
                    ..was.irq
                },
                ..was
            };
    let moves_to_queue = was.pending
        && was.active
        && !was.irq.hw
        && now
            == Entry {
                pending: false,
                ..was
            }
        && queued(queue).contains(&Irq { hw: true, ..irq });
    assert!(
        gains_hw || moves_to_queue,
        "LR{n} changed while the guest was masked ({irq:?}): {was:?} -> {now:?}; only a \
         pending entry may become forwarded, or a pending and active one give its pending \
         instance to the queue"
    );
}

/// Whether `intid` is pending in a list register and queued too.
fn pending_twice(lrs: &FakeLrs, queue: &PendingQueue, intid: u32) -> bool {
    queue.contains(intid) && holder(lrs, intid).is_some_and(|(_, e)| e.pending)
}

impl GateWorld<'_> {
    fn priority(&self, intid: u32) -> u8 {
        spec(&self.c.irqs, intid).priority
    }

    /// One call of the gate (`inject` when `irq` is given, else `flush`),
    /// and what must hold after it whatever the page says.
    fn gate_call(&mut self, irq: Option<Irq>) {
        self.page.reads.borrow_mut().clear();
        self.page.last_set.set(None);
        let before = lr_entries(&self.lrs);
        let expected_masked = reference_masked(&self.lrs, &self.queue, irq);
        let twice = irq.is_some_and(|i| pending_twice_case(&self.lrs, &self.queue, i));
        let old = self.stats;
        let after = match irq {
            Some(irq) => gate::inject(
                &mut self.lrs,
                &mut self.queue,
                &self.page,
                &mut self.stats,
                irq,
            ),
            None => gate::flush(&mut self.lrs, &mut self.queue, &self.page, &mut self.stats),
        };
        self.calls += 1;
        assert!(
            !after.full,
            "no room for {irq:?} with {} interrupts",
            self.c.irqs.len()
        );
        self.stale = false;
        let reads = self.page.reads.take();
        // One decision per call: the flag is guest memory, which another of
        // the guest's vCPUs may rewrite between two reads.
        assert_eq!(
            reads.len(),
            1,
            "one gate call read the mask bit {} times: {reads:?}",
            reads.len()
        );
        let masked = reads[0];
        if let Some(irq) = irq.filter(|i| i.hw) {
            assert!(
                hw_held(&self.lrs, &self.queue, irq.intid),
                "{irq:?} merged into a software instance: its physical interrupt stays active"
            );
        }
        assert_eq!(
            self.stats.deferred,
            self.deferrals + u64::from(masked && irq.is_some()),
            "deferral count"
        );
        if masked {
            let now = lr_entries(&self.lrs);
            for (n, (&was, &now)) in before.iter().zip(&now).enumerate() {
                if was != now {
                    masked_change_allowed(n, was, now, irq, &self.queue);
                }
            }
            let (entries, q) = expected_masked;
            assert_eq!(now, entries, "list registers after {irq:?}, masked");
            assert_eq!(queued(&self.queue), q, "the queue after {irq:?}, masked");
            if irq.is_some() {
                self.deferrals += 1;
            }
        } else if let Some(irq) =
            irq.filter(|i| twice && pending_twice(&self.lrs, &self.queue, i.intid))
        {
            check_known("gate-pending-twice", false, || {
                format!(
                    "{irq:?} raised while pending in the queue behind its active instance: \
                     made that one pending too; list registers {:?}, queue {:?}",
                    lr_entries(&self.lrs),
                    queued(&self.queue)
                )
            });
            self.spoilt = true; // counted and skipped
            return;
        }
        // Whatever waits, the guest is told (pending bit), or the underflow
        // maintenance interrupt will come for it once a list register is
        // free; and only then: for one that waits behind its own INTID's
        // entry it would fire for as long as that entry is the only one in
        // use, and the guest would never run to end it.
        if !self.queue.is_empty() && masked {
            assert_eq!(
                self.page.last_set.get(),
                Some(true),
                "interrupts wait behind the mask but the pending bit was not set"
            );
        }
        if !masked {
            assert_eq!(
                after.underflow,
                waits_for_a_free_register(&self.lrs, &self.queue),
                "underflow asked for, or not, with the queue {:?} and list registers {:?}",
                queued(&self.queue),
                lr_entries(&self.lrs)
            );
        }
        assert!(self.stats.max_wait >= old.max_wait && self.stats.max_window >= old.max_window);
        assert!(
            self.stats.max_wait <= self.page.now.get()
                && self.stats.max_window <= self.page.now.get(),
            "a wait longer than time itself: {:?} at {}",
            self.stats,
            self.page.now.get()
        );
        lr_invariants(&self.lrs, &self.queue);
        if !masked {
            // Unmasked, what waits went first: the guest sees the most
            // urgent interrupts.
            queue_behind_listed(&self.lrs, &self.queue);
        }
        self.underflow = after.underflow;
    }

    fn arrive(&mut self, intid: u32, soft: bool) {
        let IrqSpec {
            priority,
            forwarded,
            ..
        } = spec(&self.c.irqs, intid);
        let hw = forwarded && !soft;
        if hw && hw_held(&self.lrs, &self.queue, intid) {
            return; // its physical source cannot raise it now
        }
        self.gate_call(Some(Irq {
            intid,
            priority,
            hw,
            source: 0,
        }));
        self.outstanding.insert(intid);
    }

    fn guest_masked(&self) -> bool {
        self.page.masked.get()
    }

    /// The guest acknowledges its most urgent interrupt, and completes it
    /// at once or keeps it active. With `check_order`, nothing it could
    /// take instead was more urgent: of what is outstanding, all but the
    /// INTIDs active in a list register (their pending instance waits for
    /// the deactivation). Not right after a deactivation: what it unblocked
    /// waits for the next exit.
    fn take(&mut self, check_order: bool, complete: bool) -> Option<u32> {
        let active: BTreeSet<u32> = self
            .lrs
            .valid()
            .filter(|(_, e)| e.active)
            .map(|(_, e)| e.irq.intid)
            .collect();
        let e = guest_ack(&mut self.lrs, complete)?;
        let taken = e.irq.intid;
        assert!(
            self.outstanding.remove(&taken),
            "{taken} delivered twice (or never raised)"
        );
        if check_order && !self.stale {
            let best = self
                .outstanding
                .iter()
                .filter(|i| !active.contains(i))
                .map(|&i| self.priority(i))
                .min()
                .unwrap_or(u8::MAX);
            assert!(
                e.irq.priority <= best,
                "took {taken} (priority {:#x}), something more urgent ({best:#x}) waits",
                e.irq.priority
            );
        }
        // The underflow interrupt fires when at most one entry is valid.
        if self.underflow && self.lrs.underflow_due() {
            self.gate_call(None);
        }
        Some(taken)
    }
}

fn check_gate(c: &GateCase) -> u64 {
    let mut w = GateWorld {
        c,
        lrs: FakeLrs::new(c.count, false),
        queue: PendingQueue::new(),
        page: Page::default(),
        stats: Stats::new(),
        underflow: false,
        outstanding: BTreeSet::new(),
        deferrals: 0,
        calls: 0,
        stale: false,
        spoilt: false,
    };
    for &op in &c.ops {
        if w.spoilt {
            return w.calls;
        }
        match op {
            GateOp::Arrive(n, soft) => w.arrive(n, soft),
            GateOp::Mask => w.page.masked.set(true),
            GateOp::Unmask => {
                w.page.masked.set(false);
                if w.page.pending.get() {
                    w.gate_call(None);
                }
            }
            GateOp::Take | GateOp::Ack => {
                if c.hostile || !w.guest_masked() {
                    // In order only for an honest guest: the mask defers
                    // urgent interrupts behind what was already listed.
                    w.take(!c.hostile, matches!(op, GateOp::Take));
                }
            }
            GateOp::Deactivate(pick) => {
                if guest_deactivate(&mut w.lrs, pick).is_some() {
                    w.stale = true;
                }
            }
            GateOp::Tick(dt) => w.page.now.set(w.page.now.get() + dt),
            GateOp::Maintenance => {
                if w.underflow && w.lrs.underflow_due() {
                    w.gate_call(None);
                }
            }
            GateOp::Kick | GateOp::Hypercall => w.gate_call(None),
            GateOp::SetMask(m) => w.page.masked.set(m),
            GateOp::SetPending(p) => w.page.pending.set(p),
            GateOp::Flicker(f) => w.page.flicker.set(f),
        }
    }
    // The guest settles down and unmasks by the protocol. A hostile one may
    // have cleared its own pending bit: its interrupts then wait for the
    // next flush (any injection or kick), which comes here.
    if w.spoilt {
        return w.calls;
    }
    // It finishes what it has active (no exit), so what waited behind
    // those goes with the next exit (its own interrupt raised again, or
    // any other), which comes here too.
    w.page.flicker.set(None);
    w.page.masked.set(false);
    while guest_deactivate(&mut w.lrs, 0).is_some() {}
    if w.page.pending.get() || c.hostile || !w.queue.is_empty() {
        w.gate_call(None);
    }
    for _ in 0..10_000 {
        if w.take(false, true).is_some() {
            continue;
        }
        if w.underflow && w.lrs.underflow_due() {
            w.gate_call(None);
            if w.lrs.pending_count() > 0 {
                continue;
            }
        }
        break;
    }
    assert!(
        w.outstanding.is_empty(),
        "lost (never delivered): {:?}; queue {} long, underflow {}",
        w.outstanding,
        w.queue.len(),
        w.underflow
    );
    assert!(w.queue.is_empty(), "left in the queue");
    assert!(
        !w.page.pending.get(),
        "the pending bit stays set with nothing deferred"
    );
    w.calls
}

#[test]
fn vgic_gate() {
    fuzz("vgic_gate", 3_000, gen_gate, check_gate);
}

// ---------------------------------------------------------------------------
// The harness itself
// ---------------------------------------------------------------------------

/// The harness catches a failure and reports the seed, the input and the
/// panic, shrunk: checked on a deliberately wrong invariant.
#[test]
fn harness_reports_seed_and_input() {
    if settings().replay.is_some() {
        return; // a case seed of another target
    }
    install_panic_hook();
    let result = catch(|| {
        fuzz(
            "harness_self_test",
            1_000,
            |r| {
                UartCase(
                    (0..20)
                        .map(|_| UartOp::Access {
                            write: true,
                            offset: r.below(0x40),
                            size: 4,
                            value: r.u64(),
                        })
                        .collect(),
                )
            },
            |c| {
                // Wrong on purpose: a write to DR does produce a byte.
                for a in &c.0 {
                    if let UartOp::Access { offset, .. } = a {
                        assert!(*offset != 0, "planted failure");
                    }
                }
                1
            },
        );
    });
    let report = result.expect_err("the planted failure was not reported");
    for needle in [
        "fuzz harness_self_test: FAILED on execution",
        "case seed: 0x",
        "planted failure",
        "input (shrunk): UartCase(",
        "write 0x0/4",
        "BULKHEAD_FUZZ_REPLAY=0x",
    ] {
        assert!(
            report.contains(needle),
            "{needle:?} missing from the report:\n{report}"
        );
    }
    // Shrunk to the one access that matters.
    let shrunk = report.split("input (shrunk):").nth(1).unwrap();
    let shrunk = shrunk.split("input (as generated)").next().unwrap();
    assert_eq!(shrunk.matches("write").count(), 1, "not shrunk:\n{report}");
}
