//! A steady neighbour: a heartbeat every 250 ms for 30 s (120 beats), then
//! "done" and exit code 0. Long enough to outlast a Linux partition's boot
//! and power-off beside it under emulation (5 s on an idle host), so a test
//! sees its beats go on after Linux stops, and the machine powers off once
//! it is done too.
#![no_std]
#![no_main]

use core::time::Duration;

use guest_lib::println;

#[path = "beats/mod.rs"]
mod beats;

guest_lib::entry!(main);

fn main() -> ! {
    println!("steady: booted ({})", guest_lib::hypervisor());
    beats::beat(Duration::from_millis(250), 120)
}
