#!/bin/sh
# /init of the Linux partition's initramfs: it runs inside the guest, under
# busybox's sh, not on the host. scripts/linux.sh packs it with busybox
# (every applet a link in /bin); edit it here, and the next scripts/linux.sh
# (or a build of a set that boots it) packs it again.
#
# It reports what the partition looks like from inside, each line starting
# with "bulkhead-linux: " (tests/linux.rs reads them): both CPUs online, the
# interrupt counts (IPIs and the architected timer per CPU) before and
# after work on both CPUs that makes them interrupt each other. Then it
# asks for a line on the console and acts on it:
#   reboot     `reboot -f`: PSCI SYSTEM_RESET, which restarts this partition
#              only (it boots again, to this /init again)
#   poweroff   `poweroff -f`: PSCI SYSTEM_OFF, which stops this partition only
#   anything else: echoed, and asked again
# The console is the partition's emulated PL011; under scripts/run.sh it
# gets the keyboard while it has the console's focus (Ctrl-] n moves it).
/bin/busybox --install -s /bin
export PATH=/bin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

say() { echo "bulkhead-linux: $*"; }

say "init reached"
say "nproc $(nproc)"
say "cpus online $(cat /sys/devices/system/cpu/online)"

# The interrupts that show the partition's GIC at work: inter-processor
# interrupts (IPI0..) and the architected timer, one line each, labelled
# with the phase.
interrupts() {
    grep -E '^ *IPI[0-9]+:|arch_timer' /proc/interrupts | while read -r line; do
        say "interrupts $1 $line"
    done
}

# Work on both CPUs that makes them interrupt each other: short-lived
# processes started from a shell pinned to one CPU are scheduled on the
# other (rescheduling and function-call IPIs, TLB shootdowns), on each CPU
# in turn, while a busy loop keeps the other one running.
# The inner scripts run in their own shells: $i is theirs (SC2016).
# shellcheck disable=SC2016
work() {
    for cpu in 0 1; do
        other=$((1 - cpu))
        taskset -c "$other" sh -c 'i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done' &
        busy=$!
        taskset -c "$cpu" sh -c 'i=0; while [ $i -lt 40 ]; do (true) & i=$((i+1)); done; wait'
        wait "$busy"
    done
}

interrupts before
work
interrupts after

# The channel to the RTOS (the README's "Channels between partitions"),
# from user space through /dev/mem with busybox's devmem, no module: a
# ring towards it at 0x70000000, one back at 0x70001000 (their layout is
# bulkhead_abi::ring's, struct bulkhead_ring in bulkhead.h), the doorbell
# page at 0x0a000000. It sends one message, rings the RTOS's doorbell if
# the RTOS asked for one, and polls for the answer.
RING_OUT=$((0x70000000))
RING_IN=$((0x70001000))
DOORBELL=$((0x0a000000))
rd() { echo $(( $(devmem "$1" 32) )); }
wr() { devmem "$1" 32 "$2"; }
# A ring's header, if nobody wrote it yet: version 1, 64-byte slots, 32 of
# them in a page, then the magic "BKRG".
attach() {
    if [ "$(rd "$1")" -eq 0 ]; then
        wr $(($1 + 4)) 1
        wr $(($1 + 8)) 64
        wr $(($1 + 12)) 32
        wr "$1" $((0x47524b42))
    fi
}
send() {
    base=$RING_OUT
    slots=$(rd $((base + 12)))
    head=$(rd $((base + 64)))
    tail=$(rd $((base + 128)))
    [ $(((head - tail) & 0xffffffff)) -lt "$slots" ] || return 1
    slot=$((base + 192 + head % slots * 64))
    # shellcheck disable=SC2046 # one word per byte, on purpose
    set -- $(printf '%s' "$1" | hexdump -v -e '1/1 "%u "')
    wr "$slot" $#
    off=4 word=0 bits=0
    for byte; do
        word=$((word | byte << bits)) bits=$((bits + 8))
        if [ "$bits" -eq 32 ]; then
            wr $((slot + off)) "$word"
            off=$((off + 4)) word=0 bits=0
        fi
    done
    [ "$bits" -eq 0 ] || wr $((slot + off)) "$word"
    wr $((base + 64)) $(((head + 1) & 0xffffffff))
    # The consumer asked for a doorbell: clear its request, ring channel 0.
    if [ "$(rd $((base + 132)))" -ne 0 ]; then
        wr $((base + 132)) 0
        wr "$DOORBELL" 0
    fi
}
receive() {
    base=$RING_IN
    tries=0
    while [ "$(rd $((base + 64)))" -eq "$(rd $((base + 128)))" ]; do
        tries=$((tries + 1))
        [ "$tries" -lt 100 ] || return 1
        usleep 100000
    done
    slots=$(rd $((base + 12)))
    tail=$(rd $((base + 128)))
    slot=$((base + 192 + tail % slots * 64))
    len=$(rd "$slot")
    text='' off=0
    while [ "$off" -lt "$len" ]; do
        word=$(rd $((slot + 4 + off)))
        k=0
        while [ "$k" -lt 4 ] && [ $((off + k)) -lt "$len" ]; do
            # shellcheck disable=SC2059 # the format is the byte's escape
            text="$text$(printf "\\$(printf %o $(((word >> (8 * k)) & 255)))")"
            k=$((k + 1))
        done
        off=$((off + 4))
    done
    wr $((base + 128)) $(((tail + 1) & 0xffffffff))
    echo "$text"
}
attach "$RING_OUT"
attach "$RING_IN"
if send "hello-from-linux"; then
    say "channel: sent hello-from-linux"
    if answer=$(receive); then
        say "channel: the rtos answered $answer"
    else
        say "channel: no answer"
    fi
else
    say "channel: the ring is full"
fi

while :; do
    say "type reboot or poweroff"
    read -r line || line=
    say "got $line"
    case "$line" in
        reboot) say "rebooting"; reboot -f ;;
        poweroff) say "powering off"; poweroff -f ;;
    esac
done
