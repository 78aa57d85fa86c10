//! The demo channels (boards/*/demo.toml and linux.toml,
//! tests/configs/*linux.toml, the README's "Channels between
//! partitions"): two rings, [`RING_A`] towards the answering partition
//! (the RTOS, demo-beta) and [`RING_B`] back, and a doorbell each way.
//!
//! [`answer`]: each message that comes in is printed (`channel: got
//! <text>`) and answered with `echo: <text>`. [`greet`]: sends one
//! message and prints the answer (`channel: answered <text>`). Both work
//! in the doorbell's interrupt handler, which asks for the next doorbell
//! once its ring is empty. Only under Bulkhead: natively there is nothing
//! to talk to.
// Each example that includes this module uses one of the two sides.
#![allow(dead_code)]

use core::cell::RefCell;

use guest_lib::channel::{MESSAGE_MAX, Receiver, Sender};
use guest_lib::{gic, irq, println};

/// The rings, the doorbell page (channel 0 rings the other side) and the
/// doorbell each side receives.
pub const RING_A: usize = 0x7000_0000;
pub const RING_B: usize = 0x7000_1000;
pub const RING_SIZE: usize = 0x1000;
pub const PAGE: usize = 0x0a00_0000;
pub const INTID: u32 = 48;

/// Both ends, the doorbell handler's only (one vCPU takes it).
struct Ends {
    rx: Receiver,
    tx: Sender,
    answers: bool,
}

struct HandlerOnly(RefCell<Option<Ends>>);

// SAFETY: only the doorbell's handler touches it once installed (and the
// installing code before, with IRQs masked), on the one vCPU the doorbell
// is routed to (the one that installs it), and handlers do not nest.
unsafe impl Sync for HandlerOnly {}

static ENDS: HandlerOnly = HandlerOnly(RefCell::new(None));

/// Answers what comes in through [`RING_A`] (what waits already, then
/// from the doorbell's interrupt).
pub fn answer() {
    if let Some(mut ends) = attach(RING_A, RING_B, true) {
        drain(&mut ends);
        install(ends);
    }
}

/// Sends `message` through [`RING_A`]; the answer is printed when it comes.
pub fn greet(message: &[u8]) {
    if let Some(mut ends) = attach(RING_B, RING_A, false) {
        if ends.tx.try_send(message).is_err() {
            println!("channel: the ring is full");
        }
        drain(&mut ends);
        install(ends);
    }
}

fn attach(rx: usize, tx: usize, answers: bool) -> Option<Ends> {
    if !guest_lib::mode::under_bulkhead() {
        return None;
    }
    // SAFETY: both rings are shared regions this partition maps read-write
    // (its configuration), this side the only consumer of one and the only
    // producer of the other.
    let ends = unsafe {
        (
            Receiver::attach(rx, RING_SIZE),
            Sender::attach(tx, RING_SIZE, PAGE, 0),
        )
    };
    match ends {
        (Ok(rx), Ok(tx)) => Some(Ends { rx, tx, answers }),
        _ => {
            println!("channel: no rings");
            None
        }
    }
}

fn install(ends: Ends) {
    irq::without_interrupts(|| *ENDS.0.borrow_mut() = Some(ends));
    let _ = irq::register(INTID, on_doorbell);
    let _ = gic::enable(INTID);
    // A message that came before the handler was in place.
    irq::without_interrupts(|| on_doorbell(INTID));
}

fn on_doorbell(_intid: u32) {
    if let Some(ends) = ENDS.0.borrow_mut().as_mut() {
        drain(ends);
    }
}

/// Takes every message waiting, until the ring stays empty with the
/// doorbell asked for.
fn drain(ends: &mut Ends) {
    let mut message = [0; MESSAGE_MAX];
    loop {
        while let Some(len) = ends.rx.try_recv(&mut message) {
            let text = core::str::from_utf8(&message[..len]).unwrap_or("(not UTF-8)");
            if !ends.answers {
                println!("channel: answered {text}");
                continue;
            }
            println!("channel: got {text}");
            let mut reply = [0; MESSAGE_MAX];
            let prefix = b"echo: ";
            let n = (prefix.len() + len).min(MESSAGE_MAX);
            reply[..prefix.len()].copy_from_slice(prefix);
            reply[prefix.len()..n].copy_from_slice(&message[..n - prefix.len()]);
            if ends.tx.try_send(&reply[..n]).is_err() {
                println!("channel: the answer ring is full");
            }
        }
        // Empty: ask for the next doorbell, unless a message came meanwhile.
        if ends.rx.request_doorbell() {
            return;
        }
    }
}
