//! The virtual GIC: pure logic, host-tested. The hypervisor's glue
//! (`hyp::interrupts`) connects it to the physical GIC and the trap handlers.
//!
//! - [`state`]: what a partition's guest sees of its GIC (enables,
//!   priorities, pending bits, routing), shared lock-free by its vCPUs;
//! - [`regs`]: the distributor and redistributor registers over that state;
//! - [`sgi`]: ICC_SGI1R_EL1 decoding and routing to the sender's vCPUs;
//! - [`lr`]: list-register values and the per-vCPU priority queue that
//!   holds what does not fit in them.
#![forbid(unsafe_code)]

pub mod gate;
pub mod lr;
pub mod regs;
pub mod remote;
pub mod sgi;
pub mod state;
