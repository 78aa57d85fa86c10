//! scripts/rpi4-image.sh (issue 12): what goes on a Raspberry Pi 4's SD
//! card. The script builds the hypervisor image and writes `kernel8.img`,
//! `config.txt` and a whole card image; these tests read that card as the
//! Pi's boot ROM and firmware would (its MBR, its one FAT32 partition), take
//! `kernel8.img` back out of the partition with mtools, check it is byte for
//! byte the image scripts/build.sh made, and boot that copy in QEMU, the
//! partitions' console lines asserted. The firmware option is checked with
//! stand-in files: the real firmware is not ours to ship.

#[allow(dead_code)] // each test binary uses only some of the shared helpers
mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, OnceLock};

use bulkhead_config::arm64_image::ImageHeader;
use support::{Machine, root};

/// The board the card is made for and QEMU boots.
/// The Raspberry Pi 4, booted on QEMU's raspi4b.
const BOARD: &str = "rpi4";

/// QEMU's command line for BOARD, from its board.toml as for every test
/// (with `-dtb`, the firmware's device tree: raspi4b passes ATAGs without).
fn machine() -> Machine {
    Machine::load(&root(), BOARD).unwrap_or_else(|e| panic!("{e}"))
}

/// Where the script's partition starts (its header: 4 MiB) and the least
/// it makes it (64 MiB).
const PARTITION_START: u64 = 4 << 20;
const PARTITION_MIN: u64 = 64 << 20;
const SECTOR: u64 = 512;
/// What the firmware needs besides our files (`--firmware DIR`).
const FIRMWARE: [&str; 4] = [
    "start4.elf",
    "fixup4.dat",
    "bcm2711-rpi-4-b.dtb",
    "overlays/disable-bt.dtbo",
];

/// One script run at a time: each builds BOARD's image to the same file
/// (target/images/), which another run would be rewriting under it.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fresh output directory under the tests' temporary directory.
fn out_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("rpi4-image")
        .join(name);
    let _ = fs::remove_dir_all(&dir);
    dir
}

/// Runs scripts/rpi4-image.sh for BOARD into `out`, whatever the outcome.
fn script(out: &Path, firmware: Option<&Path>) -> Output {
    let _one = one_at_a_time();
    let mut command = Command::new(root().join("scripts/rpi4-image.sh"));
    command.args(["--board", BOARD, "--out"]).arg(out);
    if let Some(dir) = firmware {
        command.arg("--firmware").arg(dir);
    }
    command.output().expect("scripts/rpi4-image.sh runs")
}

/// A run that succeeded: its output directory, the card's path it printed
/// and what it said on stderr.
struct Card {
    out: PathBuf,
    image: PathBuf,
    stderr: String,
}

fn make_card(name: &str, firmware: Option<&Path>) -> Card {
    let out = out_dir(name);
    let result = script(&out, firmware);
    let stderr = String::from_utf8_lossy(&result.stderr).into_owned();
    assert!(
        result.status.success(),
        "scripts/rpi4-image.sh failed:\n{stderr}"
    );
    let image = PathBuf::from(String::from_utf8_lossy(&result.stdout).trim());
    assert_eq!(image, out.join("bulkhead-rpi4.img"), "{stderr}");
    Card { out, image, stderr }
}

/// The card without firmware, made once for the tests that read it.
fn card() -> &'static Card {
    static CARD: OnceLock<Card> = OnceLock::new();
    CARD.get_or_init(|| make_card("plain", None))
}

/// The image scripts/build.sh made for BOARD's demo set: it names a set of
/// a board other than qemu-virt `<board>-<set>.bin`.
fn built_image() -> Vec<u8> {
    let _one = one_at_a_time();
    let path = root().join(format!("target/images/{BOARD}-demo.bin"));
    fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn le32(bytes: &[u8], at: usize) -> u64 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()).into()
}

/// The one partition of the card's MBR: its type, first sector and sector
/// count, checked to be the only one, within the card and 0x55AA-signed.
fn partition(card: &[u8]) -> (u8, u64, u64) {
    assert_eq!(card[510..512], [0x55, 0xaa], "MBR signature");
    let entries: Vec<&[u8]> = card[446..510].chunks(16).collect();
    let used: Vec<&&[u8]> = entries.iter().filter(|e| e[4] != 0).collect();
    assert_eq!(used.len(), 1, "one partition: {entries:02x?}");
    let entry = used[0];
    let (kind, start, sectors) = (entry[4], le32(entry, 8), le32(entry, 12));
    assert!(
        (start + sectors) * SECTOR <= card.len() as u64,
        "partition (sectors {start}+{sectors}) beyond the card's {} bytes",
        card.len()
    );
    (kind, start, sectors)
}

/// mtools' name for the filesystem at `offset` bytes into `card`.
fn fat(card: &Path, offset: u64) -> String {
    format!("{}@@{offset}", card.display())
}

/// Runs an mtools command on the card's filesystem and returns its stdout.
fn mtools(tool: &str, args: &[&str]) -> String {
    let result = Command::new(tool)
        .args(args)
        .env("MTOOLS_SKIP_CHECK", "1")
        .output()
        .unwrap_or_else(|e| panic!("{tool} runs (mtools): {e}"));
    assert!(
        result.status.success(),
        "{tool} {args:?}:\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
    String::from_utf8_lossy(&result.stdout).into_owned()
}

/// Copies `name` out of the FAT partition at `offset` of `card` into `dir`.
fn extract(card: &Path, offset: u64, name: &str, dir: &Path) -> PathBuf {
    let to = dir.join(name.replace('/', "_"));
    let _ = fs::remove_file(&to);
    fs::create_dir_all(dir).unwrap();
    let source = format!("::/{name}");
    mtools(
        "mcopy",
        &[
            "-n",
            "-i",
            &fat(card, offset),
            &source,
            to.to_str().unwrap(),
        ],
    );
    to
}

/// The partition's byte offset, its table and boot sector checked: one
/// FAT32 partition (type 0x0c) from 4 MiB, at least 64 MiB, whose boot
/// sector says FAT32, label BOOT and the sectors before it.
fn checked_partition(image: &Path) -> u64 {
    let card = fs::read(image).unwrap();
    let (kind, start, sectors) = partition(&card);
    assert_eq!(kind, 0x0c, "partition type: FAT32 (LBA)");
    assert_eq!(start * SECTOR, PARTITION_START, "partition start");
    assert!(sectors * SECTOR >= PARTITION_MIN, "{sectors} sectors");
    let boot = &card[(start * SECTOR) as usize..][..512];
    assert_eq!(boot[510..512], [0x55, 0xaa], "boot sector signature");
    assert_eq!(&boot[0x52..0x5a], b"FAT32   ", "filesystem type");
    assert_eq!(&boot[0x47..0x52], b"BOOT       ", "volume label");
    assert_eq!(le32(boot, 0x1c), start, "hidden sectors");
    assert_eq!(le32(boot, 0x20), sectors, "filesystem sectors");
    start * SECTOR
}

/// The acceptance test of issue 12: the card's FAT partition holds the
/// kernel8.img the script wrote, which is the image scripts/build.sh made,
/// and that copy, taken off the card, boots in QEMU with every partition
/// printing its heartbeats.
#[test]
fn the_cards_kernel8_img_is_the_built_image_and_boots() {
    let card = card();
    let offset = checked_partition(&card.image);
    let taken = extract(&card.image, offset, "kernel8.img", &card.out.join("taken"));
    let kernel = fs::read(&taken).unwrap();
    assert!(
        kernel == fs::read(card.out.join("boot/kernel8.img")).unwrap(),
        "the card's kernel8.img differs from boot/kernel8.img"
    );
    assert!(
        kernel == built_image(),
        "the card's kernel8.img differs from scripts/build.sh's image"
    );
    support::assert_demo_runs(&machine(), BOARD, &taken);
}

/// config.txt has each line the firmware needs, kernel_address where the
/// image's header says it goes, and the card holds the same file.
#[test]
fn config_txt_sets_up_a_64_bit_kernel_the_uart_and_the_gic() {
    let card = card();
    let config = fs::read_to_string(card.out.join("boot/config.txt")).unwrap();
    let header = ImageHeader::parse(&fs::read(card.out.join("boot/kernel8.img")).unwrap())
        .expect("kernel8.img has an arm64 Image header");
    let address = format!("kernel_address={:#x}", header.text_offset);
    let lines: Vec<&str> = config.lines().collect();
    for want in [
        "arm_64bit=1",
        "kernel=kernel8.img",
        &address,
        "enable_uart=1",
        "init_uart_baud=115200",
        "dtoverlay=disable-bt",
        "enable_gic=1",
    ] {
        assert!(
            lines.contains(&want),
            "no {want:?} in config.txt:\n{config}"
        );
    }
    // Every setting has its comment: the line before it is one.
    for (i, line) in lines.iter().enumerate() {
        if !line.is_empty() && !line.starts_with('#') {
            assert!(
                i > 0 && lines[i - 1].starts_with('#'),
                "{line:?} has no comment:\n{config}"
            );
        }
    }
    let offset = checked_partition(&card.image);
    let taken = extract(&card.image, offset, "config.txt", &card.out.join("taken"));
    assert_eq!(fs::read_to_string(taken).unwrap(), config);
}

/// Without --firmware the card holds our two files only, and the script
/// names each firmware file the user must add.
#[test]
fn without_firmware_the_script_names_the_files_to_add() {
    let card = card();
    let offset = checked_partition(&card.image);
    let listing = mtools("mdir", &["-b", "-i", &fat(&card.image, offset), "::/"]);
    let mut files: Vec<&str> = listing.lines().collect();
    files.sort();
    assert_eq!(files, ["::/config.txt", "::/kernel8.img"]);
    for file in FIRMWARE {
        assert!(
            card.stderr.contains(file),
            "{file} not named:\n{}",
            card.stderr
        );
    }
}

/// Stand-ins for the firmware files in `dir`, each with its own contents.
fn stand_in_firmware(dir: &Path, files: &[&str]) {
    let _ = fs::remove_dir_all(dir);
    for file in files {
        let path = dir.join(file);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, format!("stand-in for {file}\n")).unwrap();
    }
}

/// --firmware copies the four files, overlays/ included, into boot/ and
/// onto the card, and the script no longer asks for them.
#[test]
fn firmware_given_goes_onto_the_card() {
    let dir = out_dir("firmware-in");
    stand_in_firmware(&dir, &FIRMWARE);
    let card = make_card("firmware", Some(&dir));
    let offset = checked_partition(&card.image);
    for file in FIRMWARE {
        let want = fs::read(dir.join(file)).unwrap();
        let taken = extract(&card.image, offset, file, &card.out.join("taken"));
        assert_eq!(fs::read(taken).unwrap(), want, "{file} on the card");
        assert_eq!(fs::read(card.out.join("boot").join(file)).unwrap(), want);
    }
    assert!(
        !card.stderr.contains("no Raspberry Pi firmware"),
        "{}",
        card.stderr
    );
}

/// A firmware directory that lacks a file is refused, naming it, before
/// anything is built or written.
#[test]
fn firmware_missing_a_file_is_refused() {
    let dir = out_dir("firmware-incomplete");
    stand_in_firmware(&dir, &FIRMWARE[..3]);
    let out = out_dir("refused");
    let result = script(&out, Some(&dir));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("has no overlays/disable-bt.dtbo"),
        "{stderr}"
    );
    assert!(!out.exists(), "{} was written", out.display());
}
