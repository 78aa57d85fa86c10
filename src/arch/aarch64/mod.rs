//! AArch64 at EL2: entry, vectors, system registers, the EL2 MMU, stage-2
//! registers, cache and TLB maintenance, and the firmware (PSCI over SMC).
//! With its submodules the only code that runs instructions generic code
//! cannot:
//! - [`exception`]: the exit being handled (syndrome, skipping the trapped
//!   instruction, exceptions injected into EL1);
//! - [`gic`]: the GIC backend seam and its GICv3 implementation, with the
//!   exit fast paths;
//! - [`percpu`]: the per-CPU block TPIDR_EL2 points at;
//! - `vectors`: the EL2 vector table and the guest exits' assembly;
//! - `calls`: the calls' fast path, the hypercalls answered at the vector;
//! - [`mmu`], [`pl011`]: the EL2 MMU and the board UART;
//! - [`sysreg`]: the system registers `aarch64-cpu` lacks, typed in its
//!   style (every other one is `aarch64_cpu::registers`'s).

mod bcm2835_pm;
mod calls;
pub mod exception;
pub mod gic;
pub mod mmu;
pub mod percpu;
pub mod pl011;
pub mod sysreg;
mod vectors;

use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicU64, Ordering};

use crate::config::{CpuConfig, Power};

use aarch64_cpu::registers::{
    CNTFRQ_EL0, CNTHCTL_EL2, CNTHP_CTL_EL2, CNTPCT_EL0, CNTVOFF_EL2, CPACR_EL1, ELR_EL2, HCR_EL2,
    MDCR_EL2, MIDR_EL1, MPIDR_EL1, SCTLR_EL1, SPSR_EL2, VMPIDR_EL2, VTCR_EL2, VTTBR_EL2,
};
use tock_registers::fields::FieldValue;
use tock_registers::interfaces::{Readable, Writeable};

use sysreg::{CNTHP_TVAL_EL2, CTR_EL0, DCZID_EL0, PMCR_EL0, VPIDR_EL2, fields, unnamed_bits_set};

/// Bytes of EL2 stack per physical CPU.
pub const STACK_SIZE: usize = 16 * 1024;
/// Most physical CPUs a board may have (the configuration check enforces it).
pub use bulkhead_abi::limits::MAX_CPUS;

/// The guest registers saved by every exit from a lower EL: x0..x30 and a pad
/// word to keep the stack 16-byte aligned. Its layout is the assembly's.
#[repr(C)]
#[derive(Debug)]
pub struct TrapFrame {
    pub x: [u64; 31],
    _pad: u64,
}

impl TrapFrame {
    /// Register `n` as an instruction names it: 31 is xzr.
    pub fn reg(&self, n: u8) -> u64 {
        self.x.get(usize::from(n)).copied().unwrap_or(0)
    }

    /// Writes register `n`; writes to xzr vanish.
    pub fn set_reg(&mut self, n: u8, value: u64) {
        if let Some(r) = self.x.get_mut(usize::from(n)) {
            *r = value;
        }
    }
}

/// The EL2 stacks: slot 0 is the boot CPU's, slot n + 1 is CPU n's.
#[repr(C, align(16))]
pub struct Stacks([[u8; STACK_SIZE]; MAX_CPUS + 1]);

#[unsafe(no_mangle)]
static mut STACKS: Stacks = Stacks([[0; STACK_SIZE]; MAX_CPUS + 1]);

global_asm!(
    include_str!("entry.S"),
    STACK_SIZE = const STACK_SIZE,
    MAX_CPUS = const MAX_CPUS,
);

unsafe extern "C" {
    /// Enters the guest: sets x0, clears the other registers, resets SP_EL2
    /// to `stack_top` and ERETs to ELR_EL2 with SPSR_EL2.
    fn vcpu_enter(x0: u64, stack_top: u64) -> !;
    static secondary_entry: u8;
    static spin_table_entry: u8;
}

/// Top of the EL2 stack of stack slot `slot` (see [`Stacks`]).
pub fn stack_top(slot: usize) -> u64 {
    // Only the address is taken; nothing is read or written through it.
    let base = core::ptr::addr_of!(STACKS) as u64;
    base + ((slot + 1) * STACK_SIZE) as u64
}

/// Reads a system register by name: for the typed definitions of
/// [`sysreg`] only.
macro_rules! mrs {
    ($reg:literal) => {{
        let value: u64;
        // SAFETY: reading this system register has no effect on memory.
        unsafe {
            core::arch::asm!(concat!("mrs {}, ", $reg), out(reg) value, options(nomem, nostack, preserves_flags))
        };
        value
    }};
}

/// Writes a system register by name: for the typed definitions of
/// [`sysreg`] only, registers that configure the GIC's CPU interfaces, the
/// EL2 timer or the guest's EL1 context, which cannot break the
/// hypervisor's own memory safety.
macro_rules! msr {
    ($reg:literal, $value:expr) => {{
        let value: u64 = $value;
        // SAFETY: the register configures interrupts or guest state only (see the macro's doc).
        unsafe {
            core::arch::asm!(concat!("msr ", $reg, ", {}"), in(reg) value, options(nomem, nostack, preserves_flags))
        };
    }};
}
pub(in crate::arch) use {mrs, msr};

/// MPIDR_EL1's affinity fields (Aff3, Aff2, Aff1, Aff0).
pub fn mpidr() -> u64 {
    const AFFINITY: u64 = MPIDR_EL1::Aff3::SET.value
        | MPIDR_EL1::Aff2::SET.value
        | MPIDR_EL1::Aff1::SET.value
        | MPIDR_EL1::Aff0::SET.value;
    MPIDR_EL1.get() & AFFINITY
}

/// Whether this CPU has the GIC system-register interface a GICv3 backend
/// uses (ID_AA64PFR0_EL1.GIC not 0): without it every ICC_/ICH_ access is
/// UNDEFINED.
pub fn has_gic_system_registers() -> bool {
    sysreg::ID_AA64PFR0_EL1.read(sysreg::ID_AA64PFR0_EL1::GIC) != 0
}

/// Calls the firmware's PSCI (SMC conduit, SMCCC 1.1).
pub fn psci_call(fid: u64, a1: u64, a2: u64, a3: u64) -> i64 {
    let mut x0 = fid;
    // SAFETY: an SMC to PSCI firmware; it may clobber x0-x17 per SMCCC 1.1 and
    // touches no memory of ours.
    unsafe {
        asm!("smc #0", inout("x0") x0, inout("x1") a1 => _, inout("x2") a2 => _, inout("x3") a3 => _,
             out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _, out("x9") _,
             out("x10") _, out("x11") _, out("x12") _, out("x13") _, out("x14") _, out("x15") _,
             out("x16") _, out("x17") _, options(nostack));
    }
    x0 as i64
}

/// The MPIDR of each CPU the spin table releases, by CPU index, for
/// `spin_table_entry` (entry.S) to find its index by: a CPU leaves the
/// firmware's spin table with nothing in its registers. Written by the boot
/// CPU before it releases that CPU and cleaned to the point of coherency,
/// as the released CPU reads it with its MMU and caches off. An entry
/// never written holds no MPIDR (bits outside the affinity fields).
#[unsafe(no_mangle)]
static SPIN_MPIDRS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(u64::MAX) }; MAX_CPUS];

/// Starts physical CPU `index` at `secondary_entry`: with PSCI CPU_ON, or
/// by writing the entry point to its spin-table release address. Gives
/// PSCI's error code if CPU_ON failed.
pub fn start_cpu(index: usize, cpu: &CpuConfig) -> Result<(), i64> {
    match cpu.spin_table {
        None => {
            let entry = core::ptr::addr_of!(secondary_entry) as u64;
            match psci_call(
                bulkhead_abi::psci::CPU_ON_64,
                cpu.mpidr,
                entry,
                index as u64,
            ) {
                0 => Ok(()),
                status => Err(status),
            }
        }
        Some(release) => {
            let slot = &SPIN_MPIDRS[index];
            slot.store(cpu.mpidr, Ordering::Relaxed);
            clean_data(slot.as_ptr() as u64, 8);
            let entry = core::ptr::addr_of!(spin_table_entry) as u64;
            // SAFETY: the board's release address of this CPU: a word of
            // board RAM that the configuration check keeps clear of the
            // hypervisor's own RAM and of every partition's, identity
            // mapped by the EL2 map; only the parked CPU reads it.
            unsafe { core::ptr::write_volatile(release.0 as *mut u64, entry) };
            clean_data(release.0, 8);
            // SAFETY: wakes the CPUs waiting in WFE; no memory is touched.
            unsafe { asm!("sev", options(nomem, nostack, preserves_flags)) };
            Ok(())
        }
    }
}

/// Powers the machine off: PSCI SYSTEM_OFF, or the BCM2835 power
/// manager's watchdog reset into the firmware's halt state (QEMU's raspi
/// machines reset, and with `-no-reboot` exit).
pub fn system_off(power: Power) -> ! {
    match power {
        Power::Psci => {
            psci_call(bulkhead_abi::psci::SYSTEM_OFF, 0, 0, 0);
        }
        Power::Bcm2835Watchdog(base) => bcm2835_pm::halt(base),
    }
    halt()
}

/// Stops this CPU for good, interrupts masked.
pub fn halt() -> ! {
    loop {
        // SAFETY: masks interrupts and waits; touches no memory.
        unsafe { asm!("msr daifset, #0xf", "wfi", options(nomem, nostack)) };
    }
}

/// Waits for an event (SEV from another CPU).
pub fn wait_for_event() {
    // SAFETY: a hint instruction.
    unsafe { asm!("wfe", options(nomem, nostack, preserves_flags)) };
}

/// Waits for an interrupt to become pending (taken or not).
pub fn wait_for_interrupt() {
    // SAFETY: a hint instruction.
    unsafe { asm!("wfi", options(nomem, nostack, preserves_flags)) };
}

/// Wakes CPUs waiting in [`wait_for_event`].
pub fn send_event() {
    // SAFETY: orders earlier stores before the event; touches no memory.
    unsafe { asm!("dsb ish", "sev", options(nostack, preserves_flags)) };
}

/// The EL2 physical timer's interrupt (CNTHP, PPI 10): the hypervisor's own
/// per-CPU timer, which only the hypervisor programs.
pub const HYP_TIMER_INTID: u32 = 26;

/// Arms this CPU's EL2 physical timer to fire in `us` microseconds, unless
/// it is armed already and has not fired (then its deadline stands: no
/// system register is written).
pub fn hyp_timer_arm_us(us: u64) {
    if CNTHP_CTL_EL2.matches_all(CNTHP_CTL_EL2::ENABLE::SET + CNTHP_CTL_EL2::ISTATUS::CLEAR) {
        return;
    }
    let ticks = CNTFRQ_EL0.get() / 1_000_000 * us;
    CNTHP_TVAL_EL2.set(ticks.max(1));
    CNTHP_CTL_EL2.write(CNTHP_CTL_EL2::ENABLE::SET + CNTHP_CTL_EL2::IMASK::CLEAR);
}

/// Stops this CPU's EL2 physical timer (its interrupt deasserts).
pub fn hyp_timer_disarm() {
    CNTHP_CTL_EL2.write(CNTHP_CTL_EL2::ENABLE::CLEAR + CNTHP_CTL_EL2::IMASK::CLEAR);
}

/// Whether this CPU's EL2 physical timer is armed and has expired.
pub fn hyp_timer_fired() -> bool {
    CNTHP_CTL_EL2.matches_all(CNTHP_CTL_EL2::ENABLE::SET + CNTHP_CTL_EL2::ISTATUS::SET)
}

/// The guest's EL1 starting state, for one vCPU.
#[derive(Clone, Copy, Debug)]
pub struct GuestStart {
    pub entry: u64,
    pub x0: u64,
    pub vmpidr: u64,
    pub vmid: u16,
    pub stage2_root: u64,
    /// CNTVOFF_EL2: subtracted from the physical count for the guest's virtual one.
    pub cntvoff: u64,
}

/// The physical counter (CNTPCT_EL0).
pub fn physical_counter() -> u64 {
    CNTPCT_EL0.get()
}

/// Ticks of the counter per microsecond (CNTFRQ_EL0 / 10^6, at least one).
pub fn counter_ticks_per_us() -> u64 {
    (CNTFRQ_EL0.get() / 1_000_000).max(1)
}

/// HCR_EL2 for a running guest: VM (stage 2), SWIO, FMO, IMO, AMO (physical
/// interrupts and SErrors to EL2, virtual ones to the guest), TSC (SMC traps,
/// so PSCI can be emulated over SMC too), TIDCP (implementation-defined
/// system registers trap, so a guest cannot reach CPU tuning registers
/// shared with the hypervisor; it gets UNDEFINED), TACR (ACTLR_EL1, whose
/// bits are implementation defined and may tune caches shared with other
/// partitions: read as zero, writes ignored), TSW (data cache maintenance
/// by set/way: it reaches a cache level, the L2, that other partitions
/// share, evicting their lines; a partition's own memory is reached by
/// address: emulated as doing nothing), RW (EL1 is AArch64).
///
/// Left alone, deliberately: TID1/TID2/TID3 (the ID and cache-geometry
/// registers describe the core the vCPU really runs on, alone, which is
/// what a guest should tune for; VPIDR/VMPIDR already give it its own
/// identity), TWI/TWE (WFI and WFE idle the vCPU's own physical CPU: there
/// is nothing else to run on it).
pub const HCR_GUEST: FieldValue<u64, HCR_EL2::Register> = fields(&[
    HCR_EL2::VM::Enable,
    HCR_EL2::SWIO::SET,
    HCR_EL2::FMO::EnableVirtualFIQ,
    HCR_EL2::IMO::EnableVirtualIRQ,
    HCR_EL2::AMO::SET,
    HCR_EL2::TSC::EnableTrapEl1SmcToEl2,
    HCR_EL2::TIDCP::SET,
    HCR_EL2::TACR::SET,
    HCR_EL2::TSW::SET,
    HCR_EL2::RW::EL1IsAarch64,
]);

/// MDCR_EL2 for a running guest: TPM and TPMCR (every performance-monitor
/// register traps and is UNDEFINED for the guest, but PMUSERENR_EL0, which
/// reads as zero (`hyp::exits`), and its device tree describes no PMU: its counters could count EL2 cycles, timing the
/// hypervisor and, through it, other partitions' effect on it), HPMD (no
/// event counts at EL2 in any case), and HPMN at PMCR_EL0.N (all counters
/// EL1's, as the field must not exceed N). TDE, TDA, TDOSA, TDRA clear:
/// the debug registers are the guest's own PE's, shared with nobody, and
/// with debug exceptions routed to EL1 none is taken at EL2.
fn mdcr_guest() -> FieldValue<u64, MDCR_EL2::Register> {
    MDCR_EL2::HPMN.val(PMCR_EL0.read(PMCR_EL0::N))
        + MDCR_EL2::TPMCR::SET
        + MDCR_EL2::TPM::SET
        + MDCR_EL2::HPMD::SET
}

/// VTCR_EL2 for the stage-2 tables, field by field: `mm::pagetable`'s
/// `VTCR_EL2_VALUE` (which says why each field is what it is; that module
/// is host-tested, without `aarch64-cpu`), checked equal below.
const VTCR_GUEST: FieldValue<u64, VTCR_EL2::Register> = fields(&[
    VTCR_EL2::RES1::SET,
    VTCR_EL2::PS::PA_40B_1TB,
    VTCR_EL2::TG0::Granule4KB,
    VTCR_EL2::SH0::Inner,
    VTCR_EL2::ORGN0::NormalWBRAWA,
    VTCR_EL2::IRGN0::NormalWBRAWA,
    VTCR_EL2::SL0::Granule4KBLevel1,
    VTCR_EL2::T0SZ.val(25),
]);
const _: () = assert!(VTCR_GUEST.value == crate::mm::pagetable::VTCR_EL2_VALUE);

/// SCTLR_EL1 at reset: MMU and caches off, and its RES1 bits, which
/// `aarch64-cpu` does not name (29 LSMAOE, 28 nTLSMD, 23 SPAN, 22 EIS,
/// 20 TSCXT, 11 EOS: RES1 without the features that define them).
const SCTLR_EL1_RESET: FieldValue<u64, SCTLR_EL1::Register> = fields(&[
    unnamed_bits_set(0x30d0_0800),
    SCTLR_EL1::M::Disable,
    SCTLR_EL1::C::NonCacheable,
    SCTLR_EL1::I::NonCacheable,
]);

/// Sets up this CPU's EL1 context and stage 2 for `start` and enters it.
/// EL1 registers are the architecture's reset values, so every entry (boot,
/// CPU_ON after CPU_OFF) starts alike.
pub fn enter_guest(start: &GuestStart, stack_top: u64) -> ! {
    // The root table's address is BADDR as it stands (4 KiB aligned, below
    // 2^48): ORed in, not through `BADDR.val`, whose masking costs an
    // instruction.
    VTTBR_EL2.set(VTTBR_EL2::VMID.val(u64::from(start.vmid)).value | start.stage2_root);
    VTCR_EL2.write(VTCR_GUEST);
    VMPIDR_EL2.set(start.vmpidr | VMPIDR_EL2::RES1::SET.value);
    VPIDR_EL2.set(MIDR_EL1.get());
    // EL1 has the physical counter (EL1PCTEN) and the EL1 physical timer
    // (EL1PCEN, CNTP_*: its interrupt is forwarded like the virtual
    // timer's), as on hardware. The physical count is not offset (no
    // FEAT_ECV's CNTPOFF_EL2 on the boards we run on): the guest sees the
    // machine's, as under KVM without it. The hypervisor's own timer is
    // CNTHP, which EL1 cannot reach.
    CNTHCTL_EL2.write(CNTHCTL_EL2::EL1PCTEN::SET + CNTHCTL_EL2::EL1PCEN::SET);
    CNTVOFF_EL2.set(start.cntvoff);
    SCTLR_EL1.write(SCTLR_EL1_RESET);
    // Reset state: FP/SIMD, SVE and trace accesses trap to EL1.
    CPACR_EL1
        .write(CPACR_EL1::FPEN::TrapEl0El1 + CPACR_EL1::ZEN::TrapEl0El1 + CPACR_EL1::TTA::NoTrap);
    exception::stop_guest_timer();
    HCR_EL2.write(HCR_GUEST);
    MDCR_EL2.write(mdcr_guest());
    SPSR_EL2.write(exception::SPSR_EL1H_MASKED);
    ELR_EL2.set(start.entry);
    // SAFETY: invalidates this VMID's stale stage-1+2 TLB entries; no memory access.
    unsafe { asm!("isb", "tlbi vmalls12e1", "dsb nsh", "isb", options(nostack)) };
    <gic::Gic as gic::GicBackend>::guest_entry();
    // SAFETY: ELR/SPSR/HCR/VTTBR describe a guest whose memory the stage-2
    // tables confine; the stack top is this CPU's own.
    unsafe { vcpu_enter(start.x0, stack_top) }
}

/// Zeroes `[start, start + len)` where it is not zero already, a 4 KiB
/// page at a time (with `dc zva` where the CPU permits it, else stores):
/// a page whose first 64 bytes hold anything is zeroed at once, unread
/// (memory at power-on holds noise: it costs about what zeroing does);
/// one that starts with zeroes is read on and zeroed only if something
/// follows (memory that is zero already, as an emulator's is at start,
/// whose host then need not back untouched guest memory with pages of its
/// own, is only read). The bytes either side of the whole pages are
/// stored. What is read or written stays in the data cache: see
/// [`clean_for_guest`].
///
/// # Safety
/// The range is memory the hypervisor maps as Normal and nothing else uses
/// while it is zeroed.
pub unsafe fn zero(start: u64, len: u64) {
    const PAGE: u64 = 4096;
    let end = start + len;
    let (first, last) = (start.next_multiple_of(PAGE), end & !(PAGE - 1));
    if first >= last {
        // SAFETY: the caller's contract.
        unsafe { core::ptr::write_bytes(start as *mut u8, 0, len as usize) };
        return;
    }
    // SAFETY: the caller's contract; both pieces are inside the range.
    unsafe {
        core::ptr::write_bytes(start as *mut u8, 0, (first - start) as usize);
        core::ptr::write_bytes(last as *mut u8, 0, (end - last) as usize);
    }
    let dczid = DCZID_EL0.extract();
    // A `dc zva` block: 4 << BS bytes, at most 2 KiB, so a page holds whole ones.
    let block = (!dczid.is_set(DCZID_EL0::DZP)).then(|| 4u64 << dczid.read(DCZID_EL0::BS));
    let mut page = first;
    while page < last {
        // SAFETY: the caller's contract: a whole page inside the range.
        if unsafe { page_holds_anything(page) } {
            match block {
                Some(block) => {
                    let mut at = page;
                    while at < page + PAGE {
                        // SAFETY: the caller's contract; a block inside the page.
                        unsafe {
                            asm!("dc zva, {}", in(reg) at, options(nostack, preserves_flags))
                        };
                        at += block;
                    }
                }
                // SAFETY: as above.
                None => unsafe { core::ptr::write_bytes(page as *mut u8, 0, PAGE as usize) },
            }
        }
        page += PAGE;
    }
}

/// Whether the 4 KiB page at `page` holds a non-zero byte, its first 64
/// bytes read first, then the rest 64 bytes (four load pairs) at a time.
///
/// # Safety
/// `page` is a 4 KiB-aligned page of readable Normal memory.
unsafe fn page_holds_anything(page: u64) -> bool {
    let mut chunk = page;
    while chunk < page + 4096 {
        // SAFETY: the caller's contract: 64 aligned bytes inside the page.
        let w = unsafe { core::ptr::read(chunk as *const [u64; 8]) };
        if (w[0] | w[1] | w[2] | w[3]) | (w[4] | w[5] | w[6] | w[7]) != 0 {
            return true;
        }
        chunk += 64;
    }
    false
}

/// Cleans `[start, start + len)` from the data cache to the point of
/// coherency, so a guest that starts with its MMU (and caches) off sees
/// what the hypervisor wrote, then invalidates the instruction cache.
pub fn clean_for_guest(start: u64, len: u64) {
    clean_data(start, len);
    invalidate_instructions();
}

/// Cleans `[start, start + len)` from the data cache to the point of
/// coherency (then a `dsb ish`): see [`clean_for_guest`], whose
/// instruction-cache invalidate a caller that cleans in pieces does once
/// ([`invalidate_instructions`]).
pub fn clean_data(start: u64, len: u64) {
    let line = 4u64 << CTR_EL0.read(CTR_EL0::DminLine);
    let mut at = start & !(line - 1);
    while at < start + len {
        // SAFETY: cache maintenance by address on memory this hypervisor maps.
        unsafe { asm!("dc cvac, {}", in(reg) at, options(nostack, preserves_flags)) };
        at += line;
    }
    // SAFETY: a barrier.
    unsafe { asm!("dsb ish", options(nostack, preserves_flags)) };
}

/// Invalidates every instruction cache of the inner shareable domain, after
/// code was written (and cleaned, [`clean_data`]) for a guest.
pub fn invalidate_instructions() {
    // SAFETY: barriers and an instruction-cache invalidate.
    unsafe {
        asm!(
            "dsb ish",
            "ic ialluis",
            "dsb ish",
            "isb",
            options(nostack, preserves_flags)
        )
    };
}
