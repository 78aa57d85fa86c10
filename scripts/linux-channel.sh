#!/bin/sh
# /bin/bulkhead-channel in the Linux partition's initramfs: it runs inside
# the guest, under busybox's sh, not on the host (scripts/linux.sh packs
# it). A channel between partitions from Linux user space with no module:
# the rings and the doorbell page through /dev/mem with busybox's devmem,
# at the addresses the partition set gives them (the README's "Channels
# between partitions"; here the demo sets' pair). A ring's layout is
# bulkhead_abi::ring's (struct bulkhead_ring in bulkhead.h): magic
# "BKRG", version, slot size and count at 0..16, head at 64, tail at 128,
# wants_doorbell at 132, 64-byte slots (a u32 length, then the bytes)
# from 192.
#
#   bulkhead-channel send TEXT   puts TEXT (at most 60 bytes) in the ring
#                                towards the other partition, and rings
#                                its doorbell if it asked for one
#   bulkhead-channel receive     prints the next message of the ring back,
#                                polling for up to 10 s (status 1 if none)
#
# Set BULKHEAD_RING_OUT, BULKHEAD_RING_IN and BULKHEAD_DOORBELL (guest
# physical addresses) and BULKHEAD_CHANNEL for another set's channel.
set -u
RING_OUT=$((${BULKHEAD_RING_OUT:-0x70000000}))
RING_IN=$((${BULKHEAD_RING_IN:-0x70001000}))
DOORBELL=$((${BULKHEAD_DOORBELL:-0x0a000000}))
CHANNEL=${BULKHEAD_CHANNEL:-0}
MESSAGE_MAX=60

rd() { echo $(($(devmem "$1" 32))); }
wr() { devmem "$1" 32 "$2"; }

# A ring's header, if nobody wrote it yet: version 1, 64-byte slots, 32 of
# them in a page, then the magic.
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
    attach "$base"
    slots=$(rd $((base + 12)))
    head=$(rd $((base + 64)))
    tail=$(rd $((base + 128)))
    if [ $(((head - tail) & 0xffffffff)) -ge "$slots" ]; then
        echo "bulkhead-channel: the ring is full" >&2
        return 1
    fi
    slot=$((base + 192 + head % slots * 64))
    # shellcheck disable=SC2046 # one word per byte, on purpose
    set -- $(printf '%s' "$1" | hexdump -v -e '1/1 "%u "')
    if [ $# -gt $MESSAGE_MAX ]; then
        echo "bulkhead-channel: at most $MESSAGE_MAX bytes" >&2
        return 1
    fi
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
    # The message, then the head that publishes it.
    wr $((base + 64)) $(((head + 1) & 0xffffffff))
    # The consumer asked for a doorbell: clear its request, ring it.
    if [ "$(rd $((base + 132)))" -ne 0 ]; then
        wr $((base + 132)) 0
        wr "$DOORBELL" "$CHANNEL"
    fi
}

receive() {
    base=$RING_IN
    attach "$base"
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
    [ "$len" -le $MESSAGE_MAX ] || len=$MESSAGE_MAX
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
    # Read, then the tail that frees the slot.
    wr $((base + 128)) $(((tail + 1) & 0xffffffff))
    echo "$text"
}

case "${1:-}" in
    send) [ $# -eq 2 ] || { echo "usage: bulkhead-channel send TEXT" >&2; exit 2; }
        send "$2" ;;
    receive) receive ;;
    *) echo "usage: bulkhead-channel send TEXT | receive" >&2; exit 2 ;;
esac
