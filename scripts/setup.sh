#!/usr/bin/env bash
# Installs what Bulkhead's build, run and tests need, when it is missing:
# the Rust targets and components, and QEMU 10 (Debian bookworm-backports;
# bookworm's own QEMU 7.2 lacks what we use). Safe to run again: it only
# adds what is not there. Debian packages need root (or sudo).
set -euo pipefail

log() { echo "setup: $*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

installed_targets=$(rustup target list --installed)
for target in aarch64-unknown-none aarch64-unknown-none-softfloat; do
    if ! grep -qx "$target" <<<"$installed_targets"; then
        log "adding Rust target $target"
        rustup target add "$target" >&2
    fi
done
installed_components=$(rustup component list --installed)
for component in rustfmt clippy; do
    if ! grep -q "^$component" <<<"$installed_components"; then
        log "adding Rust component $component"
        rustup component add "$component" >&2
    fi
done

# The C header test cross-compiles guest-lib/include/bulkhead.h for AArch64.
if ! command -v aarch64-linux-gnu-gcc >/dev/null; then
    log "installing the AArch64 cross compiler (gcc-aarch64-linux-gnu)"
    as_root apt-get update -qq >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc-aarch64-linux-gnu >&2
fi

qemu_major() {
    command -v qemu-system-aarch64 >/dev/null || { echo 0; return; }
    qemu-system-aarch64 --version | sed -nE '1s/.*version ([0-9]+).*/\1/p'
}

# The Debian mirror this machine already uses, so no host name is assumed.
debian_mirror() {
    {
        grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}'
        grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{print $2}'
    } | grep -v -- '-security' | grep -m1 '/debian/\?$'
}

if [ "$(qemu_major)" -lt 10 ]; then
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    if [ "$codename" != bookworm ]; then
        log "QEMU >= 10 is needed; this is not Debian bookworm ($codename): install qemu-system-aarch64 10 yourself"
        exit 1
    fi
    if ! apt-cache policy 2>/dev/null | grep -q 'bookworm-backports'; then
        mirror=$(debian_mirror) || { log "no Debian mirror found in the apt sources"; exit 1; }
        log "adding bookworm-backports from $mirror"
        echo "deb $mirror bookworm-backports main" |
            as_root tee /etc/apt/sources.list.d/bulkhead-backports.list >/dev/null
    fi
    log "installing QEMU 10 from bookworm-backports"
    as_root apt-get update -qq >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports \
        qemu-system-arm >&2
    if [ "$(qemu_major)" -lt 10 ]; then
        log "QEMU 10 did not install"
        exit 1
    fi
fi
