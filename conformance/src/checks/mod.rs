//! The checks, in the order they run.

mod cells;
mod lifetimes;
mod threads;

pub use cells::*;
pub use lifetimes::*;
pub use threads::*;
