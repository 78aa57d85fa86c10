#!/usr/bin/env bash
# Makes what goes on a Raspberry Pi 4's SD card to boot Bulkhead: the files
# of the card's FAT boot partition, and a whole card image holding them to
# write with dd or Raspberry Pi Imager.
#
#   scripts/rpi4-image.sh [--board NAME] [--config FILE] [--out DIR] [--firmware DIR]
#
# --board and --config go to scripts/build.sh (default board rpi4 and its
# demo.toml), which builds the hypervisor image. Under --out DIR (default
# target/rpi4) this writes:
#   boot/kernel8.img   that image, byte for byte, for the firmware to load
#   boot/config.txt    the firmware's settings: a 64-bit kernel, its name and
#                      load address, UART0 on GPIO 14/15 with Bluetooth moved
#                      off it, interrupts through the GIC-400 (each line says why)
#   bulkhead-rpi4.img  the card: an MBR with one FAT32 partition (type 0x0c,
#                      label BOOT) from 4 MiB on, holding what boot/ holds
# and prints the card image's path on stdout.
#
# The Raspberry Pi firmware is not ours to ship. --firmware DIR copies it
# from DIR, laid out as the boot/ directory of
# https://github.com/raspberrypi/firmware, into boot/ and the partition:
# start4.elf, fixup4.dat, bcm2711-rpi-4-b.dtb and overlays/disable-bt.dtbo.
# Without --firmware the script says which files to add.
#
# All of it is made on plain files, without root, mounts or loop devices:
# sfdisk writes the partition table, mkfs.vfat --offset the filesystem
# inside the card image, mcopy the files. scripts/setup.sh installs them
# (fdisk, dosfstools, mtools) when they are missing.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
board=rpi4
config=
out=
firmware=
need() { [ $# -ge 2 ] || { echo "rpi4-image.sh: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
    case "$1" in
        --board) need "$@"; board=$2; shift 2 ;;
        --config) need "$@"; config=$2; shift 2 ;;
        --out) need "$@"; out=$2; shift 2 ;;
        --firmware) need "$@"; firmware=$2; shift 2 ;;
        *) echo "rpi4-image.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
log() { echo "rpi4-image: $*" >&2; }
die() { log "$@"; exit 1; }
hex() { printf '0x%x' "$1"; }
shown() { case "$1" in "$PWD"/*) echo "${1#"$PWD"/}" ;; *) echo "$1" ;; esac; }
# The little-endian 64-bit word at byte $2 of file $1.
word64() { od -An -tu8 -j "$2" -N 8 --endian=little "$1" | tr -d ' '; }

out=$(realpath -m "${out:-$root/target/rpi4}")
boot=$out/boot
card=$out/bulkhead-rpi4.img

# What the Pi 4's firmware needs from its boot partition besides our two
# files: the VideoCore firmware (start4.elf and its memory split,
# fixup4.dat), the board's device tree (the firmware passes it to the
# kernel in x0) and the overlay that moves Bluetooth off UART0.
firmware_files=(start4.elf fixup4.dat bcm2711-rpi-4-b.dtb overlays/disable-bt.dtbo)
if [ -n "$firmware" ]; then
    for file in "${firmware_files[@]}"; do
        [ -f "$firmware/$file" ] || die "--firmware $firmware has no $file (it needs ${firmware_files[*]})"
    done
fi

# The card's layout. The partition starts at 4 MiB, as Raspberry Pi OS's
# does: aligned to an SD card's erase blocks. It is FAT32 with 512-byte
# clusters, which needs at least 65525 clusters (32 MiB): 64 MiB, or more
# when the files need it.
mib=$((1 << 20))
sector=512
start_mib=4
min_size_mib=64

"$root/scripts/setup.sh"
mkfs=$(PATH=$PATH:/usr/sbin:/sbin command -v mkfs.vfat) || die "no mkfs.vfat (Debian package dosfstools)"
sfdisk=$(PATH=$PATH:/usr/sbin:/sbin command -v sfdisk) || die "no sfdisk (Debian package fdisk)"
command -v mcopy >/dev/null || die "no mcopy (Debian package mtools)"

image=$("$root/scripts/build.sh" --board "$board" ${config:+--config "$config"})

# The firmware loads kernel8.img at kernel_address. The image's arm64
# header says where it goes: text_offset above a 2 MiB aligned base, and the
# Pi's RAM starts at 0, so at text_offset, as QEMU's raspi4b loads it. That
# must be where it is linked (its ELF's entry, the start of the image).
[ "$(od -An -tx1 -j 56 -N 4 "$image" | tr -d ' ')" = 41524d64 ] ||
    die "$image has no arm64 Image header (magic ARM\\x64 at byte 0x38)"
text_offset=$(word64 "$image" 8)
entry=$(word64 "${image%.bin}.elf" 24)
if [ "$entry" -ne "$text_offset" ]; then
    log "warning: the image is linked at $(hex "$entry"), but a Raspberry Pi 4's firmware loads it at"
    log "  $(hex "$text_offset") (its text_offset): board $board's image does not run on one"
fi

mkdir -p "$boot"
for file in kernel8.img config.txt "${firmware_files[@]}"; do
    rm -f "${boot:?}/$file"
done
rmdir "$boot/overlays" 2>/dev/null || true
cp "$image" "$boot/kernel8.img"
cat >"$boot/config.txt" <<EOF
# The Raspberry Pi 4 firmware's settings for Bulkhead (scripts/rpi4-image.sh).
# Start the cores in AArch64 and load a 64-bit kernel: the firmware's stub
# enters it at EL2, with the device tree's address in x0.
arm_64bit=1
# The kernel is Bulkhead's image, an arm64 Image.
kernel=kernel8.img
# Load it where it is linked: its header's text_offset above RAM's start (0).
kernel_address=$(hex "$text_offset")
# UART0, the PL011 that is Bulkhead's console, on (8N1).
enable_uart=1
# At 115200 baud: the hypervisor keeps the rate the firmware sets.
init_uart_baud=115200
# Bluetooth off UART0, which is then on GPIO 14 (TXD) and 15 (RXD).
dtoverlay=disable-bt
# Interrupts through the GIC-400, the stub making them reachable from EL2
# (the default on a Pi 4, stated here because Bulkhead needs it).
enable_gic=1
# Uncomment to have the firmware log its own boot on the same UART.
#uart_2ndstage=1
EOF
files=(kernel8.img config.txt)
if [ -n "$firmware" ]; then
    mkdir -p "$boot/overlays"
    for file in "${firmware_files[@]}"; do
        cp "$firmware/$file" "$boot/$file"
    done
    files+=("${firmware_files[@]}")
fi

# The partition's size in MiB: the files, an eighth more for the FATs and
# directories, and 8 MiB to spare.
bytes=$(cd "$boot" && cat "${files[@]}" | wc -c)
size_mib=$(( (bytes + bytes / 8 + mib - 1) / mib + 8 ))
[ "$size_mib" -ge "$min_size_mib" ] || size_mib=$min_size_mib
start=$((start_mib * mib / sector))
sectors=$((size_mib * mib / sector))

rm -f "$card"
truncate -s $(( (start_mib + size_mib) * mib )) "$card"
# One primary partition, type 0x0c (FAT32, addressed by LBA).
"$sfdisk" --quiet --no-reread --no-tell-kernel "$card" <<EOF >&2
label: dos
unit: sectors
start=$start, size=$sectors, type=c
EOF
# The filesystem, written at the partition's offset; its boot sector counts
# the sectors before it (-h) as a partition's does. --mbr=n: no fake
# partition table in that boot sector. The size is in 1 KiB blocks.
"$mkfs" -F 32 -s 1 -n BOOT --mbr=n -h "$start" --offset="$start" "$card" $((size_mib * 1024)) >/dev/null
# mcopy reaches the filesystem at its byte offset in the card (@@); its
# geometry check is for floppies and does not apply.
fat=$card@@$((start * sector))
export MTOOLS_SKIP_CHECK=1
if [ -n "$firmware" ]; then
    mmd -i "$fat" ::/overlays
fi
for file in "${files[@]}"; do
    mcopy -i "$fat" -m "$boot/$file" "::/$file"
done

log "$(shown "$card"): one FAT32 partition (BOOT, ${size_mib} MiB from ${start_mib} MiB) holding ${files[*]}"
log "  (the same files are in $(shown "$boot")/); kernel8.img is $(shown "$image"), loaded at $(hex "$text_offset")"
if [ -z "$firmware" ]; then
    log "the card has no Raspberry Pi firmware yet. Add ${firmware_files[*]}"
    log "  from https://github.com/raspberrypi/firmware/tree/master/boot to its FAT partition"
    log "  (after writing it, with any computer), or run this again with --firmware DIR"
fi
echo "$card"
