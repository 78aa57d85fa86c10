#!/usr/bin/env bash
# Fetches and builds what a Linux partition boots, from Debian bookworm's
# arm64 archive: its cloud kernel (a raw arm64 Image) and an initramfs of
# busybox-static with scripts/linux-init.sh as /init and
# scripts/linux-channel.sh as /bin/bulkhead-channel.
#
#   scripts/linux.sh     prints the two paths on stdout:
#                          target/linux/Image
#                          target/linux/initramfs.cpio
#   scripts/linux.sh --dtb PATH
#                        prints target/linux/dtbs/PATH: the device tree
#                        PATH (like broadcom/bcm2711-rpi-4-b.dtb) of
#                        bookworm's arm64 kernel, for a board whose
#                        firmware passes one QEMU does not make ([qemu].dtb
#                        of boards/rpi4/board.toml). That kernel package
#                        (linux-image-arm64's, about 60 MB) is downloaded
#                        once, for its device trees only; the cloud kernel
#                        the partitions boot has none for such boards.
#
# scripts/build.sh runs it for a partition set that names files under
# target/linux/ (boards/qemu-virt/linux.toml, tests/configs/linux.toml).
# Everything is cached under target/linux/ (never committed): a second run
# downloads nothing; the initramfs is packed again only when
# scripts/linux-init.sh, scripts/linux-channel.sh or scripts/initramfs.py
# changed. rm -r target/linux
# fetches the newest kernel again.
#
# The system's apt configuration is read (its Debian mirror, as
# scripts/apt-sources.sh finds it; BULKHEAD_DEBIAN_MIRROR overrides it) and
# never changed: apt runs with a private configuration (APT_CONFIG) whose
# lists, status and cache are under target/linux/apt, for architecture
# arm64 only, and downloads packages by their exact names (a pattern would
# fetch every kernel that matches). The kernel's exact name is what
# bookworm's linux-image-cloud-arm64 depends on. About 30 MB is downloaded:
# the arm64 package lists, the kernel package and busybox-static.
#
# Cache layout, under target/linux/:
#   apt/           the private apt configuration, lists, status and cache
#   debs/          the downloaded .deb files
#   kernel.txt     the kernel's package name and version
#   Image          the kernel (/boot/vmlinuz-* of the package)
#   rootfs/        busybox and /init as they go into the archive
#   initramfs.cpio the initramfs (newc cpio, scripts/initramfs.py)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/target/linux
image=$out/Image
initrd=$out/initramfs.cpio
init=$root/scripts/linux-init.sh
channel=$root/scripts/linux-channel.sh
packer=$root/scripts/initramfs.py
log() { echo "linux.sh: $*" >&2; }
die() { log "$@"; exit 1; }

# The release the kernel and busybox come from, whatever the host runs.
release=bookworm
kernel_meta=linux-image-cloud-arm64

# ---- apt, privately -------------------------------------------------------------
apt_dir=$out/apt
apt_ready=
private_apt() {
    [ -z "$apt_ready" ] || return 0
    for tool in apt-get apt-cache dpkg-deb; do
        command -v "$tool" >/dev/null ||
            die "$tool is missing: this script needs a Debian-like host (apt and dpkg)"
    done
    local mirror=${BULKHEAD_DEBIAN_MIRROR:-}
    if [ -z "$mirror" ]; then
        mirror=$("$root/scripts/apt-sources.sh" plan 2>/dev/null | sed -n 's/^mirror //p' || true)
    fi
    [ -n "$mirror" ] ||
        die "no Debian mirror in this machine's apt sources (scripts/apt-sources.sh plan finds none);
  set BULKHEAD_DEBIAN_MIRROR, e.g. BULKHEAD_DEBIAN_MIRROR=http://deb.debian.org/debian"
    mkdir -p "$apt_dir"/{parts,sources,preferences,lists/partial,cache/archives/partial}
    touch "$apt_dir/status"
    local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    {
        echo "Types: deb"
        echo "URIs: $mirror"
        echo "Suites: $release"
        echo "Components: main"
        [ ! -r "$keyring" ] || echo "Signed-By: $keyring"
    } >"$apt_dir/sources/debian.sources"
    # Nothing of the system's apt configuration but its trusted keys.
    {
        echo "APT::Architecture \"arm64\";"
        echo "APT::Architectures { \"arm64\"; };"
        echo "Dir::Etc::Parts \"$apt_dir/parts\";"
        echo "Dir::Etc::SourceList \"$apt_dir/sources/none.list\";"
        echo "Dir::Etc::SourceParts \"$apt_dir/sources\";"
        echo "Dir::Etc::Preferences \"$apt_dir/preferences/none\";"
        echo "Dir::Etc::PreferencesParts \"$apt_dir/preferences\";"
        echo "Dir::State \"$apt_dir\";"
        echo "Dir::State::Lists \"$apt_dir/lists\";"
        echo "Dir::State::status \"$apt_dir/status\";"
        echo "Dir::Cache \"$apt_dir/cache\";"
        echo "Acquire::Languages \"none\";"
        # The lists stay compressed and apt keeps no binary cache of them:
        # some 10 MB on disk instead of 110.
        echo "Acquire::GzipIndexes \"true\";"
        echo "Dir::Cache::pkgcache \"\";"
        echo "Dir::Cache::srcpkgcache \"\";"
        # As root, apt would hand downloads to its _apt user, who cannot
        # write here.
        [ "$(id -u)" -ne 0 ] || echo "APT::Sandbox::User \"root\";"
    } >"$apt_dir/apt.conf"
    export APT_CONFIG=$apt_dir/apt.conf
    # Fresh lists whenever something is fetched: a point release drops the
    # kernel packages it supersedes from the archive.
    log "apt-get update ($release, arm64, from $mirror)"
    apt-get -q update >"$apt_dir/update.log" 2>&1 || {
        tail -n 20 "$apt_dir/update.log" >&2
        die "apt-get update failed (above; all of it in ${apt_dir#"$root"/}/update.log)"
    }
    apt_ready=1
}

# download NAME: the .deb of package NAME (exact), in debs/; prints its path.
download() {
    local name=$1 deb
    deb=$(find "$out/debs" -maxdepth 1 -name "${name}_*_arm64.deb" -print -quit)
    if [ -z "$deb" ]; then
        private_apt
        log "apt-get download $name"
        (cd "$out/debs" && apt-get -q download "$name" >&2) ||
            die "apt-get download $name failed"
        deb=$(find "$out/debs" -maxdepth 1 -name "${name}_*_arm64.deb" -print -quit)
        [ -n "$deb" ] || die "apt-get download $name left no ${name}_*_arm64.deb in ${out#"$root"/}/debs"
    fi
    echo "$deb"
}

# extract DEB PATH DEST: the one file PATH (a shell pattern, like
# ./boot/vmlinuz-*) of the package, copied to DEST.
extract() {
    local deb=$1 pattern=$2 dest=$3 tree=$out/extract
    rm -rf "$tree"
    mkdir -p "$tree"
    dpkg-deb --fsys-tarfile "$deb" | tar -xf - -C "$tree" --wildcards "$pattern" ||
        die "no $pattern in $(basename "$deb")"
    local found=()
    for file in "$tree"/$pattern; do [ -f "$file" ] && found+=("$file"); done
    [ ${#found[@]} -eq 1 ] || die "$(basename "$deb") has ${#found[@]} files $pattern, not one"
    cp "${found[0]}" "$dest.tmp"
    mv "$dest.tmp" "$dest"
    rm -rf "$tree"
}

dtb=
if [ "${1:-}" = --dtb ]; then
    dtb=${2:-}
    case $dtb in
        '' | /* | *..* | *[!A-Za-z0-9_./,+-]*) die "--dtb needs a relative path like broadcom/bcm2711-rpi-4-b.dtb" ;;
    esac
fi

mkdir -p "$out/debs"
# One at a time: two builds (tests, a user's run) may want these at once.
exec 8>"$out/.lock"
flock 8

# ---- a board's device tree ------------------------------------------------------
if [ -n "$dtb" ]; then
    dest=$out/dtbs/$dtb
    if [ ! -s "$dest" ]; then
        private_apt
        kernel=$(apt-cache depends linux-image-arm64 2>/dev/null |
            awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
        [ -n "$kernel" ] || die "apt-cache depends linux-image-arm64 names no linux-image-<version> package"
        deb=$(download "$kernel")
        mkdir -p "$(dirname "$dest")"
        extract "$deb" "./usr/lib/linux-image-*/$dtb" "$dest"
        # The kernel package is kept only for this file.
        rm -f "$deb"
        log "device tree: $dtb of $kernel"
    fi
    echo "$dest"
    exit 0
fi

# ---- the kernel -----------------------------------------------------------------
if [ ! -s "$image" ]; then
    private_apt
    kernel=$(apt-cache depends "$kernel_meta" 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
    [ -n "$kernel" ] || die "apt-cache depends $kernel_meta names no linux-image-<version> package"
    deb=$(download "$kernel")
    extract "$deb" './boot/vmlinuz-*' "$image.new"
    # An arm64 Image carries "ARM\x64" at offset 0x38 (booting.rst); the
    # partition loads it as it is, so a compressed one will not do.
    magic=$(od -An -tx1 -j56 -N4 "$image.new" | tr -d ' \n')
    [ "$magic" = 41524d64 ] ||
        die "the vmlinuz of $(basename "$deb") is not a raw arm64 Image (no ARM\\x64 magic at 0x38)"
    mv "$image.new" "$image"
    # shellcheck disable=SC2016 # dpkg-deb's own ${field} syntax
    dpkg-deb --show --showformat='${Package} ${Version}\n' "$deb" >"$out/kernel.txt"
    log "kernel: $(cat "$out/kernel.txt")"
fi

# ---- the initramfs --------------------------------------------------------------
busybox=$out/rootfs/busybox
if [ ! -s "$busybox" ]; then
    mkdir -p "$out/rootfs"
    extract "$(download busybox-static)" ./bin/busybox "$busybox"
fi
if [ ! -s "$initrd" ] || [ "$init" -nt "$initrd" ] || [ "$packer" -nt "$initrd" ] ||
    [ "$busybox" -nt "$initrd" ] || [ "$channel" -nt "$initrd" ]; then
    cp "$init" "$out/rootfs/init"
    cp "$channel" "$out/rootfs/bulkhead-channel"
    python3 "$packer" "$initrd.new" <<EOF
dir /bin 755 0 0
dir /dev 755 0 0
dir /proc 755 0 0
dir /sys 755 0 0
nod /dev/console 600 0 0 c 5 1
file /bin/busybox $busybox 755 0 0
slink /bin/sh busybox 777 0 0
file /init $out/rootfs/init 755 0 0
file /bin/bulkhead-channel $out/rootfs/bulkhead-channel 755 0 0
EOF
    mv "$initrd.new" "$initrd"
    log "initramfs: $(stat -c %s "$initrd") bytes"
fi

echo "$image"
echo "$initrd"
