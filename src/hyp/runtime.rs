//! Partitions at run time: their state ([`Partition`], [`Runtime`]) and
//! building them at boot (stage-2 tables, images, device trees, control
//! pages). Running a vCPU is `vcpu`, stopping a partition `stop`.

use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::arch;
use crate::arch::gic::{Gic, GicBackend};
use crate::config::{Access, BoardConfig, Config, DoorbellConfig, PartitionConfig};
use crate::console::input::Port;
use crate::mm::PhysAddr;
use crate::mm::pagetable::{MapError, MemKind, PageTable, Stage2, Table, TableAlloc};
use crate::partition::{MAX_VCPUS, PartitionState};
use crate::vgic::gate::Stats;
use crate::vgic::sgi::AffinityMap;
use crate::vgic::state::VgicState;
use bulkhead_abi::Counter;
use bulkhead_abi::board::CONSOLE_PL011_INTID;
use bulkhead_abi::control::{self, ControlPage};
use core::sync::atomic::AtomicU64;

use super::output::{self, hyp_println};

/// Stage-2 tables come from the heap, which is identity-mapped.
struct HeapTables;

impl TableAlloc for HeapTables {
    fn alloc(&mut self) -> Option<PhysAddr> {
        let layout = core::alloc::Layout::new::<Table>();
        // SAFETY: `Table` has a non-zero size.
        let ptr = unsafe { alloc::alloc::alloc_zeroed(layout) };
        (!ptr.is_null()).then_some(PhysAddr(ptr as u64))
    }

    fn table(&mut self, pa: PhysAddr) -> &mut Table {
        // SAFETY: `pa` came from `alloc` above: a live, aligned, zero-initialised
        // `Table` that is never freed, at an identity-mapped address.
        unsafe { &mut *(pa.0 as *mut Table) }
    }
}

/// One partition's run-time state.
pub struct Partition {
    pub config: &'static PartitionConfig,
    pub state: PartitionState,
    /// Its console output (partial line, lines waiting for the UART):
    /// locked only by its own CPUs, for bounded work (`output::pump`).
    pub output: spin::Mutex<output::Output>,
    /// Its console input and emulated PL011: locked only by its own CPUs,
    /// for bounded work (`input`).
    pub pl011: spin::Mutex<Port>,
    /// Its virtual GIC; register writes go through `vgic_lock`.
    pub vgic: VgicState,
    pub vgic_lock: spin::Mutex<()>,
    pub affinity: AffinityMap,
    /// Its control page (hypervisor memory the guest also writes: untrusted).
    pub control: &'static ControlPage,
    /// Loading its memory, at boot and at each restart.
    pub(super) load: Load,
    /// Where the control page is (to clear it for a restart).
    control_at: PhysAddr,
    /// Each vCPU's deferral statistics (deferred, max wait, max window), as
    /// its CPU last published them.
    defer_stats: [[AtomicU64; 3]; MAX_VCPUS],
    /// Whether an access to an address with nothing behind it has been
    /// reported on the console (once per partition; all are counted).
    pub(super) unbacked_reported: core::sync::atomic::AtomicBool,
    pub(super) stage2_root: PhysAddr,
    pub(super) vmid: u16,
    /// CNTVOFF_EL2 for all its vCPUs: its virtual counter starts near 0.
    pub(super) cntvoff: u64,
}

impl Partition {
    /// Counts one event of `counter` for vCPU `v`, on `v`'s own CPU: the
    /// counters are kept by the CPU (`percpu::counters_of`), where the
    /// exit fast paths count too.
    #[inline(always)]
    pub fn count(&self, v: usize, counter: Counter, n: u64) {
        debug_assert_eq!(arch::percpu::this_vcpu().1, v);
        arch::percpu::count(counter, n);
    }

    pub fn counter(&self, v: usize, counter: Counter) -> u64 {
        arch::percpu::counters_of(self.config.cpus[v])[counter as usize].load(Ordering::Relaxed)
    }

    /// Makes vCPU `v`'s deferral statistics readable from any CPU.
    pub fn publish_stats(&self, v: usize, stats: &Stats) {
        let s = &self.defer_stats[v];
        s[0].store(stats.deferred, Ordering::Relaxed);
        s[1].store(stats.max_wait, Ordering::Relaxed);
        s[2].store(stats.max_window, Ordering::Relaxed);
    }

    /// Clears the control page as a restart finds it: magic and version,
    /// every flag and the rest zero.
    ///
    /// # Safety
    /// None of the partition's vCPUs runs.
    pub(super) unsafe fn reset_control_page(&self) {
        let page = self.control_at.0 as *mut ControlPage;
        // SAFETY: the partition's own control page, hypervisor memory
        // allocated for it at boot and mapped at EL2. It is memory its
        // guest writes behind the hypervisor's `&ControlPage` anyway, which
        // is why the hypervisor only ever reads its atomic fields; no vCPU
        // of the partition runs to write it meanwhile (the caller's
        // contract), and nothing reads it for them until one does. All-zero
        // is a valid `ControlPage`.
        unsafe {
            core::ptr::write_bytes(page, 0, 1);
            (*page).magic = control::MAGIC;
            (*page).version = control::VERSION;
        }
        arch::clean_for_guest(self.control_at.0, control::SIZE as u64);
    }

    /// Where vCPU `v`'s statistics are published (deferred, max wait, max
    /// window), for the assembly fast paths.
    pub fn published_stats(&self, v: usize) -> &[AtomicU64; 3] {
        &self.defer_stats[v]
    }

    /// (deferred, max wait, max window) of vCPU `v`, as last published.
    pub fn defer_stats(&self, v: usize) -> [u64; 3] {
        let s = &self.defer_stats[v];
        [0, 1, 2].map(|i| s[i].load(Ordering::Relaxed))
    }
}

/// All partitions, and how many still run.
pub struct Runtime {
    pub partitions: Vec<Partition>,
    /// The doorbells between them (`doorbell`).
    pub doorbells: &'static [DoorbellConfig],
    pub(super) running: AtomicUsize,
    board: &'static BoardConfig,
}

/// A problem found while building partitions (boot stops on it).
#[derive(Debug)]
pub enum BuildError {
    Map {
        partition: &'static str,
        error: MapError,
    },
    TooManyVcpus {
        partition: &'static str,
    },
    NoMemory {
        partition: &'static str,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Map { partition, error } => {
                write!(
                    f,
                    "partition {partition}: cannot build its stage-2 map: {error:?}"
                )
            }
            BuildError::NoMemory { partition } => {
                write!(
                    f,
                    "partition {partition}: no memory left for its control page or console ring"
                )
            }
            BuildError::TooManyVcpus { partition } => write!(
                f,
                "partition {partition}: more vCPUs than this build supports ({})",
                crate::partition::MAX_VCPUS
            ),
        }
    }
}

/// A zeroed control page with its magic and version, never freed.
fn new_control_page() -> Option<&'static ControlPage> {
    let layout = core::alloc::Layout::new::<ControlPage>();
    // SAFETY: `ControlPage` has a non-zero size.
    let ptr = unsafe { alloc::alloc::alloc_zeroed(layout) } as *mut ControlPage;
    // SAFETY: `ptr` is null or a fresh, aligned, zeroed allocation of a
    // `ControlPage` (all-zero is a valid value of it); it is never freed.
    let page = unsafe { ptr.as_mut() }?;
    page.magic = control::MAGIC;
    page.version = control::VERSION;
    Some(page)
}

/// The loading of a partition's memory, shared by its CPUs: vCPU 0's CPU
/// starts it ([`Load::start`]) and works at it; each sibling that waits
/// in EL2 for CPU_ON (at boot, and all of them in a restart) takes chunks
/// too ([`Load::help`]); vCPU 0 waits until every chunk is done, only for
/// its own partition's CPUs, each of which finishes the chunk it took.
pub struct Load {
    /// Whether a load is under way.
    active: AtomicBool,
    /// The next chunk to take, and how many are done.
    next: AtomicUsize,
    done: AtomicUsize,
}

impl Load {
    pub(super) const fn new() -> Load {
        Load {
            active: AtomicBool::new(false),
            next: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
        }
    }

    /// Begins a load (on vCPU 0's CPU, none of the partition's vCPUs in its
    /// guest): the partition's CPUs then take its chunks.
    pub(super) fn start(&self) {
        self.done.store(0, Ordering::Relaxed);
        self.next.store(0, Ordering::Relaxed);
        self.active.store(true, Ordering::Release);
    }

    /// Whether a load is under way for this CPU to help with.
    pub(super) fn active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// Takes and loads chunks of `p` until none is left.
    ///
    /// # Safety
    /// None of `p`'s vCPUs runs (a load is under way).
    pub(super) unsafe fn help(&self, p: &PartitionConfig) {
        loop {
            let n = self.next.fetch_add(1, Ordering::AcqRel);
            // SAFETY: the caller's contract.
            if !unsafe { load_chunk(p, n) } {
                return;
            }
            self.done.fetch_add(1, Ordering::AcqRel);
            arch::send_event();
        }
    }

    /// On vCPU 0's CPU, after its own [`Load::help`]: waits until the
    /// chunks its siblings took are done, then ends the load.
    pub(super) fn finish(&self, p: &PartitionConfig) {
        let chunks = crate::mm::load_chunks(p.memory.iter().map(|r| r.size));
        while self.done.load(Ordering::Acquire) < chunks {
            arch::wait_for_event();
        }
        self.active.store(false, Ordering::Release);
        arch::invalidate_instructions();
    }
}

/// Loads chunk `n` of partition `p`'s RAM ([`crate::mm::load_chunk`]) as
/// the partition starts: its part of the images (kernel, initrd, device
/// tree) copied from the hypervisor's image, where the build embedded
/// them, zeroes everywhere else, so nothing of a previous occupant (or of
/// its own previous run) survives; then cleaned to the point of coherency
/// for a guest that starts with its caches off. Each byte is written once
/// (and where it is zero already, not at all: [`arch::zero`]). False past
/// the last chunk.
///
/// # Safety
/// None of `p`'s vCPUs runs.
unsafe fn load_chunk(p: &PartitionConfig, n: usize) -> bool {
    let Some((i, offset, len)) = crate::mm::load_chunk(p.memory.iter().map(|r| r.size), n) else {
        return false;
    };
    let r = &p.memory[i];
    let (ipa, phys) = (r.ipa.0 + offset, r.phys.0 + offset);
    let blobs = [Some(p.image), p.initrd, p.device_tree];
    let covered = blobs.map(|b| b.map_or((0, 0), |b| (b.ipa.0, b.bytes.len() as u64)));
    for (at, gap) in crate::mm::uncovered(ipa, len, &covered) {
        // SAFETY: a part of the partition's own RAM (outside the
        // hypervisor, mapped Normal at EL2 by identity); none of its vCPUs
        // runs (the caller's contract).
        unsafe { arch::zero(phys + (at - ipa), gap) };
    }
    for blob in blobs.into_iter().flatten() {
        let from = blob.ipa.0.max(ipa);
        let to = (blob.ipa.0 + blob.bytes.len() as u64).min(ipa + len);
        if from < to {
            let bytes = &blob.bytes[(from - blob.ipa.0) as usize..(to - blob.ipa.0) as usize];
            // SAFETY: as above: the part of the blob inside this chunk of
            // the region, which the configuration check placed in RAM.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    bytes.as_ptr(),
                    (phys + (from - ipa)) as *mut u8,
                    bytes.len(),
                )
            };
        }
    }
    arch::clean_data(phys, len);
    true
}

impl Runtime {
    pub fn build(config: &'static Config) -> Result<Runtime, BuildError> {
        let mut partitions = Vec::with_capacity(config.partitions.len());
        for (index, p) in config.partitions.iter().enumerate() {
            if p.cpus.len() > crate::partition::MAX_VCPUS {
                return Err(BuildError::TooManyVcpus { partition: p.name });
            }
            let map_err = |error| BuildError::Map {
                partition: p.name,
                error,
            };
            let mut tables = HeapTables;
            let mut s2 = PageTable::<Stage2>::new(&mut tables).map_err(map_err)?;
            for r in p.memory {
                s2.map(&mut tables, r.ipa, r.phys, r.size, MemKind::Normal)
                    .map_err(map_err)?;
            }
            for d in p.devices {
                s2.map(&mut tables, d.ipa, d.phys, d.size, MemKind::Device)
                    .map_err(map_err)?;
            }
            // Shared regions with the rights the configuration gives: a
            // write to a read-only one is a permission fault, which the
            // data-abort exit answers as it answers an access to nothing
            // (a synchronous external abort for the writer only).
            for m in p.shared {
                let kind = match m.access {
                    Access::ReadWrite => MemKind::Normal,
                    Access::ReadOnly => MemKind::ReadOnly,
                };
                s2.map(&mut tables, m.ipa, m.phys, m.size, kind)
                    .map_err(map_err)?;
            }
            // The guest's CPU interface, where the GIC has it in memory.
            if let Some((ipa, frame, size)) = Gic::guest_cpu_interface(&config.board.gic) {
                s2.map(&mut tables, ipa, frame, size, MemKind::Device)
                    .map_err(map_err)?;
            }
            let control = new_control_page().ok_or(BuildError::NoMemory { partition: p.name })?;
            let page = PhysAddr(control as *const ControlPage as u64);
            s2.map(
                &mut tables,
                p.control_page,
                page,
                control::SIZE as u64,
                MemKind::Normal,
            )
            .map_err(map_err)?;
            arch::clean_for_guest(page.0, control::SIZE as u64);
            hyp_println!(
                "partition {}: {} vCPU(s) on CPU(s) [{}], {} KiB image, entry {}{}",
                p.name,
                p.cpus.len(),
                CpuList(p.cpus),
                p.image.bytes.len() / 1024,
                p.entry,
                InitrdSize(p.initrd)
            );
            let mut spis: Vec<u32> = p
                .devices
                .iter()
                .flat_map(|d| d.interrupts.iter().copied())
                .collect();
            // The emulated PL011's: level-sensitive, purely virtual (raised
            // from its model; the physical INTID is not the partition's).
            if p.console_pl011.is_some() {
                spis.push(CONSOLE_PL011_INTID);
            }
            // Its incoming doorbells': purely virtual too, each raised by a
            // ring from the partition the configuration names (`doorbell`).
            spis.extend(
                config
                    .doorbells
                    .iter()
                    .filter(|d| d.to == index)
                    .map(|d| d.intid),
            );
            let vgic = VgicState::new(p.vmpidrs, &spis);
            // Its devices' SPIs and each vCPU's EL1 timers are forwarded
            // from hardware (their pending and active states are the
            // physical GIC's); the SPIs' triggers are the board's, which the
            // virtual ICFGR shows.
            for d in p.devices {
                for spi in d.interrupts.iter().filter_map(|&i| vgic.spi(i)) {
                    spi.forwarded.store(true, Ordering::Relaxed);
                    spi.edge.store(d.edge, Ordering::Relaxed);
                }
            }
            for private in &vgic.private[..p.cpus.len()] {
                private
                    .forwarded
                    .store(crate::vgic::state::FORWARDED_PPIS, Ordering::Relaxed);
            }
            partitions.push(Partition {
                config: p,
                state: PartitionState::new(),
                output: spin::Mutex::new(
                    output::Output::new().ok_or(BuildError::NoMemory { partition: p.name })?,
                ),
                pl011: spin::Mutex::new(Port::new()),
                vgic,
                vgic_lock: spin::Mutex::new(()),
                affinity: AffinityMap::new(p.vmpidrs),
                control,
                control_at: page,
                load: Load::new(),
                defer_stats: [const { [const { AtomicU64::new(0) }; 3] }; MAX_VCPUS],
                unbacked_reported: core::sync::atomic::AtomicBool::new(false),
                cntvoff: arch::physical_counter(),
                stage2_root: s2.root(),
                // VMID 0 is left unused, so a stale TLB entry of "no guest" never matches.
                vmid: index as u16 + 1,
            });
        }
        // Shared regions start zeroed, once, before any partition runs. A
        // partition's restart reloads only its own memory (`load_chunk`):
        // what the other side wrote survives it.
        for r in config.shared {
            // SAFETY: board RAM clear of the hypervisor's and of every
            // partition's memory (the configuration check), mapped Normal at
            // EL2 by identity; no partition runs yet.
            unsafe { arch::zero(r.phys.0, r.size) };
            arch::clean_data(r.phys.0, r.size);
        }
        for (p, part) in partitions.iter().enumerate() {
            super::doorbell::route_incoming(config.doorbells, p, part);
        }
        Ok(Runtime {
            doorbells: config.doorbells,
            running: AtomicUsize::new(partitions.len()),
            partitions,
            board: &config.board,
        })
    }

    pub fn board(&self) -> &'static BoardConfig {
        self.board
    }

    /// MPIDR of physical CPU `cpu`.
    pub fn mpidr_of(&self, cpu: usize) -> u64 {
        self.board.cpus[cpu].mpidr
    }

    /// The (partition, vCPU) that physical CPU `cpu` runs, if any.
    pub fn vcpu_on_cpu(&self, cpu: usize) -> Option<(usize, usize)> {
        self.partitions.iter().enumerate().find_map(|(p, part)| {
            part.config
                .cpus
                .iter()
                .position(|&c| c == cpu)
                .map(|v| (p, v))
        })
    }
}

/// ", N KiB initrd at IPA", or nothing without one.
struct InitrdSize(Option<crate::config::Blob>);

impl fmt::Display for InitrdSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(initrd) => write!(
                f,
                ", {} KiB initrd at {}",
                initrd.bytes.len() / 1024,
                initrd.ipa
            ),
            None => Ok(()),
        }
    }
}

/// CPU indices, comma-separated.
struct CpuList(&'static [usize]);

impl fmt::Display for CpuList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, cpu) in self.0.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{cpu}")?;
        }
        Ok(())
    }
}
