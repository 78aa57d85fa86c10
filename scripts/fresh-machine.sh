#!/usr/bin/env bash
# Checks the README's quick start on a truly fresh Debian bookworm machine:
# a debootstrap minbase root with only gcc, libc6-dev, ca-certificates and
# Rust stable (rustup, minimal profile), apt sources only in deb822 form
# and no package lists. The working tree is copied in and the quick start
# runs there as root, in a private mount and PID namespace, so every mount
# and process it makes goes with the namespace. CI runs it after test.sh.
#
#   scripts/fresh-machine.sh [--test] [--keep] [--rebuild-base]
#                            [--limit MINUTES] [-- CMD...]
#
# (default)        run `scripts/run.sh --timeout 40`, then check that setup
#                  installed QEMU (10 or later) and the scripts' tools
#                  (python3, shellcheck, pyflakes3; mkfs.vfat, mcopy and
#                  sfdisk for rpi4-image.sh) and that both demo partitions
#                  printed heartbeats
# --test           then also run scripts/test.sh; it must report
#                  "tests: N passed, 0 failed" with N > 0
# -- CMD...        run CMD in /root/bulkhead instead of run.sh; only its exit
#                  status is checked (and --test's, if given)
# --limit MINUTES  time limit of the whole run (default 30); the process
#                  running over it is stopped by its own pid
# --keep           keep the temporary root (its path is printed)
# --rebuild-base   build the fresh base again even if it is cached
#
# Needs root (re-runs itself with sudo when that is there), debootstrap
# (installed on this host when missing; nothing else on the host is
# installed or configured), unshare and chroot, ~6 GiB free, and network
# access to the Debian mirror, static.rust-lang.org and crates.io. When the
# host trusts certificates Debian's bundle lacks (a TLS-intercepting proxy),
# the root sees them too, bind-mounted in its namespace only.
#
# BULKHEAD_DEBIAN_MIRROR  default http://deb.debian.org/debian
# BULKHEAD_FRESH_CACHE    where the base is cached as a tarball
#                         (default /var/cache/bulkhead-fresh); the key in its
#                         name is a hash of the recipe below
# BULKHEAD_FRESH_TMP      where the temporary root goes (default /var/tmp)
# BULKHEAD_FRESH_RUST     the toolchain rustup-init installs. Default: the
#                         version of this host's own stable toolchain
#                         (`rustc +stable --version`), the Rust stable a
#                         fresh machine of ours comes with; rustup's newest
#                         stable can be newer than any machine has, and
#                         this network's Rust mirror lacks the aarch64
#                         targets' std for some versions. `stable` asks
#                         rustup for its newest.
# The log: target/fresh-machine/<date>.log in this checkout.
set -euo pipefail
export LC_ALL=C
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH

repo=$(cd "$(dirname "$0")/.." && pwd)
mirror=${BULKHEAD_DEBIAN_MIRROR:-http://deb.debian.org/debian}
mirror=${mirror%/}
cache=${BULKHEAD_FRESH_CACHE:-/var/cache/bulkhead-fresh}
tmp_parent=${BULKHEAD_FRESH_TMP:-/var/tmp}
host_stable=$(rustc +stable --version 2>/dev/null | awk '{ print $2 }' || true)
rust_toolchain=${BULKHEAD_FRESH_RUST:-${host_stable:-stable}}
limit_min=30
run_test=
keep=
rebuild=
custom=()

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
        --test) run_test=1; shift ;;
        --keep) keep=1; shift ;;
        --rebuild-base) rebuild=1; shift ;;
        --limit)
            [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || { echo "fresh-machine: --limit needs whole minutes" >&2; exit 2; }
            limit_min=$2; shift 2 ;;
        --) shift; custom=("$@"); [ $# -gt 0 ] || { echo "fresh-machine: nothing after --" >&2; exit 2; }; break ;;
        -h|--help) usage; exit 0 ;;
        *) echo "fresh-machine: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

# ---- root -------------------------------------------------------------------
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then
        echo "fresh-machine: debootstrap, chroot and namespaces need root: running again with sudo" >&2
        exec sudo env BULKHEAD_DEBIAN_MIRROR="$mirror" BULKHEAD_FRESH_CACHE="$cache" \
            BULKHEAD_FRESH_TMP="$tmp_parent" BULKHEAD_FRESH_RUST="$rust_toolchain" PATH="$PATH" "$0" "$@"
    fi
    echo "fresh-machine: needs root (debootstrap, chroot and namespaces), and there is no sudo: run it as root" >&2
    exit 2
fi

[[ $rust_toolchain =~ ^[a-z0-9][a-z0-9.-]*$ ]] ||
    { echo "fresh-machine: BULKHEAD_FRESH_RUST=$rust_toolchain is not a toolchain name" >&2; exit 2; }
start=$(date +%s)
deadline=$(( start + limit_min * 60 ))
mkdir -p "$repo/target/fresh-machine"
log=$repo/target/fresh-machine/$(date +%Y%m%d-%H%M%S).log
: >"$log"
say() { echo "fresh-machine: $*" | tee -a "$log" >&2; }
die() { say "FAILED: $*"; exit 1; }

for tool in unshare chroot tar gzip git flock sha256sum mkfifo df; do
    command -v "$tool" >/dev/null || die "$tool is missing on this host"
done
if command -v curl >/dev/null; then
    download() { curl -fsSL --retry 3 -o "$2" "$1"; }
elif command -v wget >/dev/null; then
    download() { wget -q -O "$2" "$1"; }
else
    die "neither curl nor wget on this host: one is needed to download rustup-init"
fi

# ---- the recipe of the fresh machine ------------------------------------------
# Everything that decides what the base holds is in these two functions and
# these variables: their text is hashed into the cache key, so changing the
# recipe builds a new base.
suite=bookworm
arch=amd64
base_packages=gcc,libc6-dev,ca-certificates
rustup_url=https://static.rust-lang.org/rustup/dist/x86_64-unknown-linux-gnu/rustup-init

# The apt sources of a fresh bookworm install: deb822 only.
debian_sources() {
    cat <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
}

# build_base DIR: the fresh machine, from nothing, in DIR.
build_base() {
    local b=$1
    supervise "debootstrap" "" in_namespace \
        debootstrap --variant=minbase --arch="$arch" --include="$base_packages" \
        "$suite" "$b" "$mirror" || die "debootstrap failed (above; the log: $log)"

    say "downloading rustup-init from $rustup_url"
    { download "$rustup_url" "$work/rustup-init" && download "$rustup_url.sha256" "$work/rustup-init.sha256"; } ||
        die "could not download $rustup_url(.sha256)"
    [ "$(sha256sum <"$work/rustup-init" | cut -d' ' -f1)" = "$(cut -d' ' -f1 "$work/rustup-init.sha256")" ] ||
        die "rustup-init does not match its published sha256"
    install -m 0755 "$work/rustup-init" "$b/tmp/rustup-init"
    rm -f "$b/etc/resolv.conf"
    cat -- /etc/resolv.conf >"$b/etc/resolv.conf"
    trust_host_network "$b"
    supervise "rustup-init" "" in_root "$b" /tmp/rustup-init --profile minimal --default-toolchain "$rust_toolchain" -y ||
        die "rustup-init failed (above; the log: $log)"
    supervise "apt-get clean" "" in_root "$b" apt-get clean || die "apt-get clean failed"
    rm -f "$b/tmp/rustup-init" "$b/etc/resolv.conf" "$b/etc/apt/sources.list"
    rm -rf "$b/var/lib/apt/lists"
    mkdir -p "$b/var/lib/apt/lists/partial" "$b/etc/apt/sources.list.d"
    find "$b/etc/apt/sources.list.d" -mindepth 1 -delete
    debian_sources >"$b/etc/apt/sources.list.d/debian.sources"
}

key=$({ echo "recipe 1 $suite $arch $base_packages $rustup_url $rust_toolchain $mirror"
        declare -f debian_sources build_base; } | sha256sum | cut -c1-16)
tarball=$cache/$suite-base-$key.tar.gz

# ---- running things: under the time limit, in a namespace -----------------------
# Each child runs in the background; its output goes to the terminal, the
# log and (when named) a capture file. It is stopped by its own pid when
# the time limit passes, and on exit.
child=
timed_out=
n_fifo=0
# stop PID: SIGTERM, then SIGKILL after 3 s. unshare blocks SIGTERM while
# it waits; its SIGKILL ends the namespace (--kill-child kills its first
# process, and with it every process in the PID namespace).
stop() {
    local pid=$1 _
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in 1 2 3 4 5 6; do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.5
    done
    kill -KILL "$pid" 2>/dev/null || true
}
supervise() { # LABEL CAPTURE CMD...
    local label=$1 capture=$2 fifo tee_pid status=0
    shift 2
    fifo=$work/fifo.$(( ++n_fifo ))
    mkfifo "$fifo"
    tee -a "$log" ${capture:+"$capture"} <"$fifo" &
    tee_pid=$!
    "$@" >"$fifo" 2>&1 </dev/null &
    child=$!
    while kill -0 "$child" 2>/dev/null; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            timed_out=$label
            say "time limit of $limit_min min reached during $label: stopping it (pid $child)"
            stop "$child"
            break
        fi
        sleep 0.5
    done
    wait "$child" 2>/dev/null || status=$?
    child=
    wait "$tee_pid" || true
    rm -f "$fifo"
    [ -z "$timed_out" ] || die "time limit of $limit_min min (--limit) reached during $label"
    return "$status"
}

# A private mount namespace and PID namespace: what is mounted in it and
# every process in it go when its first process ends (--kill-child ends
# that one when unshare is stopped). in_namespace and the in_* below exec:
# they are only run as supervise's background children, so that the pid
# supervise stops is unshare's own.
in_namespace() { exec unshare --mount --propagation private --pid --fork --kill-child --mount-proc "$@"; }

# in_root ROOT CMD...: CMD in the chroot ROOT as root, plain environment,
# with its own /proc, /sys (read-only), a minimal /dev and /run.
# shellcheck disable=SC2016 # expanded by the inner bash
ns_setup='
set -eu
r=$1 ca=$2; shift 2
mount -t proc -o nosuid,nodev,noexec proc "$r/proc"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$r/sys"
mount -t tmpfs -o nosuid,mode=0755,size=16m dev "$r/dev"
mknod -m 666 "$r/dev/null" c 1 3
mknod -m 666 "$r/dev/zero" c 1 5
mknod -m 666 "$r/dev/full" c 1 7
mknod -m 666 "$r/dev/random" c 1 8
mknod -m 666 "$r/dev/urandom" c 1 9
mknod -m 666 "$r/dev/tty" c 5 0
mkdir "$r/dev/pts" "$r/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$r/dev/pts"
ln -s pts/ptmx "$r/dev/ptmx"
mount -t tmpfs -o nosuid,nodev shm "$r/dev/shm"
ln -s /proc/self/fd "$r/dev/fd"
ln -s /proc/self/fd/0 "$r/dev/stdin"
ln -s /proc/self/fd/1 "$r/dev/stdout"
ln -s /proc/self/fd/2 "$r/dev/stderr"
mount -t tmpfs -o nosuid,nodev,mode=0755 run "$r/run"
mkdir -m 1777 "$r/run/lock"
[ -z "$ca" ] || mount --bind -o ro "$ca" "$r/etc/ssl/certs/ca-certificates.crt"
status=0
env -i HOME=/root USER=root LOGNAME=root SHELL=/bin/bash TERM=dumb \
    PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    chroot "$r" "$@" || status=$?
exit "$status"
'
in_root() {
    local r=$1
    shift
    in_namespace bash -c "$ns_setup" ns-setup "$r" "$ca_bundle" "$@"
}

# The host's network may need certificates Debian's ca-certificates does not
# have (a TLS-intercepting proxy's CA): then the root's bundle plus those is
# bind-mounted over its /etc/ssl/certs/ca-certificates.crt in the namespace
# only, as resolv.conf is copied in; the root itself keeps Debian's bundle.
ca_bundle=
host_ca=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
pem_bodies() {
    awk '/-----BEGIN CERTIFICATE-----/ { c = 1; b = ""; next }
         /-----END CERTIFICATE-----/ { if (c) print b; c = 0; next }
         c { gsub(/[ \t\r]/, ""); b = b $0 }' "$1"
}
trust_host_network() { # ROOT
    local bundle=$1/etc/ssl/certs/ca-certificates.crt extra
    ca_bundle=
    [ -r "$host_ca" ] && [ -r "$bundle" ] || return 0
    extra=$(grep -vxF -f <(pem_bodies "$bundle") <(pem_bodies "$host_ca") || true)
    [ -n "$extra" ] || return 0
    ca_bundle=$work/ca-bundle.crt
    {
        cat -- "$bundle"
        while read -r body; do
            echo "-----BEGIN CERTIFICATE-----"
            fold -w 64 <<<"$body"
            echo "-----END CERTIFICATE-----"
        done <<<"$extra"
    } >"$ca_bundle"
    say "the host trusts $(wc -l <<<"$extra") certificate(s) Debian's ca-certificates lacks ($host_ca; a TLS-intercepting proxy?):
  the root sees them too, in its namespace only (its own files keep Debian's bundle)"
}
# in_checkout ROOT CMD...: the same, in /root/bulkhead.
in_checkout() {
    local r=$1
    shift
    # shellcheck disable=SC2016 # expanded in the chroot
    in_root "$r" /bin/bash -c 'cd /root/bulkhead && "$@"' fresh "$@"
}

# ---- cleanup ----------------------------------------------------------------
work=
cleanup() {
    local status=$? p
    trap - EXIT INT TERM
    if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
        say "stopping pid $child"
        stop "$child"
        wait "$child" 2>/dev/null || true
    fi
    if [ -n "$work" ] && [ -d "$work" ]; then
        if [ -n "$keep" ]; then
            say "kept the temporary root: $work/root (remove it with: rm -rf --one-file-system $work)"
        else
            # Only after the namespaces are gone: no process left inside,
            # nothing mounted below it here.
            for _ in $(seq 20); do
                busy=
                for p in /proc/[0-9]*; do
                    case "$(readlink "$p/root" 2>/dev/null)" in "$work"/*) busy=$p ;; esac
                done
                [ -n "$busy" ] || break
                sleep 0.5
            done
            if [ -n "$busy" ]; then
                say "not removing $work: a process ($busy) still has its root there"
            elif awk -v w="$work" '$5 == w || index($5, w "/") == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
                say "not removing $work: something is mounted below it"
            else
                rm -rf --one-file-system "$work" || say "could not remove all of $work"
            fi
        fi
    fi
    chown -R --reference="$repo" "$repo/target/fresh-machine" 2>/dev/null || true
    exit "$status"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM

# ---- disk and tools -----------------------------------------------------------
mkdir -p "$cache" "$tmp_parent"
avail_gib() { echo $(( $(df -P -k "$1" | awk 'NR == 2 { print $4 }') / 1024 / 1024 )); }
[ "$(avail_gib "$tmp_parent")" -ge 6 ] ||
    die "only $(avail_gib "$tmp_parent") GiB free under $tmp_parent; the fresh root needs about 6 GiB
  (set BULKHEAD_FRESH_TMP to a directory with more room)"
[ "$(avail_gib "$cache")" -ge 1 ] ||
    die "only $(avail_gib "$cache") GiB free under $cache, the base cache needs about 1 GiB (set BULKHEAD_FRESH_CACHE)"
if ! command -v debootstrap >/dev/null; then
    say "installing debootstrap on this host (apt-get install debootstrap; nothing else on the host changes)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >>"$log" 2>&1 || {
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >>"$log" 2>&1 &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >>"$log" 2>&1
    } || die "could not install debootstrap on this host (apt-get's output is in $log)"
fi

work=$(mktemp -d "$tmp_parent/bulkhead-fresh.XXXXXX")
chmod 0755 "$work"
root=$work/root
say "log: $log"
say "temporary root: $root; time limit: $limit_min min"

phase_names=()
phase_times=()
phase() { phase_names+=("$1"); phase_times+=("$2"); }

# ---- 1. the base ----------------------------------------------------------------
t0=$(date +%s)
exec {lock}>"$cache/.lock"
flock -w 1800 "$lock" || die "another run holds $cache/.lock"
if [ -n "$rebuild" ] || [ ! -s "$tarball" ]; then
    say "building the fresh base ($suite minbase + $base_packages + rustup $rust_toolchain, minimal) from $mirror${rebuild:+ (--rebuild-base)}"
    mkdir "$work/base"
    build_base "$work/base"
    say "caching it as $tarball"
    tar --numeric-owner --xattrs --xattrs-include='*' -C "$work/base" -czf "$tarball.part" . ||
        die "could not write $tarball.part"
    mv -f "$tarball.part" "$tarball"
    for old in "$cache/$suite"-base-*.tar.gz; do
        [ "$old" = "$tarball" ] || [ ! -e "$old" ] || { say "removing the base of an older recipe: $old"; rm -f "$old"; }
    done
    rm -rf --one-file-system "$work/base"
    base_from="built now, in $(( $(date +%s) - t0 ))s"
else
    base_from="the cache ($tarball, made $(date -r "$tarball" '+%Y-%m-%d %H:%M'))"
fi
exec {lock}>&-
say "base: $base_from"
mkdir "$root"
tar --numeric-owner --xattrs --xattrs-include='*' -C "$root" -xpzf "$tarball" ||
    die "could not extract $tarball (remove it, or use --rebuild-base)"
rm -f "$root/etc/resolv.conf"
cat -- /etc/resolv.conf >"$root/etc/resolv.conf"
trust_host_network "$root"

# The base is what a fresh machine has, and no more.
# shellcheck disable=SC2016 # expanded in the chroot
supervise "base check" "$work/preflight.out" in_root "$root" /bin/bash -c '
    echo "fresh: $(. /etc/os-release && echo "$PRETTY_NAME"), $(rustc --version), $(gcc --version | head -n 1)"
    for t in $(rustup target list --installed); do echo "fresh-target $t"; done
    for c in $(rustup component list --installed); do echo "fresh-component $c"; done
    for c in qemu-system-aarch64 aarch64-linux-gnu-gcc sudo python3 shellcheck pyflakes3; do echo "fresh-command $c $(command -v "$c" || echo none)"; done
    echo "fresh-lists $(find /var/lib/apt/lists -mindepth 1 -maxdepth 1 ! -name partial ! -name lock | wc -l)"' ||
    die "could not run in the base (above)"
problems=()
grep -q '^fresh: Debian GNU/Linux 12' "$work/preflight.out" || problems+=("not Debian 12 with rustc and gcc")
grep -q '^fresh-target aarch64-unknown-none' "$work/preflight.out" && problems+=("an aarch64-unknown-none target is installed")
grep -qE '^fresh-component (rustfmt|clippy)' "$work/preflight.out" && problems+=("rustfmt or clippy is installed")
grep -qE '^fresh-command [^ ]+ /' "$work/preflight.out" &&
    problems+=("$(sed -nE 's/^fresh-command ([^ ]+) \/.*/\1/p' "$work/preflight.out" | tr '\n' ' ')is installed")
grep -qx 'fresh-lists 0' "$work/preflight.out" || problems+=("/var/lib/apt/lists is not empty")
[ ! -e "$root/etc/apt/sources.list" ] || problems+=("/etc/apt/sources.list exists")
[ "$(ls -A "$root/etc/apt/sources.list.d")" = debian.sources ] || problems+=("sources.list.d holds more than debian.sources")
debian_sources | cmp -s - "$root/etc/apt/sources.list.d/debian.sources" || problems+=("debian.sources is not the fresh one")
[ ${#problems[@]} -eq 0 ] || [[ $base_from != built* ]] || rm -f "$tarball"
[ ${#problems[@]} -eq 0 ] || die "the base is not a fresh machine: $(IFS=';'; echo "${problems[*]}")
  (rebuild it: --rebuild-base)"
say "base checked: no QEMU, no aarch64 targets, no rustfmt/clippy, no python3/shellcheck/pyflakes3, apt sources only in deb822, no package lists"
phase "base" $(( $(date +%s) - t0 ))

# ---- 2. the checkout ---------------------------------------------------------------
t0=$(date +%s)
mkdir -p "$root/root/bulkhead"
git -c safe.directory="$repo" -C "$repo" ls-files -co --exclude-standard -z >"$work/files" ||
    die "git ls-files failed in $repo"
(
    cd "$repo"
    while IFS= read -r -d '' f; do
        case "$f" in target|target/*) continue ;; esac
        [ -e "$f" ] || [ -L "$f" ] || continue # tracked, deleted in the working tree
        printf '%s\0' "$f"
    done <"$work/files" | tar --null --no-recursion -T - -cf - | tar -C "$root/root/bulkhead" -xpf -
) || die "could not copy the checkout into the root"
say "copied $(tr -cd '\0' <"$work/files" | wc -c) files of the working tree to /root/bulkhead (tracked and untracked, not ignored; no target/)"
phase "copy" $(( $(date +%s) - t0 ))

# ---- 3. the quick start -------------------------------------------------------------
failures=()
t0=$(date +%s)
if [ ${#custom[@]} -gt 0 ]; then
    say "running in the fresh root: ${custom[*]}"
    status=0
    supervise "${custom[*]}" "$work/quickstart.out" in_checkout "$root" "${custom[@]}" || status=$?
    [ "$status" -eq 0 ] || failures+=("${custom[*]} exited with status $status")
    phase "command" $(( $(date +%s) - t0 ))
else
    say "running the quick start in the fresh root: cd /root/bulkhead && scripts/run.sh --timeout 40"
    status=0
    supervise "scripts/run.sh" "$work/quickstart.out" in_checkout "$root" scripts/run.sh --timeout 40 || status=$?
    phase "quick start" $(( $(date +%s) - t0 ))
    [ "$status" -eq 0 ] || failures+=("scripts/run.sh exited with status $status")
    out=$(tr -d '\r' <"$work/quickstart.out")
    installed=$(grep -iE '^setup: .*install[a-z]* .*qemu' <<<"$out" | head -n 1 || true)
    [ -n "$installed" ] || failures+=("setup did not report installing QEMU (no 'setup: installing QEMU ...' line)")
    for want in '[alpha] vcpu 0 heartbeat' '[alpha] vcpu 1 heartbeat' '[beta] heartbeat'; do
        grep -qF "$want" <<<"$out" || failures+=("no '$want' line")
    done
    if grep -q 'unavailable for download' <<<"$out"; then
        failures+=("rustup cannot download a component for $rust_toolchain ($(grep -m1 'unavailable for download' <<<"$out")):
  rustup offers no such component for this toolchain here; BULKHEAD_FRESH_RUST=<a version that has it> checks the rest")
    fi
fi

qemu_version=
# shellcheck disable=SC2016 # expanded in the chroot
supervise "installed tools" "$work/qemu.out" in_root "$root" /bin/sh -c \
    'if command -v qemu-system-aarch64 >/dev/null; then qemu-system-aarch64 --version; else echo "none (no qemu-system-aarch64)"; fi
     for c in python3 shellcheck pyflakes3 mkfs.vfat mcopy sfdisk; do command -v "$c" >/dev/null || echo "missing $c"; done' || true
qemu_version=$(sed -n 1p "$work/qemu.out" | tr -d '\r')
if [ ${#custom[@]} -eq 0 ]; then
    major=$(sed -nE '1s/.*version ([0-9]+).*/\1/p' <<<"$qemu_version")
    [ "${major:-0}" -ge 10 ] || failures+=("qemu-system-aarch64 in the root is not 10 or later: ${qemu_version:-none}")
    missing=$(sed -n 's/^missing //p' "$work/qemu.out" | tr -d '\r' | tr '\n' ' ')
    [ -z "$missing" ] || failures+=("setup did not install ${missing}in the root")
fi

# ---- 4. the tests --------------------------------------------------------------------
if [ -n "$run_test" ]; then
    t0=$(date +%s)
    say "running the tests in the fresh root: scripts/test.sh"
    status=0
    supervise "scripts/test.sh" "$work/test.out" in_checkout "$root" scripts/test.sh || status=$?
    phase "test" $(( $(date +%s) - t0 ))
    [ "$status" -eq 0 ] || failures+=("scripts/test.sh exited with status $status")
    summary=$(grep -E '^tests: [0-9]+ passed, [0-9]+ failed' "$work/test.out" | tail -n 1 || true)
    [[ $summary =~ ^tests:\ ([0-9]+)\ passed,\ 0\ failed ]] && [ "${BASH_REMATCH[1]}" -gt 0 ] ||
        failures+=("scripts/test.sh did not report 'tests: N passed, 0 failed' with N > 0 (${summary:-no tests: line})")
fi

# ---- 5. report -------------------------------------------------------------------------
{
    echo
    echo "fresh-machine: report"
    echo "  base from:   $base_from"
    for i in "${!phase_names[@]}"; do
        printf '  %-12s %ss\n' "${phase_names[$i]}:" "${phase_times[$i]}"
    done
    printf '  %-12s %ss\n' "total:" "$(( $(date +%s) - start ))"
    echo "  QEMU in the root: ${qemu_version:-none}"
    if [ ${#custom[@]} -eq 0 ]; then
        [ -z "$installed" ] || echo "  setup said:  $installed"
        for want in '[alpha] vcpu 0 heartbeat' '[alpha] vcpu 1 heartbeat' '[beta] heartbeat'; do
            line=$(grep -F "$want" <<<"$out" | head -n 1 || true)
            [ -z "$line" ] || echo "  heartbeat:   $line"
        done
    fi
    [ -z "$run_test" ] || echo "  tests:       ${summary:-none}"
    echo "  log:         $log"
} | tee -a "$log" >&2
if [ ${#failures[@]} -gt 0 ]; then
    for f in "${failures[@]}"; do say "FAILED: $f"; done
    exit 1
fi
if [ ${#custom[@]} -gt 0 ]; then
    say "PASSED: ${custom[*]}${run_test:+ and scripts/test.sh} succeeded on a fresh $suite machine"
else
    verb=works
    [ -z "$run_test" ] || verb=work
    say "PASSED: the quick start ${run_test:+and scripts/test.sh }$verb on a fresh $suite machine"
fi
