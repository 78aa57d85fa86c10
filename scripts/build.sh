#!/usr/bin/env bash
# Builds one bootable Bulkhead image: the guest-lib guests, then the
# hypervisor for a partition set (which embeds the guests), then the flat
# arm64 Image QEMU boots or a board flashes.
#
#   scripts/build.sh [--board NAME] [--config FILE] [--out FILE]
#
# --board picks boards/NAME/demo.toml unless --config names another set.
# Prints the image's path on stdout. Cross builds go to target/bulkhead.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
board=qemu-virt
config=
out=
while [ $# -gt 0 ]; do
    case "$1" in
        --board) board=$2; shift 2 ;;
        --config) config=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        *) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
config=${config:-$root/boards/$board/demo.toml}
config=$(realpath "$config")
[ -f "$config" ] || { echo "build.sh: no partition set at $config" >&2; exit 2; }
name=$(basename "$config" .toml)
out=${out:-$root/target/images/$name.bin}

export CARGO_TARGET_DIR=$root/target/bulkhead
cd "$root"
cargo build -q -p guest-lib --examples --target aarch64-unknown-none --release
BULKHEAD_CONFIG=$config \
BULKHEAD_GUEST_DIR=$CARGO_TARGET_DIR/aarch64-unknown-none/release/examples \
    cargo build -q -p bulkhead --bin bulkhead --target aarch64-unknown-none-softfloat --release
elf=$CARGO_TARGET_DIR/aarch64-unknown-none-softfloat/release/bulkhead
mkdir -p "$(dirname "$out")"
cp "$elf" "${out%.bin}.elf"
cargo run -q -p bulkhead-config --release -- elf2image "$elf" "$out" >&2
echo "$out"
