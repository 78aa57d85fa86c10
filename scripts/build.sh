#!/usr/bin/env bash
# Builds one bootable Bulkhead image: the guest-lib guests, then the
# hypervisor for a partition set (which embeds the guests), then the flat
# arm64 Image QEMU boots or a board flashes.
#
#   scripts/build.sh [--board NAME] [--config FILE] [--out FILE]
#   scripts/build.sh --map [--board NAME] [--config FILE] [--svg FILE]
#
# --board picks boards/NAME/demo.toml unless --config names another set.
# Prints the image's path on stdout. Cross builds go to target/bulkhead.
# A set that names files under target/linux/ (a Linux partition's kernel
# and initramfs, boards/qemu-virt/linux.toml) gets them from
# scripts/linux.sh first, which does nothing once they are there.
# BULKHEAD_FAST_PATHS=off builds the hypervisor without its assembly fast
# paths (cargo feature `fast-paths`): every exit goes to the Rust handlers.
#
# --map builds only the guests (the check reads them), not the hypervisor:
# it checks the set as the build does, prints its map (physical memory,
# CPUs, each partition's guest-physical view) as a table on stdout, writes
# it as an SVG image to --svg FILE (default target/maps/<set name>.svg) and
# prints that path on stderr.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
board=qemu-virt
config=
out=
map=
svg=
while [ $# -gt 0 ]; do
    case "$1" in
        --board) board=$2; shift 2 ;;
        --config) config=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --map) map=1; shift ;;
        --svg) svg=$2; shift 2 ;;
        *) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
config=${config:-$root/boards/$board/demo.toml}
config=$(realpath "$config")
[ -f "$config" ] || { echo "build.sh: no partition set at $config" >&2; exit 2; }
name=$(basename "$config" .toml)
# A set of another board than the default is named after its board too
# (boards/qemu-virt-gicv2/demo.toml builds qemu-virt-gicv2-demo.bin).
set_dir=$(dirname "$config")
if [ "$(dirname "$set_dir")" = "$root/boards" ] && [ "$(basename "$set_dir")" != qemu-virt ]; then
    name=$(basename "$set_dir")-$name
fi
if [ -n "$map" ]; then
    [ -z "$out" ] || { echo "build.sh: --out builds an image, --map does not" >&2; exit 2; }
    svg=$(realpath -m "${svg:-$root/target/maps/$name.svg}")
else
    [ -z "$svg" ] || { echo "build.sh: --svg goes with --map" >&2; exit 2; }
fi
out=${out:-$root/target/images/$name.bin}

export CARGO_TARGET_DIR=$root/target/bulkhead
cd "$root"
if grep -q '"[^"]*target/linux/' "$config"; then
    "$root/scripts/linux.sh" >/dev/null
fi
cargo build -q -p guest-lib --examples --target aarch64-unknown-none --release
if [ -n "$map" ]; then
    mkdir -p "$(dirname "$svg")"
    cargo run -q -p bulkhead-config --release -- map "$config" \
        --guest-dir "$CARGO_TARGET_DIR/aarch64-unknown-none/release/examples" \
        --repo-root "$root" --svg "$svg"
    echo "$svg" >&2
    exit 0
fi
# One image at a time: every partition set builds the same hypervisor ELF,
# so two builds at once (tests, bench.sh, a user's run) could each copy out
# the other's. The lock goes with this process.
mkdir -p "$CARGO_TARGET_DIR"
exec 9>"$CARGO_TARGET_DIR/.image.lock"
flock 9
features=()
case "${BULKHEAD_FAST_PATHS:-on}" in
    on) ;;
    off) features=(--no-default-features) ;;
    *) echo "build.sh: BULKHEAD_FAST_PATHS=$BULKHEAD_FAST_PATHS: on or off" >&2; exit 2 ;;
esac
BULKHEAD_CONFIG=$config \
BULKHEAD_GUEST_DIR=$CARGO_TARGET_DIR/aarch64-unknown-none/release/examples \
    cargo build -q -p bulkhead --bin bulkhead --target aarch64-unknown-none-softfloat --release \
    "${features[@]}"
elf=$CARGO_TARGET_DIR/aarch64-unknown-none-softfloat/release/bulkhead
mkdir -p "$(dirname "$out")"
cp "$elf" "${out%.bin}.elf"
cargo run -q -p bulkhead-config --release -- elf2image "$elf" "$out" >&2
echo "$out"
