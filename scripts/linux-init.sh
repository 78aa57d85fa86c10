#!/bin/sh
# /init of the Linux partition's initramfs: it runs inside the guest, under
# busybox's sh, not on the host. scripts/linux.sh packs it with busybox
# (every applet a link in /bin); edit it here, and the next scripts/linux.sh
# (or a build of a set that boots it) packs it again.
#
# It reports what the partition looks like from inside, each line starting
# with "bulkhead-linux: " (tests/linux.rs reads them), then powers the
# partition off: `poweroff -f` is PSCI SYSTEM_OFF, which stops this
# partition only. To add a step, add it before the power-off.
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
# interrupts (IPI0..) and the architected timer, one line each.
grep -E '^ *IPI[0-9]+:|arch_timer' /proc/interrupts | while read -r line; do
    say "interrupts $line"
done

say "powering off"
poweroff -f
