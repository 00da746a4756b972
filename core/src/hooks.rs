//! What a backend tells core without core knowing the backend: what its panics
//! mean ([`PanicTranslator`]) and whether this thread drives its loop
//! ([`BlockingProbe`]); and how panics caught as values stay quiet ([`quietly`]).

use std::cell::Cell;
use std::sync::{Once, OnceLock};

use crate::RunError;

/// Says what a backend's panic means: a backend crate submits one with
/// `inventory::submit!`, and [`RunError::from_panic`] asks every linked translator
/// before it calls a panic [`RunError::Panicked`].
///
/// The tokio runners submit one that turns tokio's "must be called from the context
/// of a Tokio 1.x runtime" into [`RunError::WrongRuntime`]: core knows no backend.
///
/// # Examples
///
/// ```
/// use autoawait_core::{PanicTranslator, RunError};
///
/// fn my_loop(message: &str) -> Option<RunError> {
///     message.contains("no my-loop running").then(|| RunError::WrongRuntime {
///         needs: "my-loop".into(),
///         runner: autoawait_core::current_runner_name().unwrap_or_default(),
///         detail: message.into(),
///     })
/// }
/// inventory::submit! { PanicTranslator(my_loop) }
///
/// let err = RunError::from_panic(Box::new("no my-loop running here"));
/// assert!(err.is_wrong_runtime());
/// ```
#[derive(Debug)]
pub struct PanicTranslator(pub fn(&str) -> Option<RunError>);

inventory::collect!(PanicTranslator);

/// Says whether the calling thread drives a backend's loop that a blocking call
/// would freeze (a tokio current_thread runtime): `Some(what it drives)`.
///
/// Submitted with `inventory::submit!` by a backend crate; every blocking
/// [`Runner::run`](crate::Runner::run) of the kit
/// ([`Lifecycle::check_run`](crate::kit::Lifecycle::check_run)) asks them first and
/// refuses with [`RunError::WouldBlock`], as `reqwest::blocking` refuses to run
/// inside a runtime.
///
/// # Examples
///
/// ```
/// use autoawait_core::BlockingProbe;
///
/// fn never() -> Option<&'static str> {
///     None
/// }
/// inventory::submit! { BlockingProbe(never) }
/// ```
#[derive(Debug)]
pub struct BlockingProbe(pub fn() -> Option<&'static str>);

inventory::collect!(BlockingProbe);

/// What the calling thread drives that blocking it would freeze, if any linked
/// backend says so.
pub(crate) fn drives_a_loop() -> Option<&'static str> {
    inventory::iter::<BlockingProbe>
        .into_iter()
        .find_map(|probe| (probe.0)())
}

thread_local! {
    static QUIET: Cell<u32> = const { Cell::new(0) };
}

/// Runs `f` with the panics it catches as values kept off stderr: a panicking cell
/// is an error value, not noise on the terminal (nor a full backtrace under
/// `RUST_BACKTRACE`). Set `AUTOAWAIT_PANIC_OUTPUT=1` to see them anyway; the
/// message is kept in the value either way.
///
/// Installs, once, a panic hook that defers to the one it replaces outside `f`.
///
/// # Examples
///
/// ```
/// let caught = autoawait_core::kit::quietly(|| std::panic::catch_unwind(|| panic!("hush")));
/// assert!(caught.is_err()); // and nothing was printed
/// ```
pub fn quietly<R>(f: impl FnOnce() -> R) -> R {
    install_hook();
    QUIET.with(|q| q.set(q.get() + 1));
    struct Loud;
    impl Drop for Loud {
        fn drop(&mut self) {
            QUIET.with(|q| q.set(q.get().saturating_sub(1)));
        }
    }
    let _loud = Loud;
    f()
}

fn install_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if QUIET.with(Cell::get) == 0 || wants_panic_output() {
                previous(info);
            }
        }));
    });
}

fn wants_panic_output() -> bool {
    static WANTS: OnceLock<bool> = OnceLock::new();
    *WANTS.get_or_init(|| {
        std::env::var("AUTOAWAIT_PANIC_OUTPUT").is_ok_and(|v| !matches!(v.trim(), "" | "0"))
    })
}
