//! The partitions' consoles: pure logic, host-tested.
//!
//! The hypervisor owns the board UART. A partition writes through the
//! CONSOLE_WRITE hypercall or through its emulated PL011 ([`pl011`]); either
//! way its bytes go into its own [`OutRing`] as written, and leave character
//! by character, framed with the partition's prefix by its [`Sender`] (see
//! [`framing`]): a prompt shows at once, each visible line starts with its
//! partition's prefix, and lines of different partitions never mix.
//!
//! No partition waits for another's output. Only a partition's own CPUs
//! move its bytes to the UART, a bounded number at a time and only while
//! the UART has room, never polling it. Who may transmit is decided by the
//! lock-free [`Arbiter`]: one visible line at a time, the partitions with
//! output waiting taking turns in round-robin order, and a line idle for
//! a bounded time, or longer than [`LINE_MAX`], ended for the others. A
//! flooding partition therefore delays another's output by at most one of
//! its lines per turn, and never its execution; a partition that writes
//! faster than the UART drains loses bytes of its own ring, counted and
//! reported, and nobody else's.
//!
//! Input (`input`): bytes received on the board UART go to the partition
//! with the focus, into its emulated PL011's receive FIFO; Ctrl-] commands
//! move the focus.
#![forbid(unsafe_code)]

mod arbiter;
pub mod framing;
pub mod input;
pub mod pl011;
mod ring;

pub use arbiter::{Arbiter, Turn};
pub use framing::{LINE_MAX, Limits, PREFIX_MAX, Sender, Uart};
pub use ring::{HYP_LINES, OutRing};
