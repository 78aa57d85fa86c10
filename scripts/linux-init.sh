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
# from user space with /bin/bulkhead-channel (scripts/linux-channel.sh:
# /dev/mem through busybox's devmem, no module): one message, and the
# RTOS's answer.
if bulkhead-channel send hello-from-linux; then
    say "channel: sent hello-from-linux"
    if answer=$(bulkhead-channel receive); then
        say "channel: the rtos answered $answer"
    else
        say "channel: no answer"
    fi
else
    say "channel: could not send"
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
