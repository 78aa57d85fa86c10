//! A picture of a checked partition set: where everything is in the
//! machine, which CPU runs which vCPU, and what each partition sees at
//! which guest address. [`text`] writes it as a plain-text table, [`svg`]
//! as an image; both come from one model built from [`Checked`], the same
//! value the build generates the hypervisor's tables from, so the picture
//! cannot drift from what boots.
//!
//! Only configuration goes in (no image sizes, no time stamps), and every
//! list is walked in a fixed order, so the output is byte-for-byte the same
//! for the same configuration. One range depends on sizes: the hypervisor's
//! RAM, when the build sizes it for the set ([`crate::budget`]); it is a
//! whole number of 2 MiB, so it moves only when the embedded guests cross
//! one.
//!
//! Addresses are hex with `_` every four digits and at least eight digits
//! (`0x0800_0000`); a range runs from its start up to, not including, its
//! end; sizes are in B, KiB, MiB, GiB or TiB.

use std::fmt::Write as _;

use bulkhead_abi::board::GicConfig;

use crate::check::{self, Checked, Device, GicWindows, Partition, Range};
use crate::codegen;

// ---- the model ----------------------------------------------------------------

/// Who a range belongs to; decides its colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    /// The hypervisor's own, or something it emulates or provides.
    Hypervisor,
    /// Partition n (index in file order).
    Partition(usize),
    /// A board device no partition takes.
    Unassigned,
    /// RAM nobody uses.
    Free,
    /// A region partitions share (`[[shared]]`).
    Shared,
}

/// One range of a map.
#[derive(Clone, Debug)]
struct Row {
    range: Range,
    /// What it is, as the first words of its label.
    what: String,
    owner: Owner,
    /// Further facts (owner, interrupts, where it is mapped).
    details: Vec<String>,
    /// Ranges that tile this one, in address order (a RAM range's parts).
    parts: Vec<Row>,
    /// A range inside this one that ends where it ends (a device-tree area).
    tail: Option<Box<Row>>,
}

impl Row {
    fn new(range: Range, what: impl Into<String>, owner: Owner, details: Vec<String>) -> Row {
        Row {
            range,
            what: what.into(),
            owner,
            details,
            parts: Vec::new(),
            tail: None,
        }
    }
}

/// A board CPU and what runs on it.
#[derive(Clone, Debug)]
struct Cpu {
    index: usize,
    mpidr: u64,
    /// (partition index, vCPU) running on it.
    runs: Option<(usize, usize)>,
}

/// One partition's guest-physical view.
#[derive(Clone, Debug)]
struct View {
    name: String,
    /// Board CPU index of each vCPU.
    cpus: Vec<usize>,
    entry: u64,
    /// By IPA.
    rows: Vec<Row>,
}

/// Everything both renderings show.
#[derive(Clone, Debug)]
struct Map {
    source: String,
    board: String,
    board_source: String,
    mpidrs: Vec<u64>,
    physical: Vec<Row>,
    cpus: Vec<Cpu>,
    views: Vec<View>,
    /// The set shares memory between partitions.
    shared: bool,
}

/// `0x0800_0000`: hex, at least eight digits, `_` every four.
fn addr(value: u64) -> String {
    if value >> 32 == 0 {
        format!("0x{:04x}_{:04x}", value >> 16, value & 0xffff)
    } else {
        codegen::hex(value)
    }
}

/// `64 KiB`: the largest unit that divides the size exactly.
fn size(bytes: u64) -> String {
    const UNITS: [(u32, &str); 4] = [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")];
    for (shift, unit) in UNITS {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{} {unit}", bytes >> shift);
        }
    }
    format!("{bytes} B")
}

fn interrupts(intids: &[u32]) -> String {
    let list: Vec<String> = intids.iter().map(u32::to_string).collect();
    match list.len() {
        0 => "no interrupts".to_owned(),
        1 => format!("INTID {}", list[0]),
        _ => format!("INTIDs {}", list.join(", ")),
    }
}

fn device_what(d: &Device) -> String {
    match d.compatible.first() {
        Some(compatible) => format!("device {} ({compatible})", d.name),
        None => format!("device {}", d.name),
    }
}

/// The board GIC's physical windows, all the hypervisor's.
fn gic_rows(gic: &GicConfig, cpus: usize) -> Vec<Row> {
    let version = gic.version();
    let maintenance = gic.maintenance_intid();
    gic.board_windows(cpus)
        .into_iter()
        .enumerate()
        .map(|(k, (key, base, size))| {
            let what = match key {
                "distributor" => "GIC distributor",
                "redistributor" => "GIC redistributors",
                "cpu_interface" => "GIC CPU interface",
                "hyp_interface" => "GIC hyp interface",
                _ => "GIC virtual CPU interface",
            };
            let range = Range { base, size };
            let mut details = vec!["hypervisor".to_owned()];
            // board_windows lists the distributor first.
            if k == 0 {
                details.push(format!("maintenance INTID {maintenance}"));
            }
            Row::new(
                range,
                format!("{what} (GICv{version})"),
                Owner::Hypervisor,
                details,
            )
        })
        .collect()
}

/// The partition's device-tree area as (IPA, physical) ranges.
fn device_tree_area(p: &Partition) -> Option<(Range, Range)> {
    let blob = p.device_tree.as_ref()?;
    let region = p.memory.iter().find(|m| m.ipa_range().contains(blob.ipa))?;
    let ipa = Range {
        base: blob.ipa,
        size: check::DEVICE_TREE_AREA,
    };
    let phys = Range {
        base: region.phys + (blob.ipa - region.ipa),
        size: check::DEVICE_TREE_AREA,
    };
    Some((ipa, phys))
}

/// What a memory region (IPA range `ipa`) holds besides the guest's own
/// use, as details of its row: the initrd, and the device tree when it is
/// not the region's tail (`device_tree_at` placed it elsewhere).
fn loaded_details(p: &Partition, ipa: Range) -> Vec<String> {
    let mut details = Vec::new();
    if let Some(initrd) = p.initrd.as_ref().filter(|b| ipa.contains(b.ipa)) {
        details.push(format!("initrd at IPA {}", addr(initrd.ipa)));
    }
    if let Some((dt, _)) =
        device_tree_area(p).filter(|(dt, _)| ipa.encloses(dt) && dt.end() != ipa.end())
    {
        details.push(format!("device tree at IPA {}", addr(dt.base)));
    }
    details
}

/// The device-tree area of `p` if it is the tail of the region at IPA
/// range `ipa` (it ends where the region does, as by default).
fn device_tree_tail(p: &Partition, ipa: Range) -> Option<(Range, Range)> {
    device_tree_area(p).filter(|(dt, _)| ipa.encloses(dt) && dt.end() == ipa.end())
}

/// `rows` in address order, with the gaps of `whole` between them as free RAM.
fn tile(whole: Range, mut rows: Vec<Row>) -> Vec<Row> {
    rows.sort_by_key(|r| r.range.base);
    let mut out = Vec::new();
    let mut at = whole.base;
    for row in rows {
        if row.range.base > at {
            out.push(free(at, row.range.base));
        }
        at = row.range.end();
        out.push(row);
    }
    if whole.end() > at {
        out.push(free(at, whole.end()));
    }
    out
}

fn free(base: u64, end: u64) -> Row {
    let range = Range {
        base,
        size: end - base,
    };
    Row::new(range, "free RAM", Owner::Free, Vec::new())
}

fn physical(checked: &Checked) -> Vec<Row> {
    let board = &checked.board;
    let mut rows = gic_rows(&board.gic, board.cpus.len());
    rows.push(Row::new(
        board.uart,
        "UART (PL011)",
        Owner::Hypervisor,
        vec!["hypervisor console".to_owned()],
    ));
    for d in &board.devices {
        let owner = checked
            .partitions
            .iter()
            .position(|p| p.devices.iter().any(|pd| pd.name == d.name));
        let (owner, name) = match owner {
            Some(i) => (Owner::Partition(i), checked.partitions[i].name.clone()),
            None => (Owner::Unassigned, "unassigned".to_owned()),
        };
        let details = vec![name, interrupts(&d.interrupts)];
        rows.push(Row::new(d.range, device_what(d), owner, details));
    }
    for &ram in &board.ram {
        let mut inside = Vec::new();
        if ram.encloses(&checked.hypervisor) {
            let mut details = vec!["image, heap (control pages), page tables, stacks".to_owned()];
            if board.hypervisor.size.is_none() {
                details.push("sized for this set".to_owned());
            }
            inside.push(Row::new(
                checked.hypervisor,
                "hypervisor",
                Owner::Hypervisor,
                details,
            ));
        }
        for (i, p) in checked.partitions.iter().enumerate() {
            for m in &p.memory {
                let phys = Range {
                    base: m.phys,
                    size: m.size,
                };
                if !ram.encloses(&phys) {
                    continue;
                }
                let mut details = vec![format!("at IPA {}", addr(m.ipa))];
                details.extend(loaded_details(p, m.ipa_range()));
                let mut row = Row::new(
                    phys,
                    format!("{} memory", p.name),
                    Owner::Partition(i),
                    details,
                );
                if let Some((ipa, dt)) = device_tree_tail(p, m.ipa_range()) {
                    let details = vec![format!("at IPA {}", addr(ipa.base))];
                    let what = format!("{} device tree", p.name);
                    row.tail = Some(Box::new(Row::new(dt, what, Owner::Partition(i), details)));
                }
                inside.push(row);
            }
        }
        for r in &checked.shared {
            let Some(base) = r.phys else { continue };
            let phys = Range { base, size: r.size };
            if !ram.encloses(&phys) {
                continue;
            }
            let details = r
                .maps
                .iter()
                .map(|m| {
                    let access = if m.writable { "rw" } else { "read-only" };
                    let name = &checked.partitions[m.partition].name;
                    format!("{name} at IPA {} {access}", addr(m.ipa))
                })
                .collect();
            inside.push(Row::new(
                phys,
                format!("shared {}", r.name),
                Owner::Shared,
                details,
            ));
        }
        let mut row = Row::new(ram, "RAM", Owner::Free, Vec::new());
        row.parts = tile(ram, inside);
        rows.push(row);
    }
    rows.sort_by_key(|r| r.range.base);
    rows
}

fn view(checked: &Checked, i: usize, p: &Partition) -> View {
    let board = &checked.board;
    let virtual_ = || vec!["virtual (hypervisor)".to_owned()];
    let mut rows: Vec<Row> = board
        .gic
        .guest_windows(p.cpus.len())
        .into_iter()
        .map(|(what, range)| {
            let what = what.strip_prefix("the ").unwrap_or(what);
            Row::new(range, what, Owner::Hypervisor, virtual_())
        })
        .collect();
    if let Some(base) = p.console_pl011 {
        let range = Range {
            base,
            size: check::PAGE,
        };
        let details = vec![
            "emulated (hypervisor)".to_owned(),
            interrupts(&[check::PL011_INTID]),
        ];
        rows.push(Row::new(range, "PL011 console", Owner::Hypervisor, details));
    }
    for d in &p.devices {
        let details = vec!["passthrough".to_owned(), interrupts(&d.interrupts)];
        rows.push(Row::new(
            d.range,
            device_what(d),
            Owner::Partition(i),
            details,
        ));
    }
    for m in &p.memory {
        let mut details = vec![format!("phys {}", addr(m.phys))];
        details.extend(loaded_details(p, m.ipa_range()));
        let mut row = Row::new(m.ipa_range(), "memory", Owner::Partition(i), details);
        if let Some((ipa, dt)) = device_tree_tail(p, m.ipa_range()) {
            let details = vec![format!("phys {}", addr(dt.base))];
            row.tail = Some(Box::new(Row::new(
                ipa,
                "device tree",
                Owner::Partition(i),
                details,
            )));
        }
        rows.push(row);
    }
    let control = Range {
        base: p.control_page,
        size: check::PAGE,
    };
    let details = vec![
        "hypervisor heap".to_owned(),
        "phys chosen at boot".to_owned(),
    ];
    rows.push(Row::new(
        control,
        "control page",
        Owner::Hypervisor,
        details,
    ));
    for m in &p.shared {
        let access = if m.writable { "rw" } else { "read-only" };
        let others: Vec<&str> = checked.shared[m.region]
            .maps
            .iter()
            .filter(|o| o.partition != i)
            .map(|o| checked.partitions[o.partition].name.as_str())
            .collect();
        let mut details = vec![access.to_owned()];
        if let Some(phys) = m.phys {
            details.push(format!("phys {}", addr(phys)));
        }
        if !others.is_empty() {
            details.push(format!("with {}", others.join(", ")));
        }
        let range = Range {
            base: m.ipa,
            size: m.size,
        };
        rows.push(Row::new(
            range,
            format!("shared {}", m.name),
            Owner::Shared,
            details,
        ));
    }
    if let Some(base) = p.doorbell_page {
        let range = Range {
            base,
            size: check::PAGE,
        };
        let rings: Vec<String> = checked
            .doorbells
            .iter()
            .filter(|d| d.from == i)
            .map(|d| format!("channel {}: {}", d.channel, d.name))
            .collect();
        let mut details = vec!["emulated (hypervisor)".to_owned()];
        details.extend(rings);
        rows.push(Row::new(range, "doorbell page", Owner::Hypervisor, details));
    }
    rows.sort_by_key(|r| r.range.base);
    View {
        name: p.name.clone(),
        cpus: p.cpus.clone(),
        entry: p.entry,
        rows,
    }
}

fn model(checked: &Checked) -> Map {
    let board = &checked.board;
    let cpus = board
        .cpus
        .iter()
        .enumerate()
        .map(|(index, &mpidr)| Cpu {
            index,
            mpidr,
            runs: checked.partitions.iter().enumerate().find_map(|(i, p)| {
                let vcpu = p.cpus.iter().position(|&c| c == index)?;
                Some((i, vcpu))
            }),
        })
        .collect();
    Map {
        source: checked.source.clone(),
        board: board.name.clone(),
        board_source: checked.board_source.clone(),
        mpidrs: board.cpus.clone(),
        physical: physical(checked),
        cpus,
        views: checked
            .partitions
            .iter()
            .enumerate()
            .map(|(i, p)| view(checked, i, p))
            .collect(),
        shared: !checked.shared.is_empty(),
    }
}

impl Map {
    fn title(&self) -> String {
        format!(
            "Partition set {} on board {} ({})",
            self.source, self.board, self.board_source
        )
    }

    fn cpu_line(&self, cpu: &Cpu) -> String {
        let runs = match cpu.runs {
            Some((i, vcpu)) => format!("{} vCPU {vcpu}", self.views[i].name),
            None => "unassigned".to_owned(),
        };
        format!("CPU {} (MPIDR {:#x}): {runs}", cpu.index, cpu.mpidr)
    }

    fn vcpu_line(&self, vcpu: usize, cpu: usize) -> String {
        let mpidr = self.mpidrs.get(cpu).copied().unwrap_or_default();
        format!("vCPU {vcpu} on CPU {cpu} (MPIDR {mpidr:#x})")
    }
}

/// How the reader is told to read addresses, in both renderings.
const ADDRESS_NOTE: &str = "Addresses in hex; a range runs from start up to, not including, end.";

// ---- text ---------------------------------------------------------------------

/// Widest line the table aims for; a longer description wraps.
const TEXT_WIDTH: usize = 100;

/// The map as a plain-text table: the physical memory map, the CPUs, then
/// each partition's guest-physical view; one line per range (start, end,
/// size, what), nested ranges indented.
pub fn text(checked: &Checked) -> String {
    let map = model(checked);
    let mut all = Vec::new();
    let rows = map
        .physical
        .iter()
        .chain(map.views.iter().flat_map(|v| &v.rows));
    for row in rows {
        collect(row, &mut all);
    }
    let addr_w = all
        .iter()
        .map(|r| addr(r.range.end()).len())
        .max()
        .unwrap_or(11);
    let size_w = all
        .iter()
        .map(|r| size(r.range.size).len())
        .max()
        .unwrap_or(6);
    let table = Table { addr_w, size_w };

    let mut out = String::new();
    let _ = writeln!(out, "{}", map.title());
    let _ = writeln!(out, "{ADDRESS_NOTE}");
    let _ = writeln!(out, "\nPhysical memory map");
    table.header(&mut out);
    for row in &map.physical {
        table.row(&mut out, row, 0);
    }
    let _ = writeln!(out, "\nCPUs");
    for cpu in &map.cpus {
        let _ = writeln!(out, "  {}", map.cpu_line(cpu));
    }
    for view in &map.views {
        let _ = writeln!(out, "\nPartition {}: guest-physical (IPA) map", view.name);
        for (vcpu, &cpu) in view.cpus.iter().enumerate() {
            let _ = writeln!(out, "  {}", map.vcpu_line(vcpu, cpu));
        }
        let _ = writeln!(out, "  entry {}", addr(view.entry));
        table.header(&mut out);
        for row in &view.rows {
            table.row(&mut out, row, 0);
        }
    }
    out
}

fn collect<'a>(row: &'a Row, all: &mut Vec<&'a Row>) {
    all.push(row);
    for part in &row.parts {
        collect(part, all);
    }
    if let Some(tail) = &row.tail {
        collect(tail, all);
    }
}

struct Table {
    addr_w: usize,
    size_w: usize,
}

impl Table {
    fn header(&self, out: &mut String) {
        let (a, s) = (self.addr_w, self.size_w);
        let _ = writeln!(
            out,
            "  {:<a$}  {:<a$}  {:<s$}  what",
            "start", "end", "size"
        );
    }

    fn row(&self, out: &mut String, row: &Row, depth: usize) {
        let (a, s) = (self.addr_w, self.size_w);
        let start = addr(row.range.base);
        let end = addr(row.range.end());
        let lead = format!("  {start:>a$}  {end:>a$}  {:<s$}  ", size(row.range.size));
        let indent = " ".repeat(2 * depth);
        let mut what = row.what.clone();
        if !row.details.is_empty() {
            what = format!("{what}: {}", row.details.join("; "));
        }
        let width = TEXT_WIDTH.saturating_sub(lead.len() + indent.len()).max(30);
        for (k, line) in wrap(&what, width).iter().enumerate() {
            if k == 0 {
                let _ = writeln!(out, "{lead}{indent}{line}");
            } else {
                let _ = writeln!(out, "{:w$}{indent}  {line}", "", w = lead.len());
            }
        }
        for part in &row.parts {
            self.row(out, part, depth + 1);
        }
        if let Some(tail) = &row.tail {
            self.row(out, tail, depth + 1);
        }
    }
}

/// `text` in lines of at most `width` characters, broken at spaces (a
/// longer word stands alone on its line).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
}

// ---- SVG ----------------------------------------------------------------------

/// Sans-serif text.
const SANS: &str = "DejaVu Sans, Verdana, Helvetica, Arial, sans-serif";
/// Addresses.
const MONO: &str = "DejaVu Sans Mono, Menlo, Consolas, Liberation Mono, monospace";
/// Partition colours, by partition index (Okabe–Ito, black left out);
/// an eighth partition takes the first again.
const PALETTE: [&str; 7] = [
    "#E69F00", // orange
    "#56B4E9", // sky blue
    "#009E73", // bluish green
    "#D55E00", // vermillion
    "#0072B2", // blue
    "#CC79A7", // reddish purple
    "#F0E442", // yellow
];
const HYPERVISOR_FILL: &str = "#c9c9c9";
const HYPERVISOR_STROKE: &str = "#6b6b6b";
const UNASSIGNED_FILL: &str = "#f0f0f0";
const GREY_STROKE: &str = "#9a9a9a";
/// Shared regions: one colour whoever maps them, dashed.
const SHARED_STROKE: &str = "#8a6d00";
const BAND_FILL: &str = "#f4f4f4";
const INK: &str = "#1a1a1a";
const FAINT: &str = "#555555";

/// Page margin.
const MARGIN: i64 = 20;
/// Between columns.
const COLUMN_GAP: i64 = 40;
/// Height of one label line inside a box.
const LINE: i64 = 15;
/// Padding above and below a box's label.
const PAD: i64 = 5;
/// Padding left of a label, after the stripe, and right of it.
const INSET: i64 = 8;
/// The owner's colour stripe at a box's left edge.
const STRIPE: i64 = 6;
/// The band that names a RAM range beside its parts.
const BAND: i64 = 20;
/// Height of a device-tree strip inside a memory box.
const TAIL: i64 = 20;
/// The space a break marker takes between two runs of addresses.
const BREAK: i64 = 22;
/// Height of a CPU line.
const CPU_ROW: i64 = 22;
/// Space from an address label's right edge to the boxes.
const TICK: i64 = 8;
/// Narrowest and widest box.
const BOX_MIN: i64 = 220;
const BOX_MAX: i64 = 420;

/// Text sizes, px.
const TITLE: i64 = 16;
const HEADING: i64 = 14;
const NORMAL: i64 = 12;
const SMALL: i64 = 11;

/// A face of text.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Face {
    Regular,
    Bold,
    Mono,
}

/// An estimate of the width of `s` in px, on the generous side (DejaVu's
/// advances, the widest of the usual faces), so that nothing overflows.
fn width(s: &str, size: i64, face: Face) -> i64 {
    let per_em = match face {
        Face::Regular => 60,
        Face::Bold => 68,
        Face::Mono => 61,
    };
    (s.chars().count() as i64 * size * per_em + 99) / 100
}

/// The map as an SVG image: the physical map in the first column, then a
/// column per partition with its CPUs at the top and its guest-physical
/// view below, and a legend. Box heights grow with log2 of the size.
pub fn svg(checked: &Checked) -> String {
    Drawing::new(&model(checked)).finish()
}

/// XML-escapes `s` for text and attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
    out
}

/// `#rrggbb` mixed with white: 30% of the colour.
fn tint(colour: &str) -> String {
    let channel = |i: usize| {
        let hex = colour.get(i..i + 2).unwrap_or("ff");
        u32::from_str_radix(hex, 16).unwrap_or(255)
    };
    let mix = |c: u32| 255 - (255 - c) * 3 / 10;
    format!(
        "#{:02x}{:02x}{:02x}",
        mix(channel(1)),
        mix(channel(3)),
        mix(channel(5))
    )
}

/// How a box of an owner is drawn.
struct Style {
    fill: String,
    stroke: &'static str,
    /// `stroke-dasharray`, or empty.
    dash: &'static str,
}

fn style(owner: Owner) -> Style {
    let (fill, stroke, dash) = match owner {
        Owner::Hypervisor => (HYPERVISOR_FILL.to_owned(), HYPERVISOR_STROKE, ""),
        Owner::Partition(i) => {
            let colour = PALETTE[i % PALETTE.len()];
            (tint(colour), colour, "")
        }
        Owner::Unassigned => (UNASSIGNED_FILL.to_owned(), GREY_STROKE, "4 3"),
        Owner::Free => ("url(#free)".to_owned(), GREY_STROKE, ""),
        Owner::Shared => (tint(SHARED_STROKE), SHARED_STROKE, "6 2"),
    };
    Style { fill, stroke, dash }
}

/// A box's height from its size: 4 KiB is 20 px, each doubling adds 5 px,
/// up to 1 TiB; integer arithmetic only (sixteenths of a doubling).
fn scaled_height(bytes: u64) -> i64 {
    let bits = 63 - i64::from(bytes.max(1).leading_zeros());
    if bits < 12 {
        return 20;
    }
    let sixteenths = ((bytes >> (bits - 4)) & 0xf) as i64;
    let steps = ((bits - 12) * 16 + sixteenths).min(28 * 16);
    20 + steps * 5 / 16
}

/// Size and details of a row, as one line.
fn facts(row: &Row) -> String {
    let mut facts = vec![size(row.range.size)];
    facts.extend(row.details.iter().cloned());
    facts.join(" · ")
}

/// The lines of a box's label: its name, then its facts wrapped to `chars`.
fn label_lines(row: &Row, chars: usize) -> Vec<String> {
    let mut lines = vec![row.what.clone()];
    lines.extend(wrap(&facts(row), chars));
    lines
}

/// The one line of a device-tree strip.
fn tail_text(tail: &Row) -> String {
    format!("{} · {}", tail.what, facts(tail))
}

/// The width a row's labels want, in px, unwrapped.
fn label_width(row: &Row) -> i64 {
    let own = width(&row.what, NORMAL, Face::Bold).max(width(&facts(row), SMALL, Face::Regular));
    let parts = row.parts.iter().map(label_width).max().unwrap_or(0);
    let tail = row
        .tail
        .as_deref()
        .map_or(0, |t| width(&tail_text(t), SMALL, Face::Regular));
    own.max(parts).max(tail)
}

/// One column of the drawing: address labels, the RAM band, the boxes.
struct Column {
    /// Left edge.
    x: i64,
    /// Width of the address labels.
    addr_w: i64,
    /// Width of the RAM band (0 if the column has no RAM ranges).
    band: i64,
    /// Width of the boxes.
    box_w: i64,
}

impl Column {
    /// A column at `x` for `rows`, wide enough for their labels and for
    /// `header_w` px of CPU lines.
    fn new(x: i64, rows: &[Row], header_w: i64) -> Column {
        let mut all = Vec::new();
        for row in rows {
            collect(row, &mut all);
        }
        let longest = all
            .iter()
            .map(|r| addr(r.range.end()))
            .max_by_key(String::len)
            .unwrap_or_default();
        let band = if rows.iter().any(|r| !r.parts.is_empty()) {
            BAND
        } else {
            0
        };
        let labels = rows.iter().map(label_width).max().unwrap_or(0) + STRIPE + 2 * INSET + SMALL;
        Column {
            x,
            addr_w: width(&longest, SMALL, Face::Mono),
            band,
            box_w: labels.max(header_w - band).clamp(BOX_MIN, BOX_MAX),
        }
    }

    /// Where the boxes, or the band before them, start.
    fn inner_x(&self) -> i64 {
        self.x + self.addr_w + TICK
    }

    fn box_x(&self) -> i64 {
        self.inner_x() + self.band
    }

    fn right(&self) -> i64 {
        self.box_x() + self.box_w
    }

    /// Characters of detail text that fit on a line in a box.
    fn chars(&self) -> usize {
        let room = self.box_w - STRIPE - 2 * INSET;
        (room * 100 / (SMALL * 60)).max(10) as usize
    }

    fn row_height(&self, row: &Row) -> i64 {
        if !row.parts.is_empty() {
            return row.parts.iter().map(|p| self.row_height(p)).sum();
        }
        let lines = label_lines(row, self.chars()).len() as i64;
        let tail = if row.tail.is_some() { TAIL } else { 0 };
        scaled_height(row.range.size).max(lines * LINE + 2 * PAD + tail)
    }
}

/// The SVG being written, and how far it reaches.
struct Drawing {
    body: String,
    width: i64,
    height: i64,
}

impl Drawing {
    fn new(map: &Map) -> Drawing {
        let mut d = Drawing {
            body: String::new(),
            width: 0,
            height: 0,
        };
        let mut y = MARGIN + TITLE;
        d.text(MARGIN, y, &map.title(), TITLE, Face::Bold, INK);
        y += 20;
        let note = format!("{ADDRESS_NOTE} Box heights grow with log2(size): not to scale.");
        d.text(MARGIN, y, &note, NORMAL, Face::Regular, FAINT);
        let top = y + 34;

        // Columns: the physical map, then one per partition.
        let chip_w = |line: String| width(&line, NORMAL, Face::Regular) + STRIPE + 2 * INSET;
        let cpus_w = map.cpus.iter().map(|c| chip_w(map.cpu_line(c))).max();
        let mut columns = vec![Column::new(MARGIN, &map.physical, cpus_w.unwrap_or(0))];
        for view in &map.views {
            let x = columns.last().map_or(MARGIN, |c| c.right() + COLUMN_GAP);
            let vcpus = view.cpus.iter().enumerate();
            let vcpus_w = vcpus.map(|(v, &c)| chip_w(map.vcpu_line(v, c))).max();
            columns.push(Column::new(x, &view.rows, vcpus_w.unwrap_or(0)));
        }

        // Headings and CPUs; the maps start level, below the tallest.
        let phys = &columns[0];
        let heading = format!("Board {}", map.board);
        d.text(phys.x, top, &heading, HEADING, Face::Bold, INK);
        d.text(phys.x, top + 16, "CPUs", SMALL, Face::Regular, FAINT);
        let mut y = top + 24;
        for cpu in &map.cpus {
            let owner = cpu
                .runs
                .map_or(Owner::Unassigned, |(i, _)| Owner::Partition(i));
            d.chip(phys, y, owner, &map.cpu_line(cpu));
            y += CPU_ROW + 4;
        }
        let mut headers_end = y;
        for (i, (view, col)) in map.views.iter().zip(&columns[1..]).enumerate() {
            let owner = Owner::Partition(i);
            d.swatch(col.x, top - 12, owner);
            let heading = format!("Partition {}", view.name);
            d.text(col.x + 22, top, &heading, HEADING, Face::Bold, INK);
            d.text(col.x, top + 16, "vCPUs", SMALL, Face::Regular, FAINT);
            let mut y = top + 24;
            for (vcpu, &cpu) in view.cpus.iter().enumerate() {
                d.chip(col, y, owner, &map.vcpu_line(vcpu, cpu));
                y += CPU_ROW + 4;
            }
            let entry = format!("entry {}", addr(view.entry));
            d.text(col.inner_x(), y + 12, &entry, NORMAL, Face::Regular, INK);
            headers_end = headers_end.max(y + 18);
        }
        let caption_y = headers_end + 24;
        let map_top = caption_y + 18;

        let captions = std::iter::once("physical memory map")
            .chain(map.views.iter().map(|_| "guest-physical (IPA) map"));
        let mut bottom = map_top;
        for (k, (col, caption)) in columns.iter().zip(captions).enumerate() {
            d.text(col.x, caption_y, caption, NORMAL, Face::Bold, FAINT);
            let rows = match k {
                0 => &map.physical,
                _ => &map.views[k - 1].rows,
            };
            bottom = bottom.max(d.column(col, map_top, rows));
            d.reach(col.right(), bottom);
        }
        d.legend(map, bottom + 40);
        d
    }

    /// Grows the canvas to hold (x, y).
    fn reach(&mut self, x: i64, y: i64) {
        self.width = self.width.max(x + MARGIN);
        self.height = self.height.max(y + MARGIN);
    }

    /// Text from (x, baseline y), its addresses in the monospace face.
    fn text(&mut self, x: i64, y: i64, s: &str, size: i64, face: Face, fill: &str) {
        let weight = if face == Face::Bold { "bold" } else { "normal" };
        let _ = write!(
            self.body,
            "<text x=\"{x}\" y=\"{y}\" font-size=\"{size}\" font-weight=\"{weight}\" fill=\"{fill}\">"
        );
        for (k, word) in s.split(' ').enumerate() {
            if k > 0 {
                self.body.push(' ');
            }
            let hex = if word.starts_with("0x") {
                word.find(|c: char| !(c.is_ascii_hexdigit() || c == 'x' || c == '_'))
                    .unwrap_or(word.len())
            } else {
                0
            };
            let (number, rest) = word.split_at(hex);
            if !number.is_empty() {
                let _ = write!(self.body, "<tspan font-family=\"{MONO}\">{number}</tspan>");
            }
            self.body.push_str(&escape(rest));
        }
        self.body.push_str("</text>\n");
        self.reach(x + width(s, size, face), y);
    }

    /// A rectangle at `[x, y, width, height]`; `dash` is a `stroke-dasharray` or empty.
    fn rect(&mut self, [x, y, w, h]: [i64; 4], fill: &str, stroke: &str, dash: &str) {
        let dash = if dash.is_empty() {
            String::new()
        } else {
            format!(" stroke-dasharray=\"{dash}\"")
        };
        let _ = writeln!(
            self.body,
            "<rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" fill=\"{fill}\" stroke=\"{stroke}\"{dash}/>"
        );
        self.reach(x + w, y + h);
    }

    /// A box in its owner's style, with the owner's stripe at its left edge.
    fn owned(&mut self, x: i64, y: i64, w: i64, h: i64, owner: Owner) {
        let s = style(owner);
        self.rect([x, y, w, h], &s.fill, s.stroke, s.dash);
        self.rect([x, y, STRIPE, h], s.stroke, s.stroke, "");
    }

    /// A small square in the owner's style (legend, headings).
    fn swatch(&mut self, x: i64, y: i64, owner: Owner) {
        self.owned(x, y, 16, 16, owner);
    }

    /// A CPU line: a small box in its owner's colour.
    fn chip(&mut self, col: &Column, y: i64, owner: Owner, label: &str) {
        let x = col.inner_x();
        self.owned(x, y, col.right() - x, CPU_ROW, owner);
        self.text(
            x + STRIPE + INSET,
            y + 15,
            label,
            NORMAL,
            Face::Regular,
            INK,
        );
    }

    /// An address at the boundary `y`, left of the boxes, with a tick.
    fn address(&mut self, col: &Column, y: i64, value: u64, fill: &str) {
        let x = col.x + col.addr_w;
        let _ = writeln!(
            self.body,
            "<line x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"{fill}\"/>",
            x + 2,
            col.inner_x()
        );
        let _ = writeln!(
            self.body,
            "<text x=\"{x}\" y=\"{}\" font-family=\"{MONO}\" font-size=\"{SMALL}\" fill=\"{fill}\" text-anchor=\"end\">{}</text>",
            y + 4,
            addr(value)
        );
    }

    /// A break in the addresses: a zigzag from `x` to `right` at `y`.
    fn gap(&mut self, x: i64, right: i64, y: i64) {
        let mut path = format!("M{x} {y}");
        let (mut x, mut up) = (x, true);
        while x < right {
            x = (x + 8).min(right);
            let _ = write!(path, " L{x} {}", if up { y - 4 } else { y + 4 });
            up = !up;
        }
        let _ = writeln!(
            self.body,
            "<path d=\"{path}\" fill=\"none\" stroke=\"{GREY_STROKE}\" stroke-width=\"1.5\"/>"
        );
    }

    /// Draws one map's rows from `top`, a break between runs; returns the bottom.
    fn column(&mut self, col: &Column, top: i64, rows: &[Row]) -> i64 {
        let mut y = top;
        let mut last_end: Option<u64> = None;
        for row in rows {
            if let Some(end) = last_end
                && end != row.range.base
            {
                self.address(col, y, end, INK);
                self.gap(col.inner_x(), col.right(), y + BREAK / 2);
                y += BREAK;
            }
            y = self.row(col, y, row);
            last_end = Some(row.range.end());
        }
        if let Some(end) = last_end {
            self.address(col, y, end, INK);
        }
        y
    }

    /// Draws a row (a box, or a RAM range's band and parts) at `y`; returns its bottom.
    fn row(&mut self, col: &Column, y: i64, row: &Row) -> i64 {
        let h = col.row_height(row);
        if !row.parts.is_empty() {
            let x = col.inner_x();
            self.rect([x, y, BAND, h], BAND_FILL, GREY_STROKE, "");
            let long = format!("{} · {}", row.what, size(row.range.size));
            let label = if width(&long, SMALL, Face::Bold) + 2 * INSET <= h {
                long
            } else {
                row.what.clone()
            };
            let (cx, cy) = (x + BAND / 2 + 4, y + h / 2);
            let _ = writeln!(
                self.body,
                "<text x=\"{cx}\" y=\"{cy}\" font-size=\"{SMALL}\" font-weight=\"bold\" fill=\"{INK}\" text-anchor=\"middle\" transform=\"rotate(-90 {cx} {cy})\">{}</text>",
                escape(&label)
            );
            let mut py = y;
            for part in &row.parts {
                py = self.row(col, py, part);
            }
            return y + h;
        }
        self.address(col, y, row.range.base, INK);
        let x = col.box_x();
        self.owned(x, y, col.box_w, h, row.owner);
        for (k, line) in label_lines(row, col.chars()).iter().enumerate() {
            let (size, face) = if k == 0 {
                (NORMAL, Face::Bold)
            } else {
                (SMALL, Face::Regular)
            };
            let ly = y + PAD + 11 + k as i64 * LINE;
            self.text(x + STRIPE + INSET, ly, line, size, face, INK);
        }
        if let Some(tail) = &row.tail {
            let ty = y + h - TAIL;
            let stroke = style(tail.owner).stroke;
            self.rect(
                [x + STRIPE, ty, col.box_w - STRIPE, TAIL],
                "#ffffff",
                stroke,
                "3 2",
            );
            self.text(
                x + STRIPE + INSET,
                ty + 14,
                &tail_text(tail),
                SMALL,
                Face::Regular,
                INK,
            );
            self.address(col, ty, tail.range.base, FAINT);
        }
        y + h
    }

    /// The key to colours and marks, from `y` down.
    fn legend(&mut self, map: &Map, y: i64) {
        self.text(MARGIN, y, "Legend", NORMAL, Face::Bold, INK);
        let mut owners: Vec<(Owner, String)> = map
            .views
            .iter()
            .enumerate()
            .map(|(i, v)| (Owner::Partition(i), format!("partition {}", v.name)))
            .collect();
        owners.push((
            Owner::Hypervisor,
            "hypervisor: its RAM and MMIO, and what it emulates or provides".to_owned(),
        ));
        owners.push((
            Owner::Unassigned,
            "unassigned: a board device or CPU no partition takes".to_owned(),
        ));
        if map.shared {
            owners.push((
                Owner::Shared,
                "shared: a region partitions share ([[shared]])".to_owned(),
            ));
        }
        owners.push((Owner::Free, "free RAM".to_owned()));
        let label_x = MARGIN + 40;
        let mut y = y + 12;
        for (owner, label) in &owners {
            self.owned(MARGIN, y, 28, 16, *owner);
            self.text(label_x, y + 12, label, NORMAL, Face::Regular, INK);
            y += 22;
        }
        self.rect([MARGIN, y, 28, 16], "#ffffff", GREY_STROKE, "3 2");
        let label = "device-tree area: the top 64 KiB of a partition's lowest memory, in place";
        self.text(label_x, y + 12, label, NORMAL, Face::Regular, INK);
        y += 22;
        self.gap(MARGIN, MARGIN + 28, y + 8);
        let label = "addresses skipped: the next box does not start where the last one ends";
        self.text(label_x, y + 12, label, NORMAL, Face::Regular, INK);
    }

    fn finish(self) -> String {
        let (w, h) = (self.width, self.height);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"{SANS}\">"
        );
        out.push_str(
            "<defs><pattern id=\"free\" width=\"8\" height=\"8\" patternUnits=\"userSpaceOnUse\" \
             patternTransform=\"rotate(45)\"><rect width=\"8\" height=\"8\" fill=\"#ffffff\"/>\
             <line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"8\" stroke=\"#dddddd\" stroke-width=\"3\"/>\
             </pattern></defs>\n",
        );
        let _ = writeln!(out, "<rect width=\"{w}\" height=\"{h}\" fill=\"#ffffff\"/>");
        out.push_str(&self.body);
        out.push_str("</svg>\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::test_elf::{Seg, build_elf};

    /// A board unlike the shipped one: two RAM ranges (one above 4 GiB),
    /// CPUs in two clusters, a device with two interrupts and a compatible
    /// string that needs XML escaping.
    const BOARD: &str = r#"
name = "testboard"
ram = [
    { base = 0x1_0000_0000, size = 0x4000_0000 },
    { base = 0x4000_0000, size = 0x2000_0000 },
]
hypervisor = { base = 0x4000_0000, size = 0x0100_0000 }
uart = { base = 0x0900_0000, size = 0x1000 }
gic = { version = 3, distributor = 0x0800_0000, redistributor = 0x080A_0000, maintenance_intid = 25 }
cpu = [{ mpidr = 0x0 }, { mpidr = 0x1 }, { mpidr = 0x100 }, { mpidr = 0x101 }]
device = [
    { name = "rtc", compatible = ["arm,pl031"], base = 0x0901_0000, size = 0x1000, interrupts = [34] },
    { name = "fifo", compatible = ["acme,<fifo>&co"], base = 0x0a00_0000, size = 0x2_0000, interrupts = [40, 41] },
    { name = "gpio", compatible = ["arm,pl061"], base = 0x0903_0000, size = 0x1000, interrupts = [39] },
]
"#;

    /// Two partitions: alpha with two regions (one above 4 GiB), a console
    /// and a device; beta with a device, its own control page and no device tree.
    const SET: &str = r#"
board = "testboard"

[[partition]]
name = "alpha"
cpus = [0, 2]
image = "guest"
console_pl011 = 0x0900_0000
devices = ["fifo"]

[[partition.memory]]
ipa = 0x8000_0000
phys = 0x1_0000_0000
size = 0x0100_0000

[[partition.memory]]
ipa = 0x4000_0000
phys = 0x4800_0000
size = 0x0400_0000

[[partition]]
name = "beta"
cpus = [1]
image = "guest"
devices = ["rtc"]
control_page = 0x7000_0000
device_tree = false

[[partition.memory]]
ipa = 0x4000_0000
phys = 0x4c00_0000
size = 0x0400_0000
"#;

    /// A set file name that needs XML escaping.
    const SET_FILE: &str = "sets/a&b <two>.toml";

    /// Every image is a small ELF linked at 0x4000_0000.
    fn images(_: &str) -> Result<Vec<u8>, ErrorKind> {
        let code = Seg {
            paddr: 0x4000_0000,
            data: b"\x00\x00\x00\x14",
            memsz: 0x1000,
        };
        Ok(build_elf(0x4000_0000, &[code]))
    }

    fn checked(board: &str) -> Checked {
        checked_as(board, SET_FILE)
    }

    /// The test set on `board`, its file named `set_file`.
    fn checked_as(board: &str, set_file: &str) -> Checked {
        crate::check(board, "boards/testboard/board.toml", SET, set_file, &images)
            .unwrap_or_else(|e| panic!("the test set is valid: {e}"))
    }

    fn gicv2_board() -> String {
        BOARD.replace(
            "version = 3, distributor = 0x0800_0000, redistributor = 0x080A_0000",
            "version = 2, distributor = 0x0800_0000, cpu_interface = 0x0801_0000, \
             hyp_interface = 0x0803_0000, virtual_cpu_interface = 0x0804_0000",
        )
    }

    /// The lines of the section headed `heading`, blanks folded, up to the next empty line.
    fn section(text: &str, heading: &str) -> Vec<String> {
        let mut lines = text.lines().skip_while(|l| *l != heading);
        assert!(lines.next().is_some(), "no section {heading:?} in\n{text}");
        lines
            .take_while(|l| !l.is_empty())
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    }

    #[test]
    fn the_text_table_lists_every_range_cpu_and_owner() {
        let text = text(&checked(BOARD));
        assert_eq!(
            section(&text, "Physical memory map"),
            [
                "start end size what",
                "0x0800_0000 0x0801_0000 64 KiB GIC distributor (GICv3): hypervisor; maintenance INTID 25",
                "0x080a_0000 0x0812_0000 512 KiB GIC redistributors (GICv3): hypervisor",
                "0x0900_0000 0x0900_1000 4 KiB UART (PL011): hypervisor console",
                "0x0901_0000 0x0901_1000 4 KiB device rtc (arm,pl031): beta; INTID 34",
                "0x0903_0000 0x0903_1000 4 KiB device gpio (arm,pl061): unassigned; INTID 39",
                "0x0a00_0000 0x0a02_0000 128 KiB device fifo (acme,<fifo>&co): alpha; INTIDs 40, 41",
                "0x4000_0000 0x6000_0000 512 MiB RAM",
                "0x4000_0000 0x4100_0000 16 MiB hypervisor: image, heap (control pages), page tables,",
                "stacks",
                "0x4100_0000 0x4800_0000 112 MiB free RAM",
                "0x4800_0000 0x4c00_0000 64 MiB alpha memory: at IPA 0x4000_0000",
                "0x4bff_0000 0x4c00_0000 64 KiB alpha device tree: at IPA 0x43ff_0000",
                "0x4c00_0000 0x5000_0000 64 MiB beta memory: at IPA 0x4000_0000",
                "0x5000_0000 0x6000_0000 256 MiB free RAM",
                "0x1_0000_0000 0x1_4000_0000 1 GiB RAM",
                "0x1_0000_0000 0x1_0100_0000 16 MiB alpha memory: at IPA 0x8000_0000",
                "0x1_0100_0000 0x1_4000_0000 1008 MiB free RAM",
            ]
        );
        assert_eq!(
            section(&text, "CPUs"),
            [
                "CPU 0 (MPIDR 0x0): alpha vCPU 0",
                "CPU 1 (MPIDR 0x1): beta vCPU 0",
                "CPU 2 (MPIDR 0x100): alpha vCPU 1",
                "CPU 3 (MPIDR 0x101): unassigned",
            ]
        );
        assert_eq!(
            section(&text, "Partition alpha: guest-physical (IPA) map"),
            [
                "vCPU 0 on CPU 0 (MPIDR 0x0)",
                "vCPU 1 on CPU 2 (MPIDR 0x100)",
                "entry 0x4000_0000",
                "start end size what",
                "0x0800_0000 0x0801_0000 64 KiB GIC distributor: virtual (hypervisor)",
                "0x080a_0000 0x080e_0000 256 KiB GIC redistributors: virtual (hypervisor)",
                "0x0900_0000 0x0900_1000 4 KiB PL011 console: emulated (hypervisor); INTID 33",
                "0x0a00_0000 0x0a02_0000 128 KiB device fifo (acme,<fifo>&co): passthrough; INTIDs 40, 41",
                "0x4000_0000 0x4400_0000 64 MiB memory: phys 0x4800_0000",
                "0x43ff_0000 0x4400_0000 64 KiB device tree: phys 0x4bff_0000",
                "0x7fff_f000 0x8000_0000 4 KiB control page: hypervisor heap; phys chosen at boot",
                "0x8000_0000 0x8100_0000 16 MiB memory: phys 0x1_0000_0000",
            ]
        );
        assert_eq!(
            section(&text, "Partition beta: guest-physical (IPA) map"),
            [
                "vCPU 0 on CPU 1 (MPIDR 0x1)",
                "entry 0x4000_0000",
                "start end size what",
                "0x0800_0000 0x0801_0000 64 KiB GIC distributor: virtual (hypervisor)",
                "0x080a_0000 0x080c_0000 128 KiB GIC redistributors: virtual (hypervisor)",
                "0x0901_0000 0x0901_1000 4 KiB device rtc (arm,pl031): passthrough; INTID 34",
                "0x4000_0000 0x4400_0000 64 MiB memory: phys 0x4c00_0000",
                "0x7000_0000 0x7000_1000 4 KiB control page: hypervisor heap; phys chosen at boot",
            ]
        );
        let long = text.lines().filter(|l| l.chars().count() > TEXT_WIDTH);
        assert_eq!(long.collect::<Vec<_>>(), Vec::<&str>::new());
    }

    #[test]
    fn a_gicv2_boards_windows_appear_in_both_maps() {
        let c = checked(&gicv2_board());
        let text = text(&c);
        let physical = section(&text, "Physical memory map");
        for line in [
            "0x0800_0000 0x0800_1000 4 KiB GIC distributor (GICv2): hypervisor; maintenance INTID 25",
            "0x0801_0000 0x0801_2000 8 KiB GIC CPU interface (GICv2): hypervisor",
            "0x0803_0000 0x0803_1000 4 KiB GIC hyp interface (GICv2): hypervisor",
            "0x0804_0000 0x0804_2000 8 KiB GIC virtual CPU interface (GICv2): hypervisor",
        ] {
            assert!(physical.iter().any(|l| l == line), "{line:?} in\n{text}");
        }
        assert!(!text.contains("redistributor"), "{text}");
        let alpha = section(&text, "Partition alpha: guest-physical (IPA) map");
        for line in [
            "0x0800_0000 0x0800_1000 4 KiB GIC distributor: virtual (hypervisor)",
            "0x0801_0000 0x0801_2000 8 KiB GIC CPU interface: virtual (hypervisor)",
        ] {
            assert!(alpha.iter().any(|l| l == line), "{line:?} in\n{text}");
        }
        let svg = svg(&c);
        let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
        let texts = all_text(&doc);
        for what in [
            "GIC distributor (GICv2)",
            "GIC CPU interface (GICv2)",
            "GIC hyp interface (GICv2)",
            "GIC virtual CPU interface (GICv2)",
            "GIC CPU interface",
        ] {
            assert!(texts.iter().any(|t| t == what), "{what:?} in {texts:?}");
        }
    }

    /// The text of every `<text>` element, tspans joined.
    fn all_text(doc: &roxmltree::Document<'_>) -> Vec<String> {
        doc.descendants()
            .filter(|n| n.has_tag_name("text"))
            .map(text_of)
            .collect()
    }

    /// The text in `node`, tspans joined.
    fn text_of(node: roxmltree::Node<'_, '_>) -> String {
        node.descendants()
            .filter(|d| d.is_text())
            .filter_map(|d| d.text())
            .collect()
    }

    fn number(node: roxmltree::Node<'_, '_>, attribute: &str) -> i64 {
        let value = node.attribute(attribute).unwrap_or("0");
        value
            .parse()
            .unwrap_or_else(|_| panic!("{attribute}={value:?}"))
    }

    #[test]
    fn the_svg_is_well_formed_complete_inside_its_canvas_and_deterministic() {
        let c = checked(BOARD);
        let image = svg(&c);
        assert_eq!(image, svg(&checked(BOARD)), "two runs differ");
        let doc = roxmltree::Document::parse(&image).expect("well-formed SVG");
        let root = doc.root_element();
        assert!(root.has_tag_name(("http://www.w3.org/2000/svg", "svg")));
        let (w, h) = (number(root, "width"), number(root, "height"));
        assert_eq!(
            root.attribute("viewBox"),
            Some(format!("0 0 {w} {h}").as_str())
        );

        // Nothing drawn outside the canvas.
        for rect in doc.descendants().filter(|n| n.has_tag_name("rect")) {
            let (x, y) = (number(rect, "x"), number(rect, "y"));
            let (rw, rh) = (number(rect, "width"), number(rect, "height"));
            assert!(
                x >= 0 && y >= 0 && x + rw <= w && y + rh <= h,
                "{rect:?} outside {w}x{h}"
            );
        }
        for text in doc.descendants().filter(|n| n.has_tag_name("text")) {
            let (x, y) = (number(text, "x"), number(text, "y"));
            assert!(x > 0 && x < w && y > 0 && y < h, "{text:?} outside {w}x{h}");
        }

        // Everything the table names is in the picture.
        let texts = all_text(&doc).join("\n");
        let map = model(&c);
        let mut rows = Vec::new();
        for row in map
            .physical
            .iter()
            .chain(map.views.iter().flat_map(|v| &v.rows))
        {
            collect(row, &mut rows);
        }
        for row in rows {
            assert!(texts.contains(&row.what), "{:?} missing", row.what);
            assert!(
                texts.contains(&addr(row.range.base)),
                "{} missing",
                addr(row.range.base)
            );
            assert!(
                texts.contains(&addr(row.range.end())),
                "{} missing",
                addr(row.range.end())
            );
            for detail in &row.details {
                assert!(texts.contains(detail.as_str()), "{detail:?} missing");
            }
        }
        for cpu in &map.cpus {
            assert!(texts.contains(&map.cpu_line(cpu)), "{cpu:?} missing");
        }
        for line in [
            "vCPU 0 on CPU 0 (MPIDR 0x0)",
            "vCPU 1 on CPU 2 (MPIDR 0x100)",
        ] {
            assert!(texts.contains(line), "{line:?} missing");
        }
        assert!(texts.contains("entry 0x4000_0000"));
        // Each partition in its own colour; the unassigned CPU and device in grey.
        assert!(image.contains(&format!("fill=\"{}\"", tint(PALETTE[0]))));
        assert!(image.contains(&format!("fill=\"{}\"", tint(PALETTE[1]))));
        assert!(image.contains(&format!("fill=\"{UNASSIGNED_FILL}\"")));
    }

    /// A box of the drawing: `[left, top, right, bottom]`, in px.
    type Bounds = [i64; 4];

    /// Whether `inner` lies within `outer`.
    fn within(inner: Bounds, outer: Bounds) -> bool {
        inner[0] >= outer[0] && inner[1] >= outer[1] && inner[2] <= outer[2] && inner[3] <= outer[3]
    }

    /// Whether the two share more than an edge.
    fn cross(a: Bounds, b: Bounds) -> bool {
        a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3]
    }

    /// What an SVG draws, as far as the layout tests look.
    struct Layout {
        /// Width and height.
        canvas: (i64, i64),
        /// The rectangles (not the background, not the hatch pattern's), with their fill.
        rects: Vec<(Bounds, String)>,
        /// The horizontal text: its bounds (as [`width`] estimates it, from
        /// the cap height above the baseline to the descenders below), its
        /// baseline's start, the text, and whether it is anchored at its end.
        texts: Vec<(Bounds, (i64, i64), String, bool)>,
    }

    fn layout(image: &str) -> Layout {
        let doc = roxmltree::Document::parse(image).expect("well-formed SVG");
        let root = doc.root_element();
        let canvas = (number(root, "width"), number(root, "height"));
        let in_defs = |n: &roxmltree::Node<'_, '_>| n.ancestors().any(|a| a.has_tag_name("defs"));
        let rects = doc
            .descendants()
            .filter(|n| n.has_tag_name("rect") && !in_defs(n))
            .map(|r| {
                let (x, y) = (number(r, "x"), number(r, "y"));
                let bounds = [x, y, x + number(r, "width"), y + number(r, "height")];
                (bounds, r.attribute("fill").unwrap_or_default().to_owned())
            })
            .filter(|(b, _)| *b != [0, 0, canvas.0, canvas.1])
            .collect();
        let texts = doc
            .descendants()
            .filter(|n| n.has_tag_name("text") && n.attribute("transform").is_none())
            .map(|t| {
                let s = text_of(t);
                let size = number(t, "font-size");
                let face = match (t.attribute("font-weight"), t.attribute("font-family")) {
                    (Some("bold"), _) => Face::Bold,
                    (_, Some(MONO)) => Face::Mono,
                    _ => Face::Regular,
                };
                let (x, y, tw) = (number(t, "x"), number(t, "y"), width(&s, size, face));
                let end = t.attribute("text-anchor") == Some("end");
                let left = if end { x - tw } else { x };
                let bounds = [left, y - size * 3 / 4, left + tw, y + size / 4];
                (bounds, (x, y), s, end)
            })
            .collect();
        Layout {
            canvas,
            rects,
            texts,
        }
    }

    /// The first and last point of each zigzag.
    fn zigzags(image: &str) -> Vec<((i64, i64), (i64, i64))> {
        let doc = roxmltree::Document::parse(image).expect("well-formed SVG");
        doc.descendants()
            .filter_map(|n| n.attribute("d"))
            .map(|d| {
                let numbers: Vec<i64> = d
                    .split([' ', 'M', 'L'])
                    .filter(|w| !w.is_empty())
                    .map(|w| w.parse().expect("a path coordinate"))
                    .collect();
                let n = numbers.len();
                ((numbers[0], numbers[1]), (numbers[n - 2], numbers[n - 1]))
            })
            .collect()
    }

    #[test]
    fn the_svgs_boxes_nest_and_its_labels_neither_collide_nor_cross_a_box_edge() {
        // The last with a title wider than the maps.
        let long_name = format!("sets/{}.toml", "a-long-name-".repeat(20));
        let sets = [
            checked(BOARD),
            checked(&gicv2_board()),
            checked_as(BOARD, &long_name),
        ];
        for set in &sets {
            let image = svg(set);
            let Layout {
                canvas: (w, h),
                rects,
                texts,
            } = layout(&image);
            let rects: Vec<Bounds> = rects.into_iter().map(|(b, _)| b).collect();
            assert!(rects.len() > 40 && texts.len() > 60, "{image}");
            // Boxes: apart, or one inside the other (a stripe or a
            // device-tree strip in its box).
            for (i, a) in rects.iter().enumerate() {
                for b in &rects[..i] {
                    let nested = within(*a, *b) || within(*b, *a);
                    assert!(nested || !cross(*a, *b), "boxes {a:?} and {b:?} overlap");
                }
            }
            // Labels: never over another label, each inside a box or clear of it.
            for (i, (a, _, s, _)) in texts.iter().enumerate() {
                for (b, _, t, _) in &texts[..i] {
                    assert!(!cross(*a, *b), "{s:?} {a:?} collides with {t:?} {b:?}");
                }
                for r in &rects {
                    let clear = within(*a, *r) || !cross(*a, *r);
                    assert!(clear, "{s:?} {a:?} crosses the edge of {r:?}");
                }
            }
            // The canvas ends a margin right of and below the furthest box or
            // label (addresses, anchored at their end, stand left of boxes).
            let right = rects.iter().map(|r| r[2]);
            let labels = texts.iter().filter(|t| !t.3);
            let right = right.chain(labels.clone().map(|t| t.0[2])).max();
            let bottom = rects.iter().map(|r| r[3]).chain(labels.map(|t| t.1.1));
            assert_eq!((right, bottom.max()), (Some(w - MARGIN), Some(h - MARGIN)));
            // Each zigzag (a break in the addresses) runs from the left edge
            // of a box, or of the RAM band, to the right edge of one.
            let breaks = zigzags(&image);
            assert!(breaks.len() > 3, "{image}");
            for ((x0, y0), (x1, _)) in breaks {
                let starts = rects.iter().any(|r| r[0] == x0);
                assert!(starts, "a break starts at {x0},{y0}");
                let ends = rects.iter().any(|r| r[2] == x1);
                assert!(ends, "a break ends at {x1},{y0}");
            }
        }
    }

    #[test]
    fn the_legend_shows_each_owners_colour_beside_its_name() {
        let Layout { rects, texts, .. } = layout(&svg(&checked(BOARD)));
        let keys = [
            ("partition alpha", tint(PALETTE[0])),
            ("partition beta", tint(PALETTE[1])),
            (
                "hypervisor: its RAM and MMIO, and what it emulates or provides",
                HYPERVISOR_FILL.to_owned(),
            ),
            (
                "unassigned: a board device or CPU no partition takes",
                UNASSIGNED_FILL.to_owned(),
            ),
            ("free RAM", "url(#free)".to_owned()),
            (
                "device-tree area: the top 64 KiB of a partition's lowest memory, in place",
                "#ffffff".to_owned(),
            ),
        ];
        for (label, fill) in keys {
            // The label's baseline is level with a swatch of the colour, left of it.
            let beside = texts
                .iter()
                .filter(|t| t.2 == label)
                .any(|(_, (x, y), _, _)| {
                    let swatch = |(r, f): &(Bounds, String)| {
                        *f == fill && r[2] < *x && r[1] < *y && *y <= r[3]
                    };
                    rects.iter().any(swatch)
                });
            assert!(beside, "no {fill} swatch beside {label:?}");
        }
        let legend = texts.iter().filter(|t| t.2 == "Legend").count();
        assert_eq!(legend, 1);
        let skipped = "addresses skipped: the next box does not start where the last one ends";
        assert!(texts.iter().any(|t| t.2 == skipped));
    }

    #[test]
    fn addresses_in_svg_labels_are_set_in_the_monospace_face() {
        let image = svg(&checked(BOARD));
        let doc = roxmltree::Document::parse(&image).expect("well-formed SVG");
        let mono = |label: &str| -> Vec<String> {
            let text = doc
                .descendants()
                .find(|n| n.has_tag_name("text") && text_of(*n) == label)
                .unwrap_or_else(|| panic!("no {label:?}"));
            text.children()
                .filter(|c| c.attribute("font-family") == Some(MONO))
                .map(text_of)
                .collect()
        };
        assert_eq!(mono("64 MiB · phys 0x4800_0000"), ["0x4800_0000"]);
        assert_eq!(mono("vCPU 1 on CPU 2 (MPIDR 0x100)"), ["0x100"]);
        assert_eq!(mono("Partition alpha"), Vec::<String>::new());
    }

    #[test]
    fn a_detail_line_holds_as_many_characters_as_fit_its_box() {
        // Text starts STRIPE + INSET into a box and ends at least INSET
        // before its right edge.
        for box_w in [BOX_MIN, 300, BOX_MAX] {
            let col = Column {
                x: 0,
                addr_w: 0,
                band: 0,
                box_w,
            };
            let room = box_w - STRIPE - 2 * INSET;
            let line = |n: usize| width(&"m".repeat(n), SMALL, Face::Regular);
            let n = col.chars();
            assert!(line(n) <= room && line(n + 1) > room, "{box_w}: {n}");
        }
    }

    #[test]
    fn a_ram_bands_label_gives_the_size_only_where_it_fits_with_room_to_spare() {
        let col = Column {
            x: 0,
            addr_w: 0,
            band: BAND,
            box_w: BOX_MAX,
        };
        let part = |size| Row::new(Range { base: 0, size }, "free RAM", Owner::Free, Vec::new());
        // The band's height and its (rotated) label, for RAM made of `parts`.
        let band = |parts: Vec<Row>| {
            let mut ram = Row::new(
                Range {
                    base: 0,
                    size: 0x2000,
                },
                "RAM",
                Owner::Free,
                Vec::new(),
            );
            ram.parts = parts;
            let mut d = Drawing {
                body: String::new(),
                width: 0,
                height: 0,
            };
            let h = d.row(&col, 0, &ram);
            let line = d.body.lines().find(|l| l.contains("rotate(-90"));
            let label = line.and_then(|l| l.split('>').nth(1)?.strip_suffix("</text"));
            (h, label.map(str::to_owned))
        };
        // The long label needs its width and INSET at both ends: 99 px.
        assert_eq!(width("RAM · 8 KiB", SMALL, Face::Bold) + 2 * INSET, 99);
        let short = band(vec![part(0x1000), part(0x8_0000)]);
        assert_eq!(short, (95, Some("RAM".to_owned())));
        let long = band(vec![part(0x1000), part(0x10_0000)]);
        assert_eq!(long, (100, Some("RAM · 8 KiB".to_owned())));
    }

    #[test]
    fn a_box_is_as_tall_as_its_size_says_or_its_lines_need() {
        let col = Column {
            x: 0,
            addr_w: 0,
            band: 0,
            box_w: BOX_MAX,
        };
        let row = |size| {
            let range = Range { base: 0, size };
            Row::new(range, "memory", Owner::Free, vec!["at IPA 0x0".to_owned()])
        };
        // Two lines (the name; the size and details) with padding above and below.
        assert_eq!(col.row_height(&row(0x1000)), 2 * LINE + 2 * PAD);
        // A device-tree strip adds its own height.
        let mut tailed = row(0x1000);
        tailed.tail = Some(Box::new(row(0x1000)));
        assert_eq!(col.row_height(&tailed), 2 * LINE + 2 * PAD + TAIL);
        // A large range is taller than its lines need.
        assert_eq!(
            col.row_height(&row(0x4000_0000)),
            scaled_height(0x4000_0000)
        );
        // A RAM range is as tall as its parts together.
        let mut ram = row(0x4000_0000);
        ram.parts = vec![row(0x1000), tailed];
        assert_eq!(col.row_height(&ram), 4 * LINE + 4 * PAD + TAIL);
    }

    #[test]
    fn names_are_xml_escaped() {
        assert_eq!(
            escape(r#"a<b>&"c'"#),
            "a&lt;b&gt;&amp;&quot;c&apos;".to_owned()
        );
        let image = svg(&checked(BOARD));
        assert!(image.contains("acme,&lt;fifo&gt;&amp;co"), "{image}");
        assert!(!image.contains("<fifo>"));
        assert!(!image.contains("a&b <two>"));
        let doc = roxmltree::Document::parse(&image).expect("well-formed SVG");
        let texts = all_text(&doc);
        assert!(
            texts.iter().any(|t| t == "device fifo (acme,<fifo>&co)"),
            "{texts:?}"
        );
        assert!(
            texts
                .iter()
                .any(|t| t.starts_with("Partition set sets/a&b <two>.toml"))
        );
    }

    #[test]
    fn addresses_and_sizes_read_as_documented() {
        assert_eq!(addr(0), "0x0000_0000");
        assert_eq!(addr(0x0900_0000), "0x0900_0000");
        assert_eq!(addr(0x1_4000_0000), "0x1_4000_0000");
        assert_eq!(size(0x1000), "4 KiB");
        assert_eq!(size(0x1E0_0000), "30 MiB");
        assert_eq!(size(0x4000_0000), "1 GiB");
        assert_eq!(size(0x1800_0000), "384 MiB");
        assert_eq!(size(0x1_8000_0000), "6 GiB");
        assert_eq!(size(0x100_0000_0000), "1 TiB");
        assert_eq!(size(100), "100 B");
        // Not a whole number of GiB, nor of MiB: in KiB, however many.
        assert_eq!(size(0x4000_1000), "1048580 KiB");
        assert_eq!(size(0), "0 B");
    }

    #[test]
    fn interrupt_lists_read_as_words() {
        assert_eq!(interrupts(&[]), "no interrupts");
        assert_eq!(interrupts(&[34]), "INTID 34");
        assert_eq!(interrupts(&[40, 41]), "INTIDs 40, 41");
    }

    #[test]
    fn lines_break_before_a_word_that_would_pass_the_width() {
        // 9 characters fit a width of 9; the next word does not.
        assert_eq!(wrap("aaaa bbbb cccc", 9), ["aaaa bbbb", "cccc"]);
        assert_eq!(wrap("aaaa bbbb", 8), ["aaaa", "bbbb"]);
        assert_eq!(wrap("a overlongword b", 4), ["a", "overlongword", "b"]);
    }

    #[test]
    fn ram_is_tiled_with_free_rows_only_in_the_gaps() {
        let r = |base, size| Range { base, size };
        let used = |base, size| Row::new(r(base, size), "used", Owner::Hypervisor, Vec::new());
        let tiled = |rows: Vec<Row>| -> Vec<(Range, String)> {
            let whole = r(0x1000, 0x3000);
            tile(whole, rows)
                .into_iter()
                .map(|row| (row.range, row.what))
                .collect()
        };
        let (used_row, free_row) = (String::from("used"), String::from("free RAM"));
        // Rows from end to end: no free row, not even an empty one.
        assert_eq!(
            tiled(vec![used(0x3000, 0x1000), used(0x1000, 0x2000)]),
            [
                (r(0x1000, 0x2000), used_row.clone()),
                (r(0x3000, 0x1000), used_row.clone())
            ]
        );
        assert_eq!(
            tiled(vec![used(0x2000, 0x1000)]),
            [
                (r(0x1000, 0x1000), free_row.clone()),
                (r(0x2000, 0x1000), used_row),
                (r(0x3000, 0x1000), free_row)
            ]
        );
    }

    #[test]
    fn parts_and_tails_are_indented_under_the_range_they_are_in() {
        let text = text(&checked(BOARD));
        // Where the label of the first line with `what` starts.
        let column = |what: &str| {
            let line = text.lines().find(|l| l.contains(what));
            line.and_then(|l| l.find(what))
                .unwrap_or_else(|| panic!("no {what:?} in\n{text}"))
        };
        // In the physical map: RAM under the heading, its parts, a part's
        // device-tree tail; a wrapped label goes on two more to the right.
        let ram = column("what");
        assert_eq!(column("alpha memory: at IPA 0x4000_0000"), ram + 2);
        assert_eq!(column("alpha device tree"), ram + 4);
        assert_eq!(column("stacks"), ram + 4);
        // In a partition's map: memory, and the device tree at its top.
        let memory = column("memory: phys 0x4800_0000");
        assert_eq!(column("device tree: phys 0x4bff_0000"), memory + 2);
    }

    #[test]
    fn text_widths_round_up_to_whole_pixels() {
        // Per em: regular 0.60, bold 0.68, mono 0.61.
        assert_eq!(width("a", 1, Face::Regular), 1);
        assert_eq!(width("abc", 10, Face::Regular), 18);
        assert_eq!(width("abc", 10, Face::Bold), 21);
        assert_eq!(width("abc", 10, Face::Mono), 19);
        assert_eq!(width("", 12, Face::Bold), 0);
    }

    #[test]
    fn a_tint_is_30_percent_of_the_colour_on_white() {
        assert_eq!(tint("#000000"), "#b3b3b3");
        assert_eq!(tint("#ffffff"), "#ffffff");
        assert_eq!(tint("#3366cc"), "#c2d2f0");
    }

    #[test]
    fn box_heights_grow_with_log2_of_the_size_and_are_clamped() {
        assert_eq!(scaled_height(0x1000), 20);
        assert_eq!(scaled_height(0x2000), 25);
        // Between doublings, by sixteenths: 6 KiB and 12 KiB are half-way.
        assert_eq!(scaled_height(0x1800), 22);
        assert_eq!(scaled_height(0x3000), 27);
        assert_eq!(scaled_height(0x100), 20);
        let sizes = [0x1000_u64, 0x1_0000, 0x20_0000, 0x400_0000, 0x4000_0000];
        let heights: Vec<i64> = sizes.iter().map(|&s| scaled_height(s)).collect();
        assert!(heights.windows(2).all(|w| w[0] < w[1]), "{heights:?}");
        assert_eq!(scaled_height(u64::MAX), scaled_height(1 << 40));
    }
}
