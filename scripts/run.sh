#!/usr/bin/env bash
# Builds and boots a partition set in QEMU; the console is this terminal.
# `scripts/run.sh --help` says which board and partition set it boots.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
board=qemu-virt
config=
timeout=
gdb=
help=
need() { [ $# -ge 2 ] || { echo "run.sh: $1 needs a value (see --help)" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
    case "$1" in
        --board) need "$@"; board=$2; shift 2 ;;
        --config) need "$@"; config=$2; shift 2 ;;
        --timeout) need "$@"; timeout=$2; shift 2 ;;
        --gdb) gdb=1; shift ;;
        -h|--help) help=1; shift ;;
        *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
set_file=${config:-$root/boards/$board/demo.toml}
shown() { case "$1" in "$root"/*) echo "${1#"$root"/}" ;; *) echo "$1" ;; esac; }

# The partitions of a set and their CPUs, read loosely (the build checks it).
partitions() {
    awk '/^\[\[partition\]\]/ { p = 1; next }
         /^\[/ { p = 0 }
         p && /^name *=/ { gsub(/.*= *"|".*/, ""); name = $0 }
         p && /^cpus *=/ { sub(/[^[]*/, ""); sub(/ *#.*/, ""); printf "%s%s on CPUs %s", sep, name, $0; sep = ", " }
         END { print "" }' "$1"
}

if [ -n "$help" ]; then
    cat <<EOF
usage: scripts/run.sh [--board NAME] [--config FILE] [--timeout SECONDS] [--gdb]

Builds Bulkhead with a partition set and boots it in QEMU; the console is
this terminal (quit with Ctrl-A X). Installs what is missing first
(scripts/setup.sh: the Rust targets, the cross compiler, QEMU 10).

  --board NAME     boards/NAME (default qemu-virt); QEMU's command line comes
                   from its board.toml ([qemu], its CPUs and RAM): qemu-virt
                   (GICv3), qemu-virt-gicv2, rpi4 (the Raspberry Pi 4 on
                   QEMU's raspi4b)
  --config FILE    a partition set (default boards/NAME/demo.toml)
  --timeout S      stop QEMU (by its process id) after S seconds
  --gdb            QEMU waits for gdb-multiarch on localhost:1234

EOF
    if [ -f "$root/boards/$board/board.toml" ]; then
        echo "With these options it boots board $board (boards/$board/board.toml)"
    else
        echo "With these options it would boot board $board, but boards/$board/board.toml does not exist"
    fi
    if [ -f "$set_file" ]; then
        echo "and the partition set $(shown "$set_file"): $(partitions "$set_file")."
    else
        echo "and the partition set $(shown "$set_file"), which does not exist."
    fi
    exit 0
fi

[ -f "$root/boards/$board/board.toml" ] ||
    { echo "run.sh: no board $board (boards/$board/board.toml)" >&2; exit 2; }
[ -f "$set_file" ] || { echo "run.sh: no partition set $set_file" >&2; exit 2; }

"$root/scripts/setup.sh"
image=$("$root/scripts/build.sh" --board "$board" --config "$set_file")
# bulkhead-config is the host tool scripts/build.sh has just built.
tool=$root/target/bulkhead/release/bulkhead-config
args=(qemu --board "$board" --repo-root "$root" --kernel "$image" ${timeout:+--timeout "$timeout"})
if [ -n "$gdb" ]; then
    command -v gdb-multiarch >/dev/null ||
        echo "run.sh: gdb-multiarch is not installed (apt-get install gdb-multiarch)" >&2
    args+=(-- -s -S)
    echo "run.sh: QEMU waits for gdb: gdb-multiarch ${image%.bin}.elf -ex 'target remote localhost:1234'" >&2
fi
echo "run.sh: booting $(shown "$set_file") on $board: $(partitions "$set_file")" >&2

if [ -z "$timeout" ]; then
    exec "$tool" "${args[@]}"
fi
# The time limit the user asked for is not a failure.
status=0
"$tool" "${args[@]}" || status=$?
[ "$status" -eq 124 ] && exit 0
exit "$status"
