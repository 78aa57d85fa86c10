#!/usr/bin/env bash
# Every test Bulkhead has, as CI runs them (.ci/run calls this):
#   formatting, clippy (warnings denied) for the host and both aarch64
#   targets, shellcheck on the shell scripts and pyflakes on the Python,
#   host unit tests, and the QEMU integration tests under tests/ that boot
#   real images and assert on what guests print; then tests/qemu.rs again
#   with the hypervisor's assembly fast paths off (BULKHEAD_FAST_PATHS=off);
#   then the benchmark (scripts/bench.sh), its figures held to the
#   committed budget (tests/bench-budget.toml).
# Installs what is missing first (scripts/setup.sh).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
start=$(date +%s)
step() { echo "== $* ($(( $(date +%s) - start ))s)" >&2; }

step "setup"
scripts/setup.sh

step "rustfmt"
cargo fmt --all --check

step "shellcheck and pyflakes: the scripts"
shellcheck scripts/*.sh .ci/run tests/bench-trace/binutils
pyflakes3 scripts/bench.py scripts/initramfs.py scripts/linux-boot-time.py

step "build the guests and the default image"
scripts/build.sh >/dev/null

step "clippy: host"
cargo clippy --all-targets -- -D warnings

step "clippy: aarch64 (hypervisor with each GIC backend, and guest-lib)"
CARGO_TARGET_DIR=target/bulkhead cargo clippy -p guest-lib --examples \
    --target aarch64-unknown-none --release -- -D warnings
CARGO_TARGET_DIR=target/bulkhead \
BULKHEAD_GUEST_DIR=$root/target/bulkhead/aarch64-unknown-none/release/examples \
    cargo clippy -p bulkhead --bin bulkhead --target aarch64-unknown-none-softfloat --release \
    -- -D warnings
# The GICv2 backend (its board's image: cfg gic = "v2").
CARGO_TARGET_DIR=target/bulkhead BULKHEAD_CONFIG=boards/qemu-virt-gicv2/demo.toml \
BULKHEAD_GUEST_DIR=$root/target/bulkhead/aarch64-unknown-none/release/examples \
    cargo clippy -p bulkhead --bin bulkhead --target aarch64-unknown-none-softfloat --release \
    -- -D warnings

step "tests: host unit tests and QEMU integration tests"
log=$(mktemp)
trap 'rm -f "$log" "$log.bench"' EXIT
status=0
cargo test --workspace --exclude guest-lib 2>&1 | tee "$log" || status=$?

step "tests: the QEMU tests again, without the assembly fast paths"
# The Rust handlers are the reference the fast paths must match: every
# guest must observe the same with every exit taken in Rust.
BULKHEAD_FAST_PATHS=off cargo test --test qemu 2>&1 | tee -a "$log" || status=$?
step "benchmark: scripts/bench.sh, held to tests/bench-budget.toml"
# Deterministic figures (instruction counts under -icount): a latency's max,
# an exit count or the image size above its committed budget fails, named.
if scripts/bench.sh >"$log.bench" 2>&1; then
    python3 scripts/bench.py budget target/bench/report.json tests/bench-budget.toml || status=1
else
    tail -n 30 "$log.bench" >&2
    echo "tests: scripts/bench.sh failed (whole output: target/bench/)" >&2
    status=1
fi
rm -f "$log.bench"
# One closing line over every test binary: "N passed, M failed".
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' \
    "$log" | sed 's/;//g'
step "done"
exit "$status"
