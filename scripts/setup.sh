#!/usr/bin/env bash
# Installs what Bulkhead's build, run and tests need, when it is missing:
#   - the Rust targets aarch64-unknown-none(-softfloat), rustfmt and clippy
#     (rustup);
#   - gcc-aarch64-linux-gnu (the C header test cross-compiles bulkhead.h;
#     scripts/bench.sh reads the images with its binutils);
#   - QEMU 10 (qemu-system-arm from Debian bookworm-backports: bookworm's
#     own QEMU 7.2 lacks what we use), adding bookworm-backports from the
#     mirror the machine already uses when it is not configured
#     (scripts/apt-sources.sh finds it, on every apt layout);
#   - python3 (scripts/bench.py, bench.sh's parser and report), rarely
#     missing;
#   - shellcheck and pyflakes3 (scripts/test.sh lints the scripts with them);
#   - dosfstools, mtools and fdisk (scripts/rpi4-image.sh makes the
#     Raspberry Pi 4's SD card image with mkfs.vfat, mcopy and sfdisk, on
#     plain files: no root, no loop devices).
# Recommended packages are left out (QEMU's would bring a desktop stack);
# of QEMU's, only ipxe-qemu is needed.
# Safe to run again: it only adds what is not there. Debian packages need
# root or sudo; apt-get update runs once, before apt is asked anything.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
log() { echo "setup: $*" >&2; }
die() { log "$@"; exit 1; }

# ---- Rust -------------------------------------------------------------------
command -v rustup >/dev/null ||
    die "rustup is not on PATH: Bulkhead needs Rust stable from rustup (https://rustup.rs),
  which can add the aarch64-unknown-none targets; a distribution's rustc cannot."
installed_targets=$(rustup target list --installed)
for target in aarch64-unknown-none aarch64-unknown-none-softfloat; do
    if ! grep -qx "$target" <<<"$installed_targets"; then
        log "adding Rust target $target"
        rustup target add "$target" >&2 || die "rustup target add $target failed (see above)"
    fi
done
installed_components=$(rustup component list --installed)
for component in rustfmt clippy; do
    if ! grep -q "^$component" <<<"$installed_components"; then
        log "adding Rust component $component"
        rustup component add "$component" >&2 || die "rustup component add $component failed (see above)"
    fi
done

# ---- Debian packages ----------------------------------------------------------
qemu_major() {
    command -v qemu-system-aarch64 >/dev/null || { echo 0; return; }
    qemu-system-aarch64 --version | sed -nE '1s/.*version ([0-9]+).*/\1/p'
}

packages=() # from the release itself
need_qemu=
command -v aarch64-linux-gnu-gcc >/dev/null || packages+=(gcc-aarch64-linux-gnu)
command -v python3 >/dev/null || packages+=(python3)
command -v shellcheck >/dev/null || packages+=(shellcheck)
command -v pyflakes3 >/dev/null || packages+=(pyflakes3)
# mkfs.vfat and sfdisk are in /usr/sbin, which a user's PATH may lack.
have_sbin() { command -v "$1" >/dev/null || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }
have_sbin mkfs.vfat || packages+=(dosfstools)
command -v mcopy >/dev/null || packages+=(mtools)
have_sbin sfdisk || packages+=(fdisk)
[ "$(qemu_major)" -ge 10 ] || need_qemu=1
# QEMU's virt machine loads its network card's boot ROM (efi-virtio.rom)
# from ipxe-qemu, only a Recommends of Debian's QEMU: without it QEMU
# refuses to start.
installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }
if [ -z "$need_qemu" ] && command -v dpkg-query >/dev/null && installed qemu-system-arm &&
    ! installed ipxe-qemu; then
    packages+=(ipxe-qemu)
fi
[ ${#packages[@]} -gt 0 ] || [ -n "$need_qemu" ] || exit 0

wanted="${packages[*]}${need_qemu:+ qemu-system-arm (10 or later)}"
wanted=${wanted# }
[ -r /etc/os-release ] || die "no /etc/os-release: install by hand: $wanted"
# The machine's os-release, not a file of ours for shellcheck to follow.
# shellcheck source=/dev/null
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[ "$codename" = bookworm ] ||
    die "this is not Debian bookworm (VERSION_CODENAME=${codename:-none}); install by hand: $wanted
  (QEMU must be 10 or later, with qemu-system-aarch64), then run this again."
command -v apt-get >/dev/null || die "no apt-get; install by hand: $wanted"

if [ "$(id -u)" -eq 0 ]; then
    as_root() { "$@"; }
elif command -v sudo >/dev/null; then
    as_root() { sudo "$@"; }
else
    die "installing $wanted needs root: run this as root, or install sudo, or install them by hand"
fi

# apt's own output goes to a log; its tail is shown when a step fails.
mkdir -p "$root/target/setup"
apt_log=$root/target/setup/apt.log
: >"$apt_log"
apt_get() {
    log "apt-get $*"
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get -y -o Dpkg::Use-Pty=0 "$@" \
        >>"$apt_log" 2>&1; then
        tail -n 25 "$apt_log" >&2
        return 1
    fi
}

if [ -n "$need_qemu" ]; then
    # Adds the backports source only when no enabled entry has it; exit 3
    # with its own message when there is no network mirror to add it from.
    as_root "$root/scripts/apt-sources.sh" add >"$root/target/setup/apt-sources" ||
        exit 1
    if grep -q '^add ' "$root/target/setup/apt-sources"; then
        log "added $(sed -n 's/^add //p' "$root/target/setup/apt-sources"):"
        sed -n 's/^  /    /p' "$root/target/setup/apt-sources" >&2
    else
        log "bookworm-backports is in $(sed -n 's/^backports configured //p' "$root/target/setup/apt-sources")"
    fi
fi

apt_get update ||
    die "apt-get update failed (its last lines are above; all of it in $apt_log).
  Check the network and the apt sources, then run this again; or install by hand: $wanted"

if [ ${#packages[@]} -gt 0 ]; then
    apt_get install --no-install-recommends "${packages[@]}" ||
        die "apt-get install ${packages[*]} failed (above; all of it in $apt_log)"
fi

if [ -n "$need_qemu" ]; then
    # Asked only now, after the update: apt knows the backports suite.
    candidate=$(apt-cache madison qemu-system-arm | awk -F' *[|] *' '$3 ~ /bookworm-backports/ { print $2; exit }')
    [ -n "$candidate" ] ||
        die "apt has no qemu-system-arm from bookworm-backports after apt-get update
  (apt-cache madison qemu-system-arm lists none). Check the backports source
  ($(sed -n 's/^backports configured //p; s/^add //p' "$root/target/setup/apt-sources")) and run this again;
  or install qemu-system-arm 10 or later by hand."
    log "installing QEMU $candidate from bookworm-backports"
    apt_get install --no-install-recommends -t bookworm-backports qemu-system-arm ipxe-qemu ||
        die "apt-get install -t bookworm-backports qemu-system-arm ipxe-qemu failed (above; all of it in $apt_log)"
    [ "$(qemu_major)" -ge 10 ] ||
        die "qemu-system-aarch64 is still older than 10 ($(qemu-system-aarch64 --version 2>&1 | head -n 1));
  is another one earlier on PATH ($(command -v qemu-system-aarch64))?"
fi
log "ready: $(qemu-system-aarch64 --version | head -n 1), $(aarch64-linux-gnu-gcc --version | head -n 1)"
