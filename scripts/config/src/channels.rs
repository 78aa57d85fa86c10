//! Channels between partitions: shared memory regions (`[[shared]]`) and
//! doorbells (`[[doorbell]]`), checked against the partitions they name.
//!
//! Nothing is shared that the partition set does not name: a region is
//! mapped into the partitions its `map` lists, at the IPA and with the
//! rights given there, and into no other; a doorbell lets only its `from`
//! partition interrupt only its `to` partition's vCPU, with only its
//! `intid`.
//!
//! The checks run in steps, because each needs what an earlier one made:
//! - [`declare`], before the partitions: names, sizes and alignment, the
//!   partitions each region is mapped into exist, none maps a region twice
//!   (or both read-only and writable). Each partition's mappings then join
//!   its IPA map, checked with the rest of it (`check::check_ipa_map`).
//! - [`doorbells`], after the partitions: the partitions exist and differ,
//!   the vCPU exists, the INTID is a free SPI of the target, the ringing
//!   partition has a doorbell page; each gets its channel number.
//! - [`check_phys`], then [`place`] once the hypervisor's RAM is sized: a
//!   region's machine address is in board RAM and clear of every
//!   partition's memory, the hypervisor, the firmware's spin table and the
//!   other regions (the board check keeps RAM clear of devices); a region
//!   without `phys` goes to the highest free RAM that holds it.
//!
//! The channel number a partition writes to its doorbell page is the
//! doorbell's index among the doorbells that partition rings, in file order
//! (0, 1, ...): unique per ringing partition by construction.

use crate::check::{BOARD_NAME_MAX, Board, Ctx, PAGE, PL011_INTID, Partition, Range};
use crate::error::{ConfigError, ErrorKind};
use crate::model::{Access, PartitionSetFile};

pub use bulkhead_abi::limits::MAX_PARTITION_SPIS;

/// A region larger than this is aligned to it when the build places it, so
/// stage 2 can map it with 2 MiB blocks.
const PLACEMENT_BLOCK: u64 = 2 << 20;

/// A checked `[[shared]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedRegion {
    /// Its name.
    pub name: String,
    /// Where it is in the machine; `None` until [`place`] chooses.
    pub phys: Option<u64>,
    /// Length in bytes, a whole number of pages.
    pub size: u64,
    /// Who maps it, in file order.
    pub maps: Vec<SharedMap>,
}

/// One partition's view of a [`SharedRegion`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedMap {
    /// The partition's index in the set.
    pub partition: usize,
    /// Where it sees the region.
    pub ipa: u64,
    /// It may write (else read only).
    pub writable: bool,
}

/// A shared region as one partition sees it (in [`Partition::shared`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedMapping {
    /// The region's index in [`crate::check::Checked::shared`].
    pub region: usize,
    /// The region's name.
    pub name: String,
    /// Where the partition sees it.
    pub ipa: u64,
    /// Where it is in the machine; `None` until [`place`] chooses.
    pub phys: Option<u64>,
    /// Length in bytes.
    pub size: u64,
    /// The partition may write (else read only).
    pub writable: bool,
}

/// A checked `[[doorbell]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doorbell {
    /// Its name.
    pub name: String,
    /// The ringing partition's index.
    pub from: usize,
    /// The target partition's index.
    pub to: usize,
    /// The target's vCPU that takes the interrupt.
    pub vcpu: usize,
    /// The virtual SPI the target takes.
    pub intid: u32,
    /// What `from` writes to its doorbell page to ring it: the doorbell's
    /// index among those `from` rings, in file order.
    pub channel: u32,
}

/// A doorbell as one of its two partitions sees it (in
/// [`Partition::rings`] and [`Partition::receives`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoorbellEnd {
    /// The doorbell's name.
    pub name: String,
    /// Its channel number in the ringing partition.
    pub channel: u32,
    /// The other partition's name.
    pub peer: String,
    /// The target's vCPU.
    pub vcpu: usize,
    /// The target's virtual SPI.
    pub intid: u32,
}

/// Where an error in the set's top-level tables is reported: no partition,
/// or the one a mapping or doorbell concerns.
fn at<'a>(file: &'a str, partition: Option<&'a str>) -> Ctx<'a> {
    Ctx { file, partition }
}

/// A region's or doorbell's name: the naming rule, and not `taken` by an
/// earlier one of its kind (`what`).
fn unique_name(
    ctx: &Ctx<'_>,
    field: &str,
    name: &str,
    taken: bool,
    what: &'static str,
) -> Result<(), ConfigError> {
    ctx.name(field, name, BOARD_NAME_MAX)?;
    if taken {
        let name = name.to_owned();
        return Err(ctx.err(field, ErrorKind::NameTwice { name, what }));
    }
    Ok(())
}

/// Checks the `[[shared]]` tables on their own and against the partition
/// names: the regions, with no machine address chosen yet.
pub fn declare(set: &PartitionSetFile, file: &str) -> Result<Vec<SharedRegion>, ConfigError> {
    let ctx = at(file, None);
    let index_of = |name: &str| set.partition.iter().position(|p| p.name == name);
    let mut regions: Vec<SharedRegion> = Vec::new();
    for (i, s) in set.shared.iter().enumerate() {
        let field = |key: &str| format!("shared[{i}].{key}");
        let taken = regions.iter().any(|r| r.name == s.name);
        unique_name(&ctx, &field("name"), &s.name, taken, "shared region")?;
        let base = s.phys.unwrap_or(0);
        ctx.range(&field("phys"), base, &field("size"), s.size)?;
        if s.map.is_empty() {
            return Err(ctx.err(field("map"), ErrorKind::NotMapped));
        }
        let mut maps: Vec<SharedMap> = Vec::new();
        for (j, m) in s.map.iter().enumerate() {
            let field = |key: &str| format!("shared[{i}].map[{j}].{key}");
            let Some(partition) = index_of(&m.partition) else {
                let name = m.partition.clone();
                return Err(ctx.err(field("partition"), ErrorKind::UnknownPartition { name }));
            };
            let pctx = at(file, Some(&m.partition));
            pctx.range(&field("ipa"), m.ipa, &format!("shared[{i}].size"), s.size)?;
            let writable = m.access == Access::Rw;
            if let Some(k) = maps.iter().position(|e| e.partition == partition) {
                let region = s.name.clone();
                let (key, kind) = if maps[k].writable == writable {
                    ("partition", ErrorKind::MappedTwice { region, first: k })
                } else {
                    ("access", ErrorKind::AccessConflict { region, first: k })
                };
                return Err(pctx.err(field(key), kind));
            }
            maps.push(SharedMap {
                partition,
                ipa: m.ipa,
                writable,
            });
        }
        regions.push(SharedRegion {
            name: s.name.clone(),
            phys: s.phys,
            size: s.size,
            maps,
        });
    }
    Ok(regions)
}

/// The IPA windows partition `index` maps shared regions at, for its IPA
/// map check: (what a message calls it, the field to blame, the range).
pub fn windows_of(regions: &[SharedRegion], index: usize) -> Vec<(String, String, Range)> {
    let mut windows = Vec::new();
    for (i, r) in regions.iter().enumerate() {
        for (j, m) in r.maps.iter().enumerate() {
            if m.partition == index {
                windows.push((
                    format!("shared region \"{}\" (shared[{i}].map[{j}])", r.name),
                    format!("shared[{i}].map[{j}].ipa"),
                    // Checked by `declare`: the range does not wrap.
                    Range {
                        base: m.ipa,
                        size: r.size,
                    },
                ));
            }
        }
    }
    windows
}

/// Checks the `[[doorbell]]` tables against the checked partitions and
/// numbers each doorbell's channel.
pub fn doorbells(
    set: &PartitionSetFile,
    file: &str,
    partitions: &[Partition],
) -> Result<Vec<Doorbell>, ConfigError> {
    let ctx = at(file, None);
    let index_of = |field: String, name: &str| {
        partitions
            .iter()
            .position(|p| p.name == name)
            .ok_or_else(|| {
                let name = name.to_owned();
                ctx.err(field, ErrorKind::UnknownPartition { name })
            })
    };
    let mut doorbells: Vec<Doorbell> = Vec::new();
    for (i, d) in set.doorbell.iter().enumerate() {
        let field = |key: &str| format!("doorbell[{i}].{key}");
        let taken = doorbells.iter().any(|e| e.name == d.name);
        unique_name(&ctx, &field("name"), &d.name, taken, "doorbell")?;
        let from = index_of(field("from"), &d.from)?;
        let to = index_of(field("to"), &d.to)?;
        let ringer = at(file, Some(&d.from));
        if from == to {
            return Err(ringer.err(field("to"), ErrorKind::DoorbellToItself));
        }
        if set.partition[from].doorbell_page.is_none() {
            let doorbell = d.name.clone();
            return Err(ringer.err("doorbell_page", ErrorKind::NoDoorbellPage { doorbell }));
        }
        let target = &partitions[to];
        let tctx = at(file, Some(&target.name));
        let vcpus = target.cpus.len();
        if d.vcpu >= vcpus {
            let vcpu = d.vcpu;
            return Err(tctx.err(field("vcpu"), ErrorKind::NoSuchVcpu { vcpu, vcpus }));
        }
        let intid = d.intid;
        // An SPI: the timers' and the maintenance interrupt's PPIs and
        // the SGIs are never free.
        if !(32..1020).contains(&intid) {
            return Err(tctx.err(field("intid"), ErrorKind::NotSpi { intid }));
        }
        let owner = if let Some(dev) = target
            .devices
            .iter()
            .find(|x| x.interrupts.contains(&intid))
        {
            Some(format!("device \"{}\" of this partition", dev.name))
        } else if target.console_pl011.is_some() && intid == PL011_INTID {
            Some("the partition's emulated PL011 (console_pl011)".to_owned())
        } else {
            doorbells
                .iter()
                .find(|e| e.to == to && e.intid == intid)
                .map(|e| format!("doorbell \"{}\"", e.name))
        };
        if let Some(owner) = owner {
            return Err(tctx.err(field("intid"), ErrorKind::InterruptTwice { intid, owner }));
        }
        let spis = target
            .devices
            .iter()
            .map(|x| x.interrupts.len())
            .sum::<usize>()
            + usize::from(target.console_pl011.is_some())
            + doorbells.iter().filter(|e| e.to == to).count()
            + 1;
        if spis > MAX_PARTITION_SPIS {
            let kind = ErrorKind::TooManyInterrupts {
                count: spis,
                max: MAX_PARTITION_SPIS,
            };
            return Err(tctx.err(field("intid"), kind));
        }
        let channel = doorbells.iter().filter(|e| e.from == from).count() as u32;
        doorbells.push(Doorbell {
            name: d.name.clone(),
            from,
            to,
            vcpu: d.vcpu,
            intid,
            channel,
        });
    }
    Ok(doorbells)
}

/// Gives each partition its ends of the channels: the shared regions it
/// maps, the doorbells it rings and receives.
pub fn attach(partitions: &mut [Partition], regions: &[SharedRegion], doorbells: &[Doorbell]) {
    for (i, r) in regions.iter().enumerate() {
        for m in &r.maps {
            partitions[m.partition].shared.push(SharedMapping {
                region: i,
                name: r.name.clone(),
                ipa: m.ipa,
                phys: r.phys,
                size: r.size,
                writable: m.writable,
            });
        }
    }
    for d in doorbells {
        let end = |peer: usize| DoorbellEnd {
            name: d.name.clone(),
            channel: d.channel,
            peer: partitions[peer].name.clone(),
            vcpu: d.vcpu,
            intid: d.intid,
        };
        let (ring, receive) = (end(d.to), end(d.from));
        partitions[d.from].rings.push(ring);
        partitions[d.to].receives.push(receive);
    }
}

/// Checks the machine addresses the set gives: inside one board RAM range
/// (so clear of every device: the board check keeps them out of RAM),
/// clear of every partition's memory and of the regions before.
pub fn check_phys(
    set: &PartitionSetFile,
    file: &str,
    board: &Board,
    regions: &[SharedRegion],
) -> Result<(), ConfigError> {
    let ctx = at(file, None);
    for (i, r) in regions.iter().enumerate() {
        let Some(base) = r.phys else { continue };
        let field = format!("shared[{i}].phys");
        // Checked by `declare`: the range does not wrap.
        let range = Range { base, size: r.size };
        if !board.ram.iter().any(|ram| ram.encloses(&range)) {
            return Err(ctx.err(field, ErrorKind::OutsideRam { range }));
        }
        let memory = set.partition.iter().flat_map(|p| {
            p.memory.iter().enumerate().map(move |(j, m)| {
                let other = format!("partition \"{}\" memory[{j}]", p.name);
                (other, Range::new(m.phys, m.size))
            })
        });
        let earlier = regions[..i].iter().enumerate().filter_map(|(k, e)| {
            let other = format!("shared region \"{}\" (shared[{k}])", e.name);
            e.phys.map(|base| (other, Range::new(base, e.size)))
        });
        for (other, other_range) in memory.chain(earlier) {
            let Some(other_range) = other_range.filter(|o| o.overlaps(&range)) else {
                continue;
            };
            let kind = ErrorKind::Overlap {
                range,
                other,
                other_range,
            };
            return Err(ctx.err(field, kind));
        }
    }
    Ok(())
}

/// Places each region without `phys` in the highest board RAM that holds
/// it clear of `taken` (the partitions' memory, the hypervisor's RAM, the
/// spin tables) and of every region placed or given before it, aligned to
/// 2 MiB when it is at least that large (else to a page). Deterministic:
/// the same set always gets the same addresses, and the hypervisor (at the
/// bottom of its range, sized per set) growing never moves them.
pub fn place(
    file: &str,
    board: &Board,
    taken: &[Range],
    regions: &mut [SharedRegion],
) -> Result<(), ConfigError> {
    let mut taken: Vec<Range> = taken.to_vec();
    taken.extend(regions.iter().filter_map(|r| Range::new(r.phys?, r.size)));
    for (i, r) in regions.iter_mut().enumerate() {
        if r.phys.is_some() {
            continue;
        }
        let align = if r.size >= PLACEMENT_BLOCK {
            PLACEMENT_BLOCK
        } else {
            PAGE
        };
        let base = board
            .ram
            .iter()
            .rev()
            .find_map(|ram| highest_fit(ram, r.size, align, &taken))
            .ok_or_else(|| {
                let size = r.size;
                at(file, None).err(
                    format!("shared[{i}].size"),
                    ErrorKind::NoRoomForShared { size },
                )
            })?;
        r.phys = Some(base);
        taken.push(Range { base, size: r.size });
    }
    Ok(())
}

/// The highest `align`ed base in `ram` of `size` bytes clear of `taken`.
fn highest_fit(ram: &Range, size: u64, align: u64, taken: &[Range]) -> Option<u64> {
    let mut top = ram.end();
    loop {
        let base = top.checked_sub(size)? / align * align;
        if base < ram.base {
            return None;
        }
        let candidate = Range { base, size };
        match taken
            .iter()
            .filter(|t| t.overlaps(&candidate))
            .map(|t| t.base)
            .min()
        {
            None => return Some(base),
            // Try below the lowest obstacle.
            Some(below) => top = below,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::highest_fit;
    use crate::check::Range;

    fn r(base: u64, size: u64) -> Range {
        Range { base, size }
    }

    #[test]
    fn placement_takes_the_highest_aligned_gap_that_holds_the_region() {
        let ram = r(0x4000_0000, 0x4000_0000);
        assert_eq!(highest_fit(&ram, 0x1000, 0x1000, &[]), Some(0x7fff_f000));
        let top = [r(0x7fff_0000, 0x1_0000)];
        assert_eq!(highest_fit(&ram, 0x1000, 0x1000, &top), Some(0x7ffe_f000));
        // Aligned down below the obstacle.
        let odd = [r(0x7fff_f800, 0x800)];
        assert_eq!(
            highest_fit(&ram, 0x20_0000, 0x20_0000, &odd),
            Some(0x7fc0_0000)
        );
        // A gap too small is passed over for the next one down.
        let gap = [r(0x7000_2000, 0xfff_e000), r(0x6000_0000, 0x1000_0000)];
        assert_eq!(highest_fit(&ram, 0x1000, 0x1000, &gap), Some(0x7000_1000));
        assert_eq!(highest_fit(&ram, 0x3000, 0x1000, &gap), Some(0x5fff_d000));
        // No room at all.
        assert_eq!(highest_fit(&ram, 0x1000, 0x1000, &[ram]), None);
        assert_eq!(highest_fit(&ram, 0x8000_0000, 0x1000, &[]), None);
    }
}
