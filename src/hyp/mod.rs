//! The hypervisor proper: boot, the per-CPU loop that runs one vCPU, and the
//! exception handlers. Built only for the target.
//!
//! Boot, in order: console, EL2 MMU, heap, the boot device tree checked
//! against the board, the distributor, the partitions (stage-2 tables,
//! images, device trees), the secondary CPUs; then every CPU sets up its
//! redistributor and CPU interface and enters its vCPU at EL1.
//!
//! # What partitions share at EL2, and why none can make another wait
//!
//! The rule: no path a guest can trigger takes a lock, or waits on
//! anything, that another partition's guest can hold or fill. Every piece
//! of EL2 state reachable from more than one partition's exits:
//!
//! | state | written by | why nobody waits on another partition |
//! |---|---|---|
//! | the board UART's transmit side (`output`, `crate::console`) | the CPU whose partition holds the UART's turn | each partition's bytes wait in its own ring, under a lock only its own CPUs take; the lock-free `console::Arbiter` gives one visible line at a time in round-robin order, and takes the turn from a partition whose open line has nothing more to send once its turn has lasted `output::IDLE_US`, or that is longer than `console::LINE_MAX` while others wait, so none holds it by never ending its line; a CPU sends at most `output::BUDGET` bytes per exit and only while the UART's FIFO has room, never polling it; what is left waits for its next exit or its own EL2 retry timer; at power-off, when no partition runs any more, the last CPU to stop drains every ring in turn |
//! | the board UART's receive side, its interrupt's routing, the console focus (`input`) | a CPU of the partition with the focus, holding that partition's own `pl011` lock | the UART's interrupt is routed to a CPU of the focused partition only (where its emulated PL011's interrupt goes), so input is EL2 work on that partition's CPU: at most `input::RX_BUDGET` bytes per interrupt, then the UART's receive interrupts stay masked until that CPU's own retry timer; a flood of input costs the partition it is for and no other; a Ctrl-] command (read by the owner) or the owner stopping routes the interrupt to the new partition first, then publishes the focus, and a CPU that takes the interrupt without being the owner only ends it (it comes again where it is routed): nobody waits |
//! | the physical distributor (`arch::gic`) | boot (under the driver's lock), then each partition's own vGIC writes, and its CPUs turning its device SPIs off once it has stopped or while it restarts (and clearing their pending and active states for the restarted guest); the board UART's IROUTER by the focused partition (row above) | at run time single-register writes that name only the writer's own interrupts (a bit of ISENABLER/ICENABLER, one IROUTER), under its own partition's `vgic_lock`; a purely virtual SPI (the emulated PL011's) has no physical side; triggers are fixed at boot; nothing waits for GICD_CTLR.RWP; reads of its own interrupts' pending and active bits (the guest's ISPENDR/ISACTIVER reads, the check of a level SPI's line before it is listed or acknowledged) are plain register reads |
//! | each CPU's redistributor | boot, then the partition running on that CPU (its EL1 timers' PPIs: their enables, and their pending and active states as its guest writes them) | single-bit writes of that partition's own interrupts; reads of them (the guest's ISPENDR0/ISACTIVER0 reads) are plain register reads that wait for nothing |
//! | the kick SGI | a partition's vCPUs, to its own vCPUs' CPUs only; a doorbell's ring, to the CPU its target routes the doorbell's SPI to | routing refuses targets outside the partition; a ring reaches only the partition and SPI its configured channel names, and kicks only when it made that SPI pending (rings coalesce until the target drains it) |
//! | a doorbell's SPI in its target's model (`doorbell`) | the ringing partition's CPU: one atomic swap of the SPI's `pending` and one load of its route; the target's own CPUs otherwise | no lock: the target drains it on its own CPU under its own `vgic_lock`, through the gate; the ringer waits on nothing the target holds, and the target takes at most one exit per drain whatever the ring rate |
//! | `Runtime` (the partitions, their configuration) | boot; then only `running`, one atomic decrement when a partition stops | read-only otherwise |
//! | a partition's `Partition` (vGIC model, PL011 model and console input, output, counters, statistics, control page, its phase: running, restarting or stopped) | its own vCPUs only | its locks (`vgic_lock`, `pl011`, `output`) are taken only by its own CPUs, for bounded work (`pl011` before `vgic_lock` when both); in a restart its vCPU 0 waits only for its own siblings to leave their guest; its memory is loaded (at boot and at each restart) by its own CPUs, vCPU 0 waiting only for the chunks its siblings took (`runtime::Load`) |
//! | per-CPU state (`arch::percpu::PerCpu`, the vGIC's queue and statistics) | that CPU only | not shared |
//! | the heap, the EL2 MMU pool, the GIC driver's lock | boot only | never touched at run time |
//!
//! Reports (a partition's stop report, its statistics) go into its own
//! ring on its own CPU; the panic path writes the UART directly.

mod doorbell;
mod exits;
mod input;
mod interrupts;
pub mod output;
mod runtime;
mod stop;
mod vcpu;

use buddy_system_allocator::LockedHeap;

use crate::arch::gic::{Gic, GicBackend, RemoteListing};
use crate::arch::{self, mmu, percpu};
use crate::config::{BoardConfig, Config};
use crate::devicetree::{self, DtbMismatch};
use crate::mm::PhysAddr;
use output::hyp_println;
use runtime::Runtime;

mod generated {
    #[allow(clippy::wildcard_imports)] // the generated file names these types unqualified
    use crate::config::*;
    include!(concat!(env!("OUT_DIR"), "/bulkhead_config.rs"));
}

/// The configuration this image was built for.
pub static CONFIG: &Config = &generated::CONFIG;

#[global_allocator]
static HEAP: LockedHeap<32> = LockedHeap::empty();

unsafe extern "C" {
    static __heap_start: u8;
    static __heap_end: u8;
}

static RUNTIME: spin::Once<Runtime> = spin::Once::new();

/// Stops the machine after a boot problem the user must fix.
fn boot_error(args: core::fmt::Arguments<'_>) -> ! {
    hyp_println!("boot error: {args}");
    hyp_println!("powering off");
    arch::system_off(CONFIG.board.power)
}

/// Checks the device tree at `dtb` (x0 at entry) against the board,
/// reading only inside the board's RAM (see [`devicetree`]).
fn check_boot_device_tree(dtb: PhysAddr, board: &BoardConfig) -> Result<(), DtbMismatch> {
    devicetree::plausible_address(dtb, board)?;
    // SAFETY: `plausible_address` found a whole header at `dtb`, aligned
    // and inside RAM, which is identity-mapped and which nothing writes
    // while the primary CPU boots.
    let header = unsafe { &*(dtb.0 as *const [u8; devicetree::HEADER]) };
    let size = devicetree::blob_size(header, dtb, board)?;
    // SAFETY: `blob_size` found all `size` bytes inside the same RAM range;
    // the blob is the boot CPU's alone (no partition is loaded yet, and
    // nothing reads it after this check).
    let blob = unsafe { core::slice::from_raw_parts_mut(dtb.0 as *mut u8, size) };
    devicetree::drop_nops(blob).ok_or(DtbMismatch {
        board: board.name,
        what: devicetree::Mismatch::Unreadable { address: dtb },
    })?;
    devicetree::check_bytes(blob, dtb, board)
}

#[unsafe(no_mangle)]
extern "C" fn rust_primary_main(dtb: u64) -> ! {
    // Provisional, so `this_cpu` works at once; `cpu_main` installs the
    // block of this CPU's real index.
    percpu::install(0);
    let board = &CONFIG.board;
    output::init(board.uart.base.0);
    hyp_println!(
        "Bulkhead {} on board {}, partitions from {}",
        env!("CARGO_PKG_VERSION"),
        board.name,
        CONFIG.source
    );
    if let Err(e) = mmu::build(board) {
        boot_error(format_args!("cannot build the EL2 map: {e:?}"));
    }
    mmu::enable();
    // SAFETY: the linker script reserves [__heap_start, __heap_end) inside
    // the hypervisor's RAM for the heap and nothing else uses it.
    unsafe {
        let start = core::ptr::addr_of!(__heap_start) as usize;
        let end = core::ptr::addr_of!(__heap_end) as usize;
        HEAP.lock().init(start, end - start);
    }
    let mpidr = arch::mpidr();
    let Some(cpu) = board.cpus.iter().position(|c| c.mpidr == mpidr) else {
        boot_error(format_args!(
            "this CPU (MPIDR {mpidr:#x}) is not among board {}'s CPUs",
            board.name
        ));
    };
    if let Err(e) = check_boot_device_tree(PhysAddr(dtb), board) {
        boot_error(format_args!("{e}"));
    }
    // A GICv3 backend on a CPU without the GIC system registers would take
    // an UNDEFINED exception at its first ICC_ access.
    if board.gic.version() == 3 && !arch::has_gic_system_registers() {
        boot_error(format_args!(
            "board {} has a GICv3, but this CPU has no GIC system registers \
             (ID_AA64PFR0_EL1.GIC is 0): a GICv2 machine? Build for a GICv2 board",
            board.name
        ));
    }
    // The build refuses a board whose GIC has no backend (bulkhead-config's
    // `build`): the configuration is this backend's.
    Gic::init_distributor(&board.gic, board.cpus.len());
    if let RemoteListing::Unusable {
        aliases,
        vtr,
        through_alias,
    } = Gic::remote_listing()
    {
        hyp_println!(
            "GICH aliases at {aliases} not used: this CPU's reads {through_alias:#x} where GICH_VTR \
             is {vtr:#x} (QEMU's raspi4b maps each CPU's GICC there); IPIs to other CPUs kick them"
        );
    }
    let runtime = match Runtime::build(CONFIG) {
        Ok(r) => r,
        Err(e) => boot_error(format_args!("{e}")),
    };
    let runtime = RUNTIME.call_once(|| runtime);
    for part in &runtime.partitions {
        interrupts::configure_physical_at_boot(runtime, part);
    }
    input::init(runtime);
    for (index, c) in board.cpus.iter().enumerate() {
        if index != cpu
            && runtime.vcpu_on_cpu(index).is_some()
            && let Err(status) = arch::start_cpu(index, c)
        {
            boot_error(format_args!(
                "PSCI CPU_ON for CPU {index} (MPIDR {:#x}) failed: {status}",
                c.mpidr
            ));
        }
    }
    cpu_main(cpu, arch::stack_top(0))
}

#[unsafe(no_mangle)]
extern "C" fn rust_secondary_main(cpu: usize) -> ! {
    percpu::install(cpu);
    mmu::enable();
    cpu_main(cpu, arch::stack_top(cpu + 1))
}

/// The runtime, once boot has built it.
fn runtime() -> Option<&'static Runtime> {
    RUNTIME.get()
}

fn runtime_of() -> &'static Runtime {
    RUNTIME
        .get()
        .expect("the runtime is built before any CPU runs a vCPU")
}

/// Every CPU, after boot: the GIC CPU interface, then its vCPU (or rest).
fn cpu_main(cpu: usize, stack_top: u64) -> ! {
    percpu::install(cpu);
    percpu::set_stack_top(stack_top);
    let runtime = runtime_of();
    let vcpu = runtime.vcpu_on_cpu(cpu);
    Gic::init_cpu(cpu, vcpu.is_some(), maintenance_intid());
    if let Some((p, v)) = vcpu {
        runtime.bind_this_cpu(p, v);
        output::partitions_started();
    }
    match vcpu {
        None => stop::park(),
        Some((p, v)) => runtime.run_vcpu(p, v),
    }
}

/// The GIC maintenance interrupt's INTID (a PPI).
fn maintenance_intid() -> u32 {
    CONFIG.board.gic.maintenance_intid()
}

/// This CPU's index, as `cpu_main` recorded it.
fn this_cpu() -> usize {
    percpu::this_cpu()
}

#[cfg(not(test))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    output::emergency(format_args!(
        "hypervisor panic on CPU {}: {info}",
        this_cpu()
    ));
    arch::system_off(CONFIG.board.power)
}
