//! Two vCPUs, each with a 200 ms heartbeat from its own virtual timer;
//! vCPU 0 greets beta through their channel (`channel-echo`) and prints
//! its answer (`channel: answered echo: hello from alpha`). Runs forever.
#![no_std]
#![no_main]

use core::time::Duration;

use guest_lib::{println, smp, timer};

#[path = "channel-echo/mod.rs"]
mod channel_echo;

guest_lib::entry!(main);

const PERIOD: Duration = Duration::from_millis(200);

fn main() -> ! {
    println!(
        "alpha: booted on vcpu {} ({})",
        smp::cpu_index(),
        guest_lib::hypervisor()
    );
    channel_echo::greet(b"hello from alpha");
    if let Err(error) = smp::start_cpu(1, beat) {
        println!("alpha: could not start vcpu 1: {:?}", error);
    }
    beat(smp::cpu_index())
}

fn beat(cpu: usize) -> ! {
    println!("alpha: vcpu {} running", cpu);
    timer::start_periodic(PERIOD, heartbeat);
    guest_lib::idle()
}

fn heartbeat(count: u64) {
    println!(
        "vcpu {} heartbeat {} t={}",
        smp::cpu_index(),
        count,
        timer::physical_now()
    );
}
