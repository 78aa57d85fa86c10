#!/usr/bin/env python3
"""scripts/bench.sh's trace parser and report, Python 3 standard library only.

  bench.py filter bench|interference HYP_ELF GUEST_ELF
      prints QEMU's -dfilter ranges for the traced run
  bench.py trace bench|interference LOG HYP_ELF GUEST_ELF CONFIG RESULT filtered|full
      reads the -d exec,nochain trace at LOG (a FIFO in bench.sh), writes the
      figures to RESULT (JSON); exit status 3: take the trace again, full
  bench.py report OUT ROOT
      checks the runs in OUT, prints the table and writes OUT/report.json,
      OUT/report.md and OUT/report.svg
  bench.py budget REPORT_JSON BUDGET_TOML
      fails, naming each, if a figure is above its budget (see budget())

The ELFs are read with the aarch64-linux-gnu binutils (nm, readelf, objdump,
size). tests/bench_trace.rs runs the parser on a recorded trace.
"""
import glob, json, os, re, subprocess, sys, tomllib

def fail(message):
    print(f"bench.sh: {message}", file=sys.stderr)
    sys.exit(1)

def symbols(elf, demangle=False):
    """name -> (address, size) of the functions and labels of an ELF."""
    args = ["aarch64-linux-gnu-nm", "-S"] + (["-C"] if demangle else []) + [elf]
    table = {}
    for line in subprocess.run(args, capture_output=True, text=True, check=True).stdout.splitlines():
        m = re.match(r"([0-9a-f]+) (?:([0-9a-f]+) )?([tTwW]) (.*)$", line)
        if m:
            table.setdefault(m.group(4), (int(m.group(1), 16), int(m.group(2) or "0", 16)))
    return table

def executable_ranges(elf):
    """[start, end) of the ELF's executable LOAD segments."""
    out = subprocess.run(["aarch64-linux-gnu-readelf", "-lW", elf], capture_output=True, text=True, check=True).stdout
    ranges = []
    for line in out.splitlines():
        f = line.split()
        if f and f[0] == "LOAD" and "E" in f[6:-1]:
            ranges.append((int(f[2], 16), int(f[2], 16) + int(f[5], 16)))
    return ranges

# What the trace leaves out: the hypervisor's bulk boot work (demangled
# names; the partition memory's zeroing and cleaning, some 4 million
# instructions a partition, is inlined into Runtime::build). A window that
# calls one of them would be miscounted: the parser then says so and the
# trace is taken again without the filter.
EXCLUDED = ["memset", "rust_primary_main", "bulkhead::hyp::partitions::Runtime::build"]

def trace_filter(hyp_elf, guest_elf, guest_ranges=None):
    """-dfilter ranges: the hypervisor's code but the excluded functions,
    and the guest's executable segments (or `guest_ranges`)."""
    hyp = symbols(hyp_elf, demangle=True)
    cut = sorted(hyp[name] for name in EXCLUDED if name in hyp)
    ranges = []
    for start, end in executable_ranges(hyp_elf):
        for at, size in cut:
            if start <= at < end:
                if at > start:
                    ranges.append((start, at))
                start = at + size
        if end > start:
            ranges.append((start, end))
    ranges += executable_ranges(guest_elf) if guest_ranges is None else guest_ranges
    return ",".join(f"0x{a:x}..0x{b - 1:x}" for a, b in ranges)

def call_sites(hyp_elf):
    """Addresses of direct branches to the excluded functions."""
    hyp = symbols(hyp_elf, demangle=True)
    targets = {hyp[name][0] for name in EXCLUDED if name in hyp}
    out = subprocess.run(["aarch64-linux-gnu-objdump", "-d", hyp_elf], capture_output=True, text=True, check=True).stdout
    pattern = re.compile(r"^\s*([0-9a-f]+):\s+[0-9a-f]{8}\s+bl?\s+([0-9a-f]+) <")
    return {int(m.group(1), 16) for m in map(pattern.match, out.splitlines())
            if m and int(m.group(2), 16) in targets}

# Guest handlers that tell which interrupt a window delivered.
HANDLERS = {
    "bench_irq::on_bench_sgi": "sgi",
    "guest_lib::timer::on_interrupt": "timer",
    "bench_irq::on_rtc": "rtc",
}

def victim_ranges(victim_elf):
    """What of the interference victim the trace keeps: its samplers, the
    function it sleeps in between them (so that the instruction before each
    EL2 entry on its CPU is always in the trace) and its IRQ vector."""
    gsym = symbols(victim_elf, demangle=True)
    ranges = [(at, at + size) for name, (at, size) in gsym.items()
              if re.match(r"bench_victim::(sample_[a-z0-9_]+|sleep_until)$", name)]
    irq = symbols(victim_elf)["guest_lib_vectors"][0] + 0x280
    return sorted(ranges + [(irq, irq + 0x80)])

def replay(log, execute):
    """Calls execute(cpu, pc) for each instruction of the -d exec,nochain
    trace at `log` (one instruction per block), in order."""
    mismatched = 0
    pending = None
    with open(log, "rb") as lines:
        for line in lines:
            if line.startswith(b"Trace "):
                if pending:
                    execute(*pending)
                cpu = int(line[6:line.index(b":")])
                pc = int(line[line.index(b"[") + 1:].split(b"/")[1], 16)
                pending = (cpu, pc)
            elif line.startswith(b"Stopped execution"):
                # The block just logged was not executed (icount budget or
                # an interrupt): forget it.
                m = re.search(rb"\[([0-9a-f]+)\]", line)
                if pending and m and int(m.group(1), 16) != pending[1]:
                    mismatched += 1
                pending = None
    if pending:
        execute(*pending)
    if mismatched:
        fail(f"{log}: {mismatched} 'Stopped execution' lines name another block than the one logged before them")

def irq_windows(log, hyp_elf, guest_elf, filtered, handlers=None):
    """The trace's deliveries, per CPU, from the hypervisor's EL2 IRQ vector
    entry to the guest's IRQ vector: [cpu, instructions, contaminated,
    kind, guest instructions before the vector, the instruction the CPU ran
    before the EL2 entry]; kind is the first of `handlers` (address ->
    kind) the CPU runs after the vector. And how many times each
    (CPU, instruction before) entered EL2 from the guest, for any reason."""
    hyp = symbols(hyp_elf)
    el2_irq = hyp["el2_vectors"][0] + 0x480      # lower EL, AArch64, IRQ
    lower_el = {hyp["el2_vectors"][0] + 0x400 + 0x80 * i for i in range(4)}  # sync, IRQ, FIQ, SError
    guest_irq = symbols(guest_elf)["guest_lib_vectors"][0] + 0x280  # current EL, SP_ELx, IRQ
    guest_ranges = executable_ranges(guest_elf)
    handlers = handlers or {}
    sites = call_sites(hyp_elf) if filtered else set()
    count = {}        # instructions executed so far, per CPU
    last = {}         # the instruction each CPU executed last
    window = {}       # CPU -> [start index, contaminated, guest instructions, last]
    unclassified = {} # CPU -> index in `windows` of its last window
    windows = []
    entries = {}

    def execute(cpu, pc):
        n = count.get(cpu, 0) + 1
        count[cpu] = n
        before = last.get(cpu)
        last[cpu] = pc
        if pc in lower_el:
            entries[cpu, before] = entries.get((cpu, before), 0) + 1
        if pc == el2_irq:
            window[cpu] = [n, False, 0, before]
            unclassified.pop(cpu, None)
            return
        if cpu in window:
            if pc == guest_irq:
                begin, dirty, in_guest, entered_from = window.pop(cpu)
                unclassified[cpu] = len(windows)
                windows.append([cpu, n - begin, dirty, None, in_guest, entered_from])
                return
            if any(a <= pc < b for a, b in guest_ranges):
                # Back in the guest before its vector: a guest that waited
                # with IRQs masked unmasks first (counted, and shown apart).
                window[cpu][2] += 1
            elif pc in sites:
                window[cpu][1] = True
        if cpu in unclassified and pc in handlers:
            windows[unclassified.pop(cpu)][3] = handlers[pc]

    replay(log, execute)
    return windows, entries

def clean(found, what):
    """Exits with status 3 (take the trace again without the filter) if a
    window of `found` calls what the filter leaves out."""
    if any(w[2] for w in found):
        print(f"bench.sh: a {what} window calls {'/'.join(EXCLUDED)}, which the trace filter leaves out", file=sys.stderr)
        sys.exit(3)

# A latency figure's keys: over its samples.
SPREAD = ("min", "median", "max")

def spread(values):
    """min, median (the upper one of an even count, as the guests take it) and max."""
    values = sorted(values)
    return values[0], values[len(values) // 2], values[-1]

def trace(log, hyp_elf, guest_elf, config, result, filtered):
    gsym = symbols(guest_elf, demangle=True)
    handlers = {}
    for name, kind in HANDLERS.items():
        hits = [at for sym, (at, _) in gsym.items() if sym == name or sym.startswith(name + "::")]
        if not hits:
            fail(f"no symbol {name} in {guest_elf}")
        handlers[hits[0]] = kind
    windows, _ = irq_windows(log, hyp_elf, guest_elf, filtered, handlers)
    cpus = tomllib.load(open(config, "rb"))["partition"][0]["cpus"]
    figures = {}
    for name, kind, cpu in [("timer_el2_to_vector", "timer", cpus[0]),
                            ("sgi_target_el2_to_vector", "sgi", cpus[1]),
                            ("passthrough_el2_to_vector", "rtc", cpus[0])]:
        found = [w for w in windows if w[0] == cpu and w[3] == kind]
        if not found:
            fail(f"{log}: no {kind} interrupt delivered on CPU {cpu} in the trace")
        clean(found, kind)
        best = min(found, key=lambda w: w[1])
        figures[name] = dict(zip(SPREAD, spread(w[1] for w in found)))
        print(f"trace: {name}: {len(found)} deliveries on CPU {cpu},"
              f" min/median/max {'/'.join(str(figures[name][k]) for k in SPREAD)}"
              f" instructions; the shortest has {best[4]} guest instructions before the vector", file=sys.stderr)
    json.dump(figures, open(result, "w"))

def interference_trace(log, hyp_elf, victim_elf, config, result, filtered):
    """Per aggressor, the victim CPU's windows whose EL2 entry interrupted
    that phase's sampler: {aggressor: [samples, min, median, max, EL2
    entries]}, the last counting every entry to EL2 from the sampler, for
    whatever reason (one per sample when nothing else comes to its CPU)."""
    samplers = {name.split("::sample_")[1]: (at, at + size)
                for name, (at, size) in symbols(victim_elf, demangle=True).items()
                if name.startswith("bench_victim::sample_")}
    if not samplers:
        fail(f"no bench_victim::sample_* functions in {victim_elf}")
    partitions = tomllib.load(open(config, "rb"))["partition"]
    cpu = next(p["cpus"][0] for p in partitions if p["name"] == "victim")
    windows, entries = irq_windows(log, hyp_elf, victim_elf, filtered)
    windows = [w for w in windows if w[0] == cpu]
    figures = {}
    for phase, (a, b) in samplers.items():
        found = [w for w in windows if w[5] is not None and a <= w[5] < b]
        if not found:
            fail(f"{log}: no timer interrupt delivered to the victim's {phase} sampler on CPU {cpu}")
        clean(found, phase)
        exits = sum(k for (c, before), k in entries.items() if c == cpu and before is not None and a <= before < b)
        figures[phase] = [len(found), *spread(w[1] for w in found), exits]
        print(f"trace: interference {phase}: {len(found)} deliveries on CPU {cpu},"
              f" min/median/max {'/'.join(map(str, figures[phase][1:4]))} instructions,"
              f" {max(w[4] for w in found)} guest instructions at most before the vector,"
              f" {exits} entries to EL2", file=sys.stderr)
    json.dump(figures, open(result, "w"))

def figures_of(log):
    """The guest's `bench: name=value` lines, in order; value None for `-`."""
    figures = {}
    for line in open(log, errors="replace"):
        m = re.search(r"bench: ([a-z0-9_]+)=(\S+)\s*$", line)
        if m:
            value = m.group(2)
            if value == "-":
                figures[m.group(1)] = None
            elif "/" in value:
                # A latency: min/median/max over the guest's samples.
                figures[m.group(1)] = dict(zip(SPREAD, map(int, value.split("/"))))
            else:
                figures[m.group(1)] = float(value) if "." in value else int(value)
    if not figures or not any(line.rstrip().endswith("bench: done") for line in open(log, errors="replace")):
        fail(f"{log}: the guest did not finish (no 'bench: done')")
    return figures

def agree(what, first, second):
    for name in sorted(set(first) | set(second)):
        if first.get(name, "missing") != second.get(name, "missing"):
            fail(f"figure {name} differs between the two {what} runs: {first.get(name, 'missing')} vs {second.get(name, 'missing')}")

def section_sizes(elf):
    out = subprocess.run(["aarch64-linux-gnu-size", "-A", elf], capture_output=True, text=True, check=True).stdout
    sizes = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) == 3 and f[0].startswith("."):
            sizes[f[0]] = int(f[1])
    return sizes

def guest_blobs(elf, config_rs, blob_dir):
    """Bytes of the guest images and device trees the build embedded."""
    data = open(elf, "rb").read()
    total = 0
    names = re.findall(r'"/([^"]+)"\)\)', open(config_rs).read())
    if not names:
        fail(f"{config_rs}: no embedded blobs found")
    for name in names:
        blob = open(os.path.join(blob_dir, "blob-" + name), "rb").read()
        if data.find(blob) < 0:
            fail(f"{name} is not inside {elf}: the build changed under bench.sh; run it again")
        total += len(blob)
    return total

def lines_of_code(src):
    """Non-blank, non-comment lines of src/**/*.rs and *.S, each .rs file up
    to its #[cfg(test)] module, without src/vgic/regs/tests.rs."""
    total = 0
    for path in sorted(glob.glob(os.path.join(src, "**", "*.rs"), recursive=True) +
                       glob.glob(os.path.join(src, "**", "*.S"), recursive=True)):
        if os.path.relpath(path, src) == os.path.join("vgic", "regs", "tests.rs"):
            continue
        lines = open(path).read().splitlines()
        in_block = False
        for i, line in enumerate(lines):
            text = line.strip()
            if path.endswith(".rs") and text == "#[cfg(test)]":
                rest = [l.strip() for l in lines[i + 1:] if l.strip()]
                if rest and re.match(r"(pub(\([a-z]+\))? )?mod ", rest[0]):
                    break
            if in_block:
                if "*/" not in text:
                    continue
                in_block = False
                text = text.split("*/", 1)[1].strip()
            elif text.startswith("/*"):
                if "*/" in text[2:]:
                    text = text[2:].split("*/", 1)[1].strip()
                else:
                    in_block = True
                    continue
            if text and not text.startswith("//"):
                total += 1
    return total

UNITS = {"exits_per_ipi": "exits", "exits_per_ipi_sender": "exits",
         "traps_per_1000_mask_unmask": "traps"}
# Trace figures, placed after the guest figure they refine.
AFTER = {"timer_cval_to_handler": "timer_el2_to_vector",
         "sgi_target_wfi_to_vector": "sgi_target_el2_to_vector",
         "passthrough_irq_to_handler": "passthrough_el2_to_vector"}

def checked_runs(out, untraced, traced, what):
    """The guest figures of `untraced`-1/2.log and `traced`-1/2.log, which
    must all agree, and the trace figures of `traced`-1/2.json, which must
    agree with each other: (guest figures, trace figures)."""
    runs = [figures_of(f"{out}/{untraced}-{i}.log") for i in (1, 2)]
    logs = [figures_of(f"{out}/{traced}-{i}.log") for i in (1, 2)]
    traces = [json.load(open(f"{out}/{traced}-{i}.json")) for i in (1, 2)]
    agree(what, *runs)
    agree(f"traced {what}", *traces)
    for log in logs:
        if log != runs[0]:
            agree(f"{what} and traced {what}", runs[0], log)
    return runs[0], traces[0]

def interference_entries(out):
    """The interference benchmark's entries, checked: the victim's figures
    (two runs, and the two traced runs, alike), the trace's per aggressor,
    one window per sample, and a neighbour that kept to the schedule and
    did the same in both runs (and in both traced runs: with the trace,
    one instruction a block, the neighbour's cache phase runs differently,
    likely where QEMU does its broadcast TLB and instruction-cache
    maintenance; the victim's figures do not change)."""
    victim, traces = checked_runs(out, "interference", "interference-trace", "interference")
    neighbour = [re.findall(r"aggressor: .*", open(f"{out}/{name}.log", errors="replace").read())
                 for name in ("interference-1", "interference-2", "interference-trace-1", "interference-trace-2")]
    if neighbour[0] != neighbour[1] or neighbour[2] != neighbour[3]:
        fail("the neighbour's operations differ between two interference runs alike")
    log = open(f"{out}/interference-1.log", errors="replace").read()
    schedules = set(re.findall(r"(?:victim|aggressor): schedule (.*)", log))
    if len(schedules) != 1:
        fail(f"{out}/interference-1.log: the victim's and the aggressor's schedules differ: {sorted(schedules)}")
    margin = int(re.search(r"margin=(\d+)", schedules.pop()).group(1))
    samples = dict(re.findall(r"victim: ([a-z0-9_]+) samples=(\d+)", log))
    ops = {name: (int(n), int(late)) for name, n, late in
           re.findall(r"aggressor: ([a-z0-9_]+) ops=(\d+) late=(\d+)", log)}
    if "aggressor: done" not in log:
        fail(f"{out}/interference-1.log: the aggressor did not finish (no 'aggressor: done')")
    if list(samples) != list(ops) or sorted(samples) != sorted(traces):
        fail(f"{out}/interference-1.log: the victim's, the aggressor's and the trace's phases differ")
    entries = []
    for phase in samples:
        count, low, median, high, exits = traces[phase]
        n, late = ops[phase]
        if count != int(samples[phase]) or count < 200:
            fail(f"the trace has {count} deliveries in the {phase} phase, the victim took {samples[phase]} samples (at least 200)")
        if late >= margin or (n == 0) != (phase == "idle"):
            fail(f"the aggressor's {phase} phase: {n} operations, the last ended {late} ticks after the phase (margin {margin})")
        guest = victim[f"interference_{phase}_guest"]
        for name, value, unit in [("", dict(zip(SPREAD, (low, median, high))), "instructions"),
                                  ("_guest", guest, "ticks"), ("_samples", count, "samples"),
                                  ("_victim_el2_entries", exits, "entries"), ("_neighbour_ops", n, "operations")]:
            entries.append({"name": f"interference_{phase}{name}", "native": None, "bulkhead": value, "unit": unit})
    return entries

def is_spread(value):
    return isinstance(value, dict)

def headline(value):
    """A figure's headline: a spread's max, else the value itself."""
    return value["max"] if is_spread(value) else value

def report(out, root):
    native = [figures_of(f"{out}/native-{i}.log") for i in (1, 2)]
    agree("native", *native)
    native = native[0]
    bulkhead, traces = checked_runs(out, "bulkhead", "trace", "Bulkhead")
    if list(native) != list(bulkhead):
        fail("the native and the Bulkhead run printed different figures")
    entries = []
    for name in native:
        entries.append({"name": name, "native": native[name], "bulkhead": bulkhead[name],
                        "unit": UNITS.get(name, "instructions")})
        if name in AFTER:
            # Natively there is no EL2: the figure does not exist.
            entries.append({"name": AFTER[name], "native": None,
                            "bulkhead": traces[AFTER[name]], "unit": "instructions"})
    sizes = section_sizes(f"{out}/bench.elf")
    guests = guest_blobs(f"{out}/bench.elf", f"{out}/bulkhead_config.rs", out)
    image = {"image_text": sizes.get(".text", 0), "image_rodata": sizes.get(".rodata", 0),
             "image_data": sizes.get(".data", 0), "image_guests": guests}
    image["image_hypervisor"] = image["image_text"] + image["image_rodata"] + image["image_data"] - guests
    for name, value in image.items():
        entries.append({"name": name, "native": None, "bulkhead": value, "unit": "bytes"})
    entries.append({"name": "loc_src", "native": None, "bulkhead": lines_of_code(os.path.join(root, "src")),
                    "unit": "lines"})
    victim = interference_entries(out)
    gicv2 = gicv2_entries(out)
    grown = growth_entries(out)
    channels = channel_entries(out)
    json.dump(entries + victim + gicv2 + grown + channels, open(f"{out}/report.json", "w"), indent=2)
    svg(entries, gicv2, f"{out}/report.svg")

    table = open(f"{out}/report.md", "w")

    def row(text):
        print(text)
        table.write(text + "\n")

    def show(v):
        return "-" if v is None else f"{v:,}" if isinstance(v, int) else f"{v:g}"

    def compared(e, name):
        """Path, native max, Bulkhead max, min and median, overhead and
        ratio (of the maxima) cells of entry `e`."""
        path = name if e["unit"] == "instructions" else f"{name} ({e['unit']})"
        n, b = e["native"], e["bulkhead"]
        low, median = (show(b["min"]), show(b["median"])) if is_spread(b) else ("", "")
        n, b = (None if v is None else headline(v) for v in (n, b))
        overhead = show(b - n) if n is not None and b is not None else "-"
        ratio = "-" if not n or b is None else f"{b / n:,.0f}x" if b / n >= 100 else f"{b / n:.1f}x"
        return f"| {path} | {show(n)} | **{show(b)}** | {low} | {median} | {overhead} | {ratio} |"
    row("| path | native max | Bulkhead max | min | median | overhead | ratio |")
    row("|---|---:|---:|---:|---:|---:|---:|")
    for e in entries:
        row(compared(e, e["name"]))
    value = {e["name"]: e["bulkhead"] for e in victim}
    idle = value["interference_idle"]["max"]
    row("")
    row("| victim's timer beside (interference_*) | samples | EL2 IRQ entry -> vector max | min | median"
        " | max - idle max | EL2 entries | guest CVAL -> vector max | min | median (ticks) | neighbour ops |")
    row("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for phase in [e["name"][len("interference_"):] for e in victim
                  if e["unit"] == "instructions"]:
        el2, guest = value[f"interference_{phase}"], value[f"interference_{phase}_guest"]
        f = [value[f"interference_{phase}_samples"], el2["max"], el2["min"], el2["median"], el2["max"] - idle,
             value[f"interference_{phase}_victim_el2_entries"], guest["max"], guest["min"], guest["median"],
             value[f"interference_{phase}_neighbour_ops"]]
        row(f"| {phase} | {' | '.join(map(show, f))} |")
    v3 = {e["name"]: e["bulkhead"] for e in entries}
    row("")
    row("| GICv2 (QEMU virt, gic-version=2): path | native max | Bulkhead max | min | median | overhead | ratio"
        " | Bulkhead on GICv3 (max) |")
    row("|---|---:|---:|---:|---:|---:|---:|---:|")
    for e in gicv2:
        name = e["name"][len("gicv2_"):]
        on_v3 = v3.get(name)
        row(f"{compared(e, name)} {show(None if on_v3 is None else headline(on_v3))} |")
    row("")
    row("| channels between partitions | Bulkhead max | min | median | baseline: SGI inside a partition (max) |")
    row("|---|---:|---:|---:|---:|")
    value = {e["name"]: e for e in channels}
    for name, e in value.items():
        if name in CHANNEL_BASELINE.values():
            continue
        b = e["bulkhead"]
        cells = [b["max"], b["min"], b["median"]] if is_spread(b) else [b, None, None]
        base = value[CHANNEL_BASELINE[name]]["bulkhead"]["max"] if name in CHANNEL_BASELINE else None
        path = name if e["unit"] == "instructions" else f"{name} ({e['unit']})"
        row(f"| {path} | {' | '.join(show(c) if c is not None else '' for c in cells)}"
            f" | {show(base) if base is not None else '-'} |")
    row("")
    row("| growth | Bulkhead max | min | median |")
    row("|---|---:|---:|---:|")
    for e in grown:
        b = e["bulkhead"]
        cells = [b["max"], b["min"], b["median"]] if is_spread(b) else [b, None, None]
        row(f"| {e['name']} ({e['unit']}) | {' | '.join(show(c) if c is not None else '' for c in cells)} |")


def growth_entries(out):
    """The growth rows: the victim's timer in its first phase (`idle`) with
    1 to 4 partitions on the board, every neighbour busy through the
    victim's samples: the traced EL2 IRQ entry -> vector on its CPU, its
    own CVAL -> vector and its EL2 entries; its boot figure with 16 and 256
    MiB, and the difference per MiB. Each untraced run twice, agreeing, and
    with the traced one."""
    def reported(figures):
        return {name: figures[name] for name in ("boot_to_first_guest_instruction", "interference_idle_guest")}

    def run(config):
        # The two runs must agree on what the report takes from them: the
        # boot figure and the victim's first phase. (Its later phases run
        # beside idle neighbours and are not reported; their own ticks have
        # twice differed by one sample's 4 ticks between runs, which this
        # report does not need to hold.)
        pair = [figures_of(f"{out}/{config}-{i}.log") for i in (1, 2)]
        agree(config, *map(reported, pair))
        log = open(f"{out}/{config}-1.log", errors="replace").read()
        ops = re.findall(r"neighbour: ops=(\d+)", log)
        expected = int(config[-1]) - 1 if config.startswith("bench-growth-") else 0
        if len(ops) != expected:
            fail(f"{out}/{config}-1.log: {len(ops)} neighbours reported, not {expected}")
        if any(int(n) == 0 for n in ops):
            fail(f"{out}/{config}-1.log: a neighbour did nothing during the victim's samples: {ops}")
        return pair[0]
    entries = []
    for n in (1, 2, 3, 4):
        config = f"bench-growth-{n}"
        victim = run(config)
        agree(f"{config} and traced {config}", reported(victim),
              reported(figures_of(f"{out}/{config}-trace-1.log")))
        samples, low, median, high, exits = json.load(open(f"{out}/{config}-trace-1.json"))["idle"]
        log = open(f"{out}/{config}-1.log", errors="replace").read()
        window = re.search(r"victim: idle samples=(\d+) first=(\d+) last=(\d+)", log)
        if int(window.group(1)) != samples or samples < 200:
            fail(f"{config}: the trace has {samples} deliveries, the victim took {window.group(1)} samples")
        busy = re.findall(r"neighbour: ops=\d+ first=(\d+) last=(\d+)", log)
        if any(int(a) > int(window.group(2)) or int(b) < int(window.group(3)) for a, b in busy):
            fail(f"{config}: a neighbour was not busy through the victim's samples "
                 f"{window.group(2)}..{window.group(3)}: {busy}")
        entries += [{"name": f"growth_timer_partitions_{n}", "native": None,
                     "bulkhead": dict(zip(SPREAD, (low, median, high))), "unit": "instructions"},
                    {"name": f"growth_timer_partitions_{n}_guest", "native": None,
                     "bulkhead": victim["interference_idle_guest"], "unit": "ticks"},
                    {"name": f"growth_timer_partitions_{n}_victim_el2_entries", "native": None,
                     "bulkhead": exits, "unit": "entries"}]
        if n == 1:
            small = victim["boot_to_first_guest_instruction"]
    large = run("bench-boot-256")["boot_to_first_guest_instruction"]
    entries += [{"name": "growth_boot_16mib", "native": None, "bulkhead": small, "unit": "instructions"},
                {"name": "growth_boot_256mib", "native": None, "bulkhead": large, "unit": "instructions"},
                {"name": "growth_boot_per_mib", "native": None, "bulkhead": (large - small) // 240,
                 "unit": "instructions per MiB"}]
    return entries

# The channel rows and, for each, the like-for-like baseline inside one
# partition: the same code around a one-write SGI between its two vCPUs.
CHANNEL_BASELINE = {"doorbell_ring": "channel_sgi_send",
                    "doorbell_to_handler": "channel_sgi_to_handler",
                    "doorbell_wfi_to_handler": "channel_sgi_wfi_to_handler"}
CHANNEL_UNITS = {"ring_messages_per_million_instructions": "messages per million instructions",
                 "ring_doorbells_per_1000_messages": "doorbells per 1000 messages"}

def channel_entries(out):
    """The channel benchmark's rows (bench-channel.rs: a doorbell between
    two partitions, the same with an SGI inside one, a ring's throughput),
    its two runs agreeing."""
    pair = [figures_of(f"{out}/channel-{i}.log") for i in (1, 2)]
    agree("channels", *pair)
    figures = pair[0]
    expected = set(CHANNEL_BASELINE) | set(CHANNEL_BASELINE.values()) | set(CHANNEL_UNITS)
    if set(figures) != expected:
        fail(f"{out}/channel-1.log: figures {sorted(figures)}, not {sorted(expected)}")
    return [{"name": name, "native": None, "bulkhead": value,
             "unit": CHANNEL_UNITS.get(name, "instructions")} for name, value in figures.items()]

def svg(entries, gicv2, path):
    """report.svg: per latency path (instructions, a spread both natively
    and under Bulkhead), a bar to the native max and one to Bulkhead's max
    with its min marked, GICv3 and GICv2; hand-made SVG, one linear scale."""
    v2 = {e["name"][len("gicv2_"):]: e for e in gicv2}
    rows = [e for e in entries if e["unit"] == "instructions" and is_spread(e["bulkhead"])]
    top = max(max(e["bulkhead"]["max"], headline(v2[e["name"]]["bulkhead"]) if e["name"] in v2 else 0)
              for e in rows)
    scale = 10 ** len(str(top))
    scale = next(step for step in (scale // 10 * k for k in (1, 2, 5, 10)) if step >= top)
    label, width, bar, gap = 230, 560, 8, 6
    height = 50 + len(rows) * (3 * bar + gap)
    x = lambda v: label + v * width / scale
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label + width + 20}" height="{height + 20}"'
           f' font-family="sans-serif" font-size="11">',
           '<rect width="100%" height="100%" fill="white"/>',
           f'<text x="{label}" y="14">instructions (max; | = min), -icount, cortex-a53</text>']
    for k, colour, name in [(0, "#999999", "native"), (1, "#1f77b4", "Bulkhead, GICv3"),
                            (2, "#ff7f0e", "Bulkhead, GICv2")]:
        out.append(f'<rect x="{label + 170 * k}" y="22" width="10" height="8" fill="{colour}"/>'
                   f'<text x="{label + 170 * k + 14}" y="30">{name}</text>')
    for tick in range(0, scale + 1, scale // 5):
        out.append(f'<line x1="{x(tick):.1f}" y1="38" x2="{x(tick):.1f}" y2="{height}" stroke="#dddddd"/>'
                   f'<text x="{x(tick):.1f}" y="{height + 14}" text-anchor="middle">{tick}</text>')
    y = 42
    for e in rows:
        out.append(f'<text x="{label - 6}" y="{y + 2 * bar}" text-anchor="end">{e["name"]}</text>')
        bars = [("#999999", e["native"]), ("#1f77b4", e["bulkhead"]),
                ("#ff7f0e", v2[e["name"]]["bulkhead"] if e["name"] in v2 else None)]
        for i, (colour, value) in enumerate(bars):
            if not is_spread(value):
                continue
            top_y = y + i * bar
            out.append(f'<rect x="{label}" y="{top_y}" width="{x(value["max"]) - label:.1f}" height="{bar - 1}"'
                       f' fill="{colour}"><title>{e["name"]}: {value["min"]}/{value["median"]}/{value["max"]}'
                       f'</title></rect>')
            out.append(f'<line x1="{x(value["min"]):.1f}" y1="{top_y}" x2="{x(value["min"]):.1f}"'
                       f' y2="{top_y + bar - 1}" stroke="black"/>')
            out.append(f'<text x="{x(value["max"]) + 3:.1f}" y="{top_y + bar - 1}" font-size="8">'
                       f'{value["max"]}</text>')
        y += 3 * bar + gap
    out.append("</svg>")
    open(path, "w").write("\n".join(out) + "\n")


# Units of the figures a budget holds besides the spreads (whose max it
# holds) and the hypervisor's image size.
HELD = ("instructions", "ticks", "exits", "traps", "entries")

def unheld(name):
    """The growth victim's own CVAL -> vector ticks beside busy neighbours
    (growth_timer_partitions_<n>_guest) are reported but not held: under
    -icount QEMU runs every CPU in one thread, round robin, so a neighbour's
    turn between the expiry and the vector lands in the victim's figure and
    moves with any change to the neighbours' exit paths (30 -> 881 -> 1,327
    beside three). What the hypervisor does for the victim is held: the
    traced figure, growth_timer_partitions_<n>, EL2 entry -> vector on the
    victim's CPU, and its EL2 entries."""
    return name.startswith("growth_timer_partitions_") and name.endswith("_guest")

def budget(report_json, budget_toml):
    """Fails, naming each, if a figure of report.json is above its budget:
    a latency's max (Bulkhead's), an exit count, the hypervisor's image
    size; or if such a figure has no budget, or a budget no figure."""
    limits = tomllib.load(open(budget_toml, "rb"))["budget"]
    checked = {}
    for e in json.load(open(report_json)):
        b = e["bulkhead"]
        if b is None:
            continue
        if unheld(e["name"]):
            continue
        if is_spread(b) or e["unit"] in HELD or e["name"] == "image_hypervisor":
            checked[e["name"]] = (headline(b), e["unit"])
    problems = []
    for name, (value, unit) in checked.items():
        if name not in limits:
            problems.append(f"{name} ({value} {unit}) has no budget in {budget_toml}")
        elif value > limits[name]:
            what = "max " if unit in ("instructions", "ticks") else ""
            problems.append(f"{name}: {what}{value:g} {unit}, above its budget of {limits[name]:g}")
    problems += [f"{budget_toml} budgets {name}, which the report does not have" for name in limits
                 if name not in checked]
    for problem in problems:
        print(f"bench budget: {problem}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"bench budget: {len(checked)} figures within {budget_toml}", file=sys.stderr)


def gicv2_entries(out):
    """The GICv2 runs' figures (native and Bulkhead, each run twice and
    agreeing), named gicv2_<figure>."""
    runs = {}
    for mode in ("native", "bulkhead"):
        pair = [figures_of(f"{out}/gicv2-{mode}-{i}.log") for i in (1, 2)]
        agree(f"GICv2 {mode}", *pair)
        runs[mode] = pair[0]
    if list(runs["native"]) != list(runs["bulkhead"]):
        fail("the GICv2 native and Bulkhead runs printed different figures")
    return [{"name": f"gicv2_{name}", "native": runs["native"][name], "bulkhead": runs["bulkhead"][name],
             "unit": UNITS.get(name, "instructions")} for name in runs["native"]]

if __name__ == "__main__":
    # filter|trace bench|interference ...: the interrupt benchmark's trace,
    # or the interference benchmark's (the guest ELF is the victim's).
    interference = sys.argv[2:3] == ["interference"]
    if sys.argv[1] == "filter":
        hyp_elf, guest_elf = sys.argv[3:5]
        print(trace_filter(hyp_elf, guest_elf, victim_ranges(guest_elf) if interference else None))
    elif sys.argv[1] == "trace":
        (interference_trace if interference else trace)(*sys.argv[3:8], filtered=sys.argv[8] == "filtered")
    elif sys.argv[1] == "report":
        report(*sys.argv[2:4])
    elif sys.argv[1] == "budget":
        budget(*sys.argv[2:4])
