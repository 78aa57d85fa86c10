#!/usr/bin/env bash
# Builds and boots a partition set in QEMU; the console is this terminal.
#
#   scripts/run.sh [--board NAME] [--config FILE] [--timeout SECONDS] [--gdb]
#
# --board NAME     boards/NAME (default qemu-virt); its qemu-args file holds
#                  the machine's QEMU options
# --config FILE    a partition set (default boards/NAME/demo.toml)
# --timeout S      stop QEMU (by its process id) after S seconds
# --gdb            QEMU waits for gdb-multiarch on localhost:1234
# Quit an interactive run with Ctrl-A X.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
board=qemu-virt
config=
timeout=
gdb=
while [ $# -gt 0 ]; do
    case "$1" in
        --board) board=$2; shift 2 ;;
        --config) config=$2; shift 2 ;;
        --timeout) timeout=$2; shift 2 ;;
        --gdb) gdb=1; shift ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -f "$root/boards/$board/qemu-args" ] || { echo "run.sh: no board $board (boards/$board/qemu-args)" >&2; exit 2; }

"$root/scripts/setup.sh"
image=$("$root/scripts/build.sh" --board "$board" ${config:+--config "$config"})

read -ra machine < "$root/boards/$board/qemu-args"
args=("${machine[@]}" -nographic -kernel "$image")
if [ -n "$gdb" ]; then
    command -v gdb-multiarch >/dev/null || {
        if [ "$(id -u)" -eq 0 ]; then apt-get install -y -qq gdb-multiarch >&2; else sudo apt-get install -y -qq gdb-multiarch >&2; fi
    }
    args+=(-s -S)
    echo "run.sh: QEMU waits for gdb: gdb-multiarch ${image%.bin}.elf -ex 'target remote localhost:1234'" >&2
fi

if [ -z "$timeout" ]; then
    exec qemu-system-aarch64 "${args[@]}"
fi

qemu-system-aarch64 "${args[@]}" </dev/null &
pid=$!
deadline=$(( $(date +%s) + timeout ))
while kill -0 "$pid" 2>/dev/null; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
        kill "$pid"
        wait "$pid" 2>/dev/null || true
        echo "run.sh: stopped QEMU (pid $pid) after ${timeout}s" >&2
        exit 0
    fi
    sleep 0.2
done
wait "$pid"
