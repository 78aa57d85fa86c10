//! `guest-lib/include/bulkhead.h` against this crate: a small C program
//! includes the header, prints every constant, size and offset it defines,
//! and exercises the mask/unmask helpers on a page in host memory (with the
//! hypercall stubbed); the test compiles it with the system C compiler
//! (`cc`, or `$CC`), runs it and compares each printed value with the Rust
//! definition. Any disagreement, missing or unknown name fails the test.
//! The layout uses fixed-width types only, so the host's compiler sees the
//! same layout as an AArch64 guest's.
//!
//! The header is also compiled for AArch64 with its hypercall helpers
//! (`aarch64-linux-gnu-gcc`, or `$BULKHEAD_AARCH64_CC`; scripts/setup.sh
//! installs it), and the mask helpers must come out as plain byte stores
//! (`strb`, and `stlrb` to unmask), with no exclusive loop and no call.

use std::collections::BTreeMap;

/// The header must compile cleanly as strict C11, for the host and AArch64.
const STRICT_C: [&str; 6] = [
    "-std=c11",
    "-Wall",
    "-Wextra",
    "-Wpedantic",
    "-Werror",
    "-O2",
];
use std::mem::{offset_of, size_of, size_of_val};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU8, AtomicU32};

use bulkhead_abi::control::{self, ControlPage};
use bulkhead_abi::ring::{self, RingHeader, Slot};
use bulkhead_abi::{ABI_VERSION, CONSOLE_WRITE_MAX, Counter, MAGIC, Status, call, doorbell};

const PROGRAM: &str = r#"
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static unsigned int unmask_calls;
#define BULKHEAD_IRQ_UNMASK_CALL() ((void)unmask_calls++)
#include "bulkhead.h"

#define U(name, value) printf("%s %" PRIu64 "\n", name, (uint64_t)(value))
#define S(name, value) printf("%s %" PRId64 "\n", name, (int64_t)(value))

static struct bulkhead_control_page page;

/* The helpers' behaviour; prints 1 if every check holds, else the line. */
static int behaviour(void)
{
	memset(&page, 0, sizeof page);
	page.mask[2] = 1; /* another vCPU, masked */
	if (bulkhead_irq_mask(&page, 1) != 0 || page.mask[1] != BULKHEAD_CP_MASKED ||
	    page.mask[2] != 1 || page.mask[0] != 0)
		return __LINE__;
	if (!bulkhead_irq_is_masked(&page, 1) || bulkhead_irq_is_masked(&page, 0))
		return __LINE__;
	if (bulkhead_irq_mask(&page, 1) == 0 || page.mask[1] != BULKHEAD_CP_MASKED) /* nested */
		return __LINE__;
	if (bulkhead_irq_unmask(&page, 1) != 0 || page.mask[1] != 0 || page.mask[2] != 1 ||
	    unmask_calls != 0)
		return __LINE__;
	bulkhead_irq_mask(&page, 1);
	page.pending[2] = BULKHEAD_CP_PENDING_DEFERRED; /* someone else's: no call */
	page.pending[1] = 0xfe; /* the guest's own bits: no call */
	if (bulkhead_irq_unmask(&page, 1) != 0 || unmask_calls != 0)
		return __LINE__;
	bulkhead_irq_mask(&page, 1);
	page.pending[1] = BULKHEAD_CP_PENDING_DEFERRED;
	if (bulkhead_irq_unmask(&page, 1) != 1 || page.mask[1] != 0 || unmask_calls != 1)
		return __LINE__;
	/* The flag word as one 64-bit little-endian word: byte n is vCPU n. */
	if (bulkhead_irq_mask(&page, 7) != 0 ||
	    ((const unsigned char *)&page)[BULKHEAD_CP_OFFSET_MASK + 7] != BULKHEAD_CP_MASKED ||
	    ((const unsigned char *)&page)[BULKHEAD_CP_OFFSET_MASK + 7 + BULKHEAD_CP_PENDING_FROM_MASK] != 0)
		return __LINE__;
	return 1;
}

int main(void)
{
	U("cp.size", sizeof(struct bulkhead_control_page));
	U("cp.offsetof.magic", offsetof(struct bulkhead_control_page, magic));
	U("cp.offsetof.version", offsetof(struct bulkhead_control_page, version));
	U("cp.offsetof.mask", offsetof(struct bulkhead_control_page, mask));
	U("cp.offsetof.pending", offsetof(struct bulkhead_control_page, pending));
	U("cp.offsetof.reserved", offsetof(struct bulkhead_control_page, reserved));
	U("cp.sizeof.magic", sizeof page.magic);
	U("cp.sizeof.version", sizeof page.version);
	U("cp.sizeof.mask", sizeof page.mask);
	U("cp.sizeof.mask_byte", sizeof page.mask[0]);
	U("cp.sizeof.pending", sizeof page.pending);
	U("cp.sizeof.pending_byte", sizeof page.pending[0]);
	U("cp.sizeof.reserved_word", sizeof page.reserved[0]);
	U("cp.reserved_words", sizeof page.reserved / sizeof page.reserved[0]);
	U("BULKHEAD_CP_RESERVED_WORDS", BULKHEAD_CP_RESERVED_WORDS);
	U("BULKHEAD_CP_SIZE", BULKHEAD_CP_SIZE);
	U("BULKHEAD_CP_OFFSET_MAGIC", BULKHEAD_CP_OFFSET_MAGIC);
	U("BULKHEAD_CP_OFFSET_VERSION", BULKHEAD_CP_OFFSET_VERSION);
	U("BULKHEAD_CP_OFFSET_MASK", BULKHEAD_CP_OFFSET_MASK);
	U("BULKHEAD_CP_OFFSET_PENDING", BULKHEAD_CP_OFFSET_PENDING);
	U("BULKHEAD_CP_PENDING_FROM_MASK", BULKHEAD_CP_PENDING_FROM_MASK);
	U("BULKHEAD_CP_VCPUS", BULKHEAD_CP_VCPUS);
	U("BULKHEAD_CP_MASKED", BULKHEAD_CP_MASKED);
	U("BULKHEAD_CP_PENDING_DEFERRED", BULKHEAD_CP_PENDING_DEFERRED);
	U("BULKHEAD_CP_MAGIC", BULKHEAD_CP_MAGIC);
	U("BULKHEAD_CP_VERSION", BULKHEAD_CP_VERSION);

	U("BULKHEAD_CALL_VERSION", BULKHEAD_CALL_VERSION);
	U("BULKHEAD_CALL_CONSOLE_WRITE", BULKHEAD_CALL_CONSOLE_WRITE);
	U("BULKHEAD_CALL_VCPU_INFO", BULKHEAD_CALL_VCPU_INFO);
	U("BULKHEAD_CALL_PARTITION_EXIT", BULKHEAD_CALL_PARTITION_EXIT);
	U("BULKHEAD_CALL_EXIT_COUNT", BULKHEAD_CALL_EXIT_COUNT);
	U("BULKHEAD_CALL_IRQ_UNMASK", BULKHEAD_CALL_IRQ_UNMASK);
	U("BULKHEAD_CALL_DEFER_STATS", BULKHEAD_CALL_DEFER_STATS);
	U("BULKHEAD_CALL_DOORBELL", BULKHEAD_CALL_DOORBELL);
	U("BULKHEAD_DOORBELL_SIZE", BULKHEAD_DOORBELL_SIZE);
	U("BULKHEAD_DOORBELL_RING", BULKHEAD_DOORBELL_RING);
	U("BULKHEAD_DOORBELL_CHANNELS", BULKHEAD_DOORBELL_CHANNELS);

	U("ring.size", sizeof(struct bulkhead_ring));
	U("ring.offsetof.magic", offsetof(struct bulkhead_ring, magic));
	U("ring.offsetof.version", offsetof(struct bulkhead_ring, version));
	U("ring.offsetof.slot_size", offsetof(struct bulkhead_ring, slot_size));
	U("ring.offsetof.slots", offsetof(struct bulkhead_ring, slots));
	U("ring.offsetof.head", offsetof(struct bulkhead_ring, head));
	U("ring.offsetof.tail", offsetof(struct bulkhead_ring, tail));
	U("ring.offsetof.wants_doorbell", offsetof(struct bulkhead_ring, wants_doorbell));
	U("ring.sizeof.head", sizeof(((struct bulkhead_ring *)0)->head));
	U("ring.sizeof.wants_doorbell", sizeof(((struct bulkhead_ring *)0)->wants_doorbell));
	U("slot.size", sizeof(struct bulkhead_ring_slot));
	U("slot.offsetof.len", offsetof(struct bulkhead_ring_slot, len));
	U("slot.offsetof.data", offsetof(struct bulkhead_ring_slot, data));
	U("slot.sizeof.data", sizeof(((struct bulkhead_ring_slot *)0)->data));
	U("BULKHEAD_RING_MAGIC", BULKHEAD_RING_MAGIC);
	U("BULKHEAD_RING_VERSION", BULKHEAD_RING_VERSION);
	U("BULKHEAD_RING_SLOT_SIZE", BULKHEAD_RING_SLOT_SIZE);
	U("BULKHEAD_RING_MESSAGE_MAX", BULKHEAD_RING_MESSAGE_MAX);
	U("BULKHEAD_RING_HEADER_SIZE", BULKHEAD_RING_HEADER_SIZE);
	U("BULKHEAD_RING_OFFSET_MAGIC", BULKHEAD_RING_OFFSET_MAGIC);
	U("BULKHEAD_RING_OFFSET_VERSION", BULKHEAD_RING_OFFSET_VERSION);
	U("BULKHEAD_RING_OFFSET_SLOT_SIZE", BULKHEAD_RING_OFFSET_SLOT_SIZE);
	U("BULKHEAD_RING_OFFSET_SLOTS", BULKHEAD_RING_OFFSET_SLOTS);
	U("BULKHEAD_RING_OFFSET_HEAD", BULKHEAD_RING_OFFSET_HEAD);
	U("BULKHEAD_RING_OFFSET_TAIL", BULKHEAD_RING_OFFSET_TAIL);
	U("BULKHEAD_RING_OFFSET_WANTS_DOORBELL", BULKHEAD_RING_OFFSET_WANTS_DOORBELL);
	U("BULKHEAD_MAGIC", BULKHEAD_MAGIC);
	U("BULKHEAD_ABI_VERSION", BULKHEAD_ABI_VERSION);
	U("BULKHEAD_CONSOLE_WRITE_MAX", BULKHEAD_CONSOLE_WRITE_MAX);

	S("BULKHEAD_SUCCESS", BULKHEAD_SUCCESS);
	S("BULKHEAD_NOT_SUPPORTED", BULKHEAD_NOT_SUPPORTED);
	S("BULKHEAD_INVALID_PARAMETERS", BULKHEAD_INVALID_PARAMETERS);
	S("BULKHEAD_DENIED", BULKHEAD_DENIED);
	S("BULKHEAD_ALREADY_ON", BULKHEAD_ALREADY_ON);
	S("BULKHEAD_ON_PENDING", BULKHEAD_ON_PENDING);
	S("BULKHEAD_INVALID_ADDRESS", BULKHEAD_INVALID_ADDRESS);

	U("BULKHEAD_COUNTER_IRQ", BULKHEAD_COUNTER_IRQ);
	U("BULKHEAD_COUNTER_SGI_TRAP", BULKHEAD_COUNTER_SGI_TRAP);
	U("BULKHEAD_COUNTER_HVC", BULKHEAD_COUNTER_HVC);
	U("BULKHEAD_COUNTER_SMC", BULKHEAD_COUNTER_SMC);
	U("BULKHEAD_COUNTER_DATA_ABORT", BULKHEAD_COUNTER_DATA_ABORT);
	U("BULKHEAD_COUNTER_SYSREG", BULKHEAD_COUNTER_SYSREG);
	U("BULKHEAD_COUNTER_OTHER", BULKHEAD_COUNTER_OTHER);
	U("BULKHEAD_COUNTER_SGI_REFUSED", BULKHEAD_COUNTER_SGI_REFUSED);
	U("BULKHEAD_COUNTER_EXTERNAL_ABORT", BULKHEAD_COUNTER_EXTERNAL_ABORT);
	U("BULKHEAD_COUNTER_DOORBELL_REFUSED", BULKHEAD_COUNTER_DOORBELL_REFUSED);
	U("BULKHEAD_COUNTER_COUNT", BULKHEAD_COUNTER_COUNT);

	S("behaviour", behaviour());
	return 0;
}
"#;

/// Every name the program prints, with the value the Rust side defines.
fn expected() -> BTreeMap<String, i128> {
    let mut map = BTreeMap::new();
    let mut put = |name: &str, value: i128| {
        assert!(
            map.insert(name.to_string(), value).is_none(),
            "{name} twice"
        );
    };
    let page = |offset: usize| offset as i128;
    put("cp.size", size_of::<ControlPage>() as i128);
    put("cp.offsetof.magic", page(offset_of!(ControlPage, magic)));
    put(
        "cp.offsetof.version",
        page(offset_of!(ControlPage, version)),
    );
    put("cp.offsetof.mask", page(offset_of!(ControlPage, mask)));
    put(
        "cp.offsetof.pending",
        page(offset_of!(ControlPage, pending)),
    );
    put(
        "cp.offsetof.reserved",
        page(offset_of!(ControlPage, reserved)),
    );
    // The field types, through a value of each.
    let fields = ControlPage {
        magic: 0,
        version: 0,
        mask: [const { AtomicU8::new(0) }; control::VCPUS],
        pending: [const { AtomicU8::new(0) }; control::VCPUS],
        reserved: [0; control::SIZE / 4 - 6],
    };
    put("cp.sizeof.magic", size_of_val(&fields.magic) as i128);
    put("cp.sizeof.version", size_of_val(&fields.version) as i128);
    put("cp.sizeof.mask", size_of_val(&fields.mask) as i128);
    put("cp.sizeof.mask_byte", size_of_val(&fields.mask[0]) as i128);
    put("cp.sizeof.pending", size_of_val(&fields.pending) as i128);
    put(
        "cp.sizeof.pending_byte",
        size_of_val(&fields.pending[0]) as i128,
    );
    put(
        "cp.sizeof.reserved_word",
        size_of_val(&fields.reserved[0]) as i128,
    );
    let reserved_words = fields.reserved.len();
    put("cp.reserved_words", reserved_words as i128);
    put("BULKHEAD_CP_RESERVED_WORDS", reserved_words as i128);
    put("BULKHEAD_CP_SIZE", control::SIZE as i128);
    put("BULKHEAD_CP_OFFSET_MAGIC", control::OFFSET_MAGIC as i128);
    put(
        "BULKHEAD_CP_OFFSET_VERSION",
        control::OFFSET_VERSION as i128,
    );
    put("BULKHEAD_CP_OFFSET_MASK", control::OFFSET_MASK as i128);
    put(
        "BULKHEAD_CP_OFFSET_PENDING",
        control::OFFSET_PENDING as i128,
    );
    put(
        "BULKHEAD_CP_PENDING_FROM_MASK",
        control::PENDING_FROM_MASK as i128,
    );
    put("BULKHEAD_CP_VCPUS", control::VCPUS as i128);
    put("BULKHEAD_CP_MASKED", control::MASKED as i128);
    put(
        "BULKHEAD_CP_PENDING_DEFERRED",
        control::PENDING_DEFERRED as i128,
    );
    put("BULKHEAD_CP_MAGIC", control::MAGIC as i128);
    put("BULKHEAD_CP_VERSION", control::VERSION as i128);

    put("BULKHEAD_CALL_VERSION", call::VERSION as i128);
    put("BULKHEAD_CALL_CONSOLE_WRITE", call::CONSOLE_WRITE as i128);
    put("BULKHEAD_CALL_VCPU_INFO", call::VCPU_INFO as i128);
    put("BULKHEAD_CALL_PARTITION_EXIT", call::PARTITION_EXIT as i128);
    put("BULKHEAD_CALL_EXIT_COUNT", call::EXIT_COUNT as i128);
    put("BULKHEAD_CALL_IRQ_UNMASK", call::IRQ_UNMASK as i128);
    put("BULKHEAD_CALL_DEFER_STATS", call::DEFER_STATS as i128);
    put("BULKHEAD_CALL_DOORBELL", call::DOORBELL as i128);
    put("BULKHEAD_DOORBELL_SIZE", doorbell::SIZE as i128);
    put("BULKHEAD_DOORBELL_RING", doorbell::RING as i128);
    put("BULKHEAD_DOORBELL_CHANNELS", doorbell::CHANNELS as i128);

    let n = |value: usize| value as i128;
    put("ring.size", n(size_of::<RingHeader>()));
    put("ring.offsetof.magic", n(offset_of!(RingHeader, magic)));
    put("ring.offsetof.version", n(offset_of!(RingHeader, version)));
    put(
        "ring.offsetof.slot_size",
        n(offset_of!(RingHeader, slot_size)),
    );
    put("ring.offsetof.slots", n(offset_of!(RingHeader, slots)));
    put("ring.offsetof.head", n(offset_of!(RingHeader, head)));
    put("ring.offsetof.tail", n(offset_of!(RingHeader, tail)));
    put(
        "ring.offsetof.wants_doorbell",
        n(offset_of!(RingHeader, wants_doorbell)),
    );
    put("ring.sizeof.head", n(size_of::<AtomicU32>()));
    put("ring.sizeof.wants_doorbell", n(size_of::<AtomicU32>()));
    put("slot.size", n(size_of::<Slot>()));
    put("slot.offsetof.len", n(offset_of!(Slot, len)));
    put("slot.offsetof.data", n(offset_of!(Slot, data)));
    put("slot.sizeof.data", n(ring::MESSAGE_MAX));
    put("BULKHEAD_RING_MAGIC", n(ring::MAGIC as usize));
    put("BULKHEAD_RING_VERSION", n(ring::VERSION as usize));
    put("BULKHEAD_RING_SLOT_SIZE", n(ring::SLOT_SIZE));
    put("BULKHEAD_RING_MESSAGE_MAX", n(ring::MESSAGE_MAX));
    put("BULKHEAD_RING_HEADER_SIZE", n(ring::HEADER_SIZE));
    put("BULKHEAD_RING_OFFSET_MAGIC", n(ring::OFFSET_MAGIC));
    put("BULKHEAD_RING_OFFSET_VERSION", n(ring::OFFSET_VERSION));
    put("BULKHEAD_RING_OFFSET_SLOT_SIZE", n(ring::OFFSET_SLOT_SIZE));
    put("BULKHEAD_RING_OFFSET_SLOTS", n(ring::OFFSET_SLOTS));
    put("BULKHEAD_RING_OFFSET_HEAD", n(ring::OFFSET_HEAD));
    put("BULKHEAD_RING_OFFSET_TAIL", n(ring::OFFSET_TAIL));
    put(
        "BULKHEAD_RING_OFFSET_WANTS_DOORBELL",
        n(ring::OFFSET_WANTS_DOORBELL),
    );
    put("BULKHEAD_MAGIC", MAGIC as i128);
    put("BULKHEAD_ABI_VERSION", ABI_VERSION as i128);
    put("BULKHEAD_CONSOLE_WRITE_MAX", CONSOLE_WRITE_MAX as i128);

    for (name, status) in [
        ("BULKHEAD_SUCCESS", Status::Success),
        ("BULKHEAD_NOT_SUPPORTED", Status::NotSupported),
        ("BULKHEAD_INVALID_PARAMETERS", Status::InvalidParameters),
        ("BULKHEAD_DENIED", Status::Denied),
        ("BULKHEAD_ALREADY_ON", Status::AlreadyOn),
        ("BULKHEAD_ON_PENDING", Status::OnPending),
        ("BULKHEAD_INVALID_ADDRESS", Status::InvalidAddress),
    ] {
        put(name, status as i64 as i128);
    }
    for counter in Counter::ALL {
        let name = format!(
            "BULKHEAD_COUNTER_{}",
            counter.name().to_uppercase().replace('-', "_")
        );
        put(&name, counter as u64 as i128);
    }
    put("BULKHEAD_COUNTER_COUNT", Counter::ALL.len() as i128);
    put("behaviour", 1);
    map
}

fn include_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../include")
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c_header");
    std::fs::create_dir_all(&dir).expect("create the scratch directory");
    dir.join(name)
}

fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

#[test]
fn c_header_matches_the_rust_abi() {
    let source = scratch("check.c");
    let binary = scratch("check");
    std::fs::write(&source, PROGRAM).expect("write the C program");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    run(Command::new(&cc)
        .args(STRICT_C)
        .arg("-I")
        .arg(include_dir())
        .arg(&source)
        .arg("-o")
        .arg(&binary));
    let printed = run(&mut Command::new(&binary));

    let mut seen = BTreeMap::new();
    for line in printed.lines() {
        let (name, value) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("malformed line {line:?}"));
        let value: i128 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        assert!(
            seen.insert(name.to_string(), value).is_none(),
            "{name} printed twice"
        );
    }
    let expected = expected();
    let mut errors = Vec::new();
    for (name, want) in &expected {
        match seen.get(name) {
            None => errors.push(format!("{name}: not printed by the C program")),
            Some(got) if got != want => {
                errors.push(format!("{name}: C says {got:#x}, Rust says {want:#x}"))
            }
            Some(_) => {}
        }
    }
    for name in seen.keys().filter(|n| !expected.contains_key(*n)) {
        errors.push(format!(
            "{name}: printed by the C program, unknown to the test"
        ));
    }
    assert!(
        errors.is_empty(),
        "bulkhead.h disagrees with bulkhead-abi:\n{}",
        errors.join("\n")
    );
}

/// The AArch64 side: the hypercall helpers compile, and the mask helpers
/// are plain byte accesses: no exclusive loop, no call.
#[test]
fn c_header_compiles_for_aarch64() {
    let cc =
        std::env::var("BULKHEAD_AARCH64_CC").unwrap_or_else(|_| "aarch64-linux-gnu-gcc".into());
    assert!(
        Command::new(&cc).arg("--version").output().is_ok(),
        "no {cc}: scripts/setup.sh installs it (Debian gcc-aarch64-linux-gnu)"
    );
    let source = scratch("aarch64.c");
    let object = scratch("aarch64.o");
    std::fs::write(
        &source,
        r#"#include "bulkhead.h"
uint32_t guest_mask(struct bulkhead_control_page *p, unsigned int v) { return bulkhead_irq_mask(p, v); }
int guest_unmask(struct bulkhead_control_page *p, unsigned int v) { return bulkhead_irq_unmask(p, v); }
struct bulkhead_control_page *guest_find(void) { return bulkhead_find_control_page(); }
"#,
    )
    .expect("write the AArch64 source");
    run(Command::new(&cc)
        .args(STRICT_C)
        .args([
            "-march=armv8-a",
            "-mno-outline-atomics",
            "-ffreestanding",
            "-c",
        ])
        .arg("-I")
        .arg(include_dir())
        .arg(&source)
        .arg("-o")
        .arg(&object));
    let objdump = cc.replace("gcc", "objdump");
    let output = Command::new(&objdump)
        .arg("-d")
        .arg(&object)
        .output()
        .unwrap_or_else(|e| panic!("{objdump} -d: {e} (it comes with the cross compiler)"));
    let text = String::from_utf8_lossy(&output.stdout);
    let function = |name: &str| -> String {
        let start = text
            .find(&format!("<{name}>:"))
            .unwrap_or_else(|| panic!("{name} not in the object:\n{text}"));
        text[start..]
            .split("\n\n")
            .next()
            .unwrap_or_default()
            .to_string()
    };
    let mask = function("guest_mask");
    assert!(mask.contains("ldrb") && mask.contains("strb"), "{mask}");
    let unmask = function("guest_unmask");
    assert!(
        unmask.contains("stlrb") && unmask.contains("ldrb") && unmask.contains("hvc"),
        "{unmask}"
    );
    for body in [&mask, &unmask] {
        assert!(!body.contains("\tbl\t"), "a call in the fast path:\n{body}");
        for exclusive in ["ldxr", "ldaxr", "stxr", "stlxr"] {
            assert!(!body.contains(exclusive), "an exclusive loop:\n{body}");
        }
    }
}
