//! [`Spin`]: one bounded spin, shared by every hand-off.

use std::hint;
use std::thread;
use std::time::{Duration, Instant};

/// Busy polls between two time checks.
const BURST: u32 = 64;

/// A bounded spin: the caller polls something in a loop and asks
/// [`keep_spinning`](Self::keep_spinning) after each miss.
///
/// On the VMs this project runs on, every hand-off that only sleeps (a condvar,
/// park/unpark, a channel) costs 10–50 µs, while a spinning ping-pong costs well
/// under a microsecond: spinning for a bounded time before sleeping gets a
/// threaded runner's round trip near the floor. Misses come in bursts of 64 busy
/// polls; between bursts the clock is read, and the core is given away
/// (`yield_now`) so that a peer sharing it (more runnable threads than cores) can
/// run. A zero budget never spins.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::time::Duration;
/// use autoawait_core::kit::Spin;
///
/// let flag = AtomicBool::new(false);
/// let mut spin = Spin::new(Duration::from_micros(50));
/// while !flag.load(Ordering::Acquire) {
///     if !spin.keep_spinning() {
///         break; // time to sleep on something
///     }
/// }
/// assert!(!Spin::new(Duration::ZERO).keep_spinning());
/// ```
#[derive(Debug)]
pub struct Spin {
    budget: Duration,
    started: Option<Instant>,
    misses: u32,
}

impl Spin {
    /// A spin of at most `budget`.
    pub fn new(budget: Duration) -> Self {
        Spin {
            budget,
            started: None,
            misses: 0,
        }
    }

    /// Counts one miss; `false` once the budget is spent (then park or sleep).
    pub fn keep_spinning(&mut self) -> bool {
        if self.budget.is_zero() {
            return false;
        }
        self.misses = self.misses.wrapping_add(1);
        if !self.misses.is_multiple_of(BURST) {
            hint::spin_loop();
            return true;
        }
        let started = *self.started.get_or_insert_with(Instant::now);
        if started.elapsed() >= self.budget {
            return false;
        }
        thread::yield_now();
        true
    }

    /// One burst of busy polls, no clock and no yield: `true` as soon as `ready()`
    /// is. For a peer that is expected any moment (the next cell after a quick one).
    pub fn burst(mut ready: impl FnMut() -> bool) -> bool {
        for _ in 0..BURST {
            if ready() {
                return true;
            }
            hint::spin_loop();
        }
        ready()
    }

    /// Starts over: the next miss begins a new budget.
    pub fn reset(&mut self) {
        self.started = None;
        self.misses = 0;
    }
}
