//! 20 heartbeats 100 ms apart, then "done" and exit code 0.
#![no_std]
#![no_main]

use core::time::Duration;

#[path = "beats/mod.rs"]
mod beats;

guest_lib::entry!(main);

fn main() -> ! {
    beats::beat(Duration::from_millis(100), 20)
}
