//! Process plumbing every part of the service uses: the epoch clock handed to the core, the
//! shutdown signal every task watches, and giving idle memory back to the system.

pub mod clock;
pub mod memory;
pub mod shutdown;
