//! [`KernelOutput`]: output from any thread, routed to the cell it belongs to.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use autoawait_core::{CancelToken, CellId};
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedSender;
use zeromq::ZmqMessage;

use crate::capture::Capture;
use crate::outbox::{Outbox, Stream};
use crate::wire::{self, Bytes, Message, Signer};
use crate::{ErrorReport, MimeBundle};

/// How many finished cells keep their routing (older ones route to the latest cell).
const KEEP_CELLS: usize = 4096;

/// The request a cell came from: where its output goes.
#[derive(Debug)]
pub(crate) struct Parent {
    pub(crate) header: Value,
    pub(crate) identities: Vec<Bytes>,
}

impl Parent {
    pub(crate) fn of(msg: &Message) -> Arc<Parent> {
        Arc::new(Parent {
            header: msg.header.clone(),
            identities: msg.identities.clone(),
        })
    }
}

/// An execute request that is running now, on the main shell or a subshell.
#[derive(Debug)]
pub(crate) struct Running {
    /// The subshell it runs on (`None`: the main shell).
    pub(crate) shell: Option<String>,
    pub(crate) parent: Arc<Parent>,
    pub(crate) cancel: CancelToken,
    pub(crate) allow_stdin: bool,
    /// Payloads for the execute reply (`page`, `ask_exit`).
    pub(crate) payload: Vec<serde_json::Value>,
}

#[derive(Default)]
struct Routes {
    cells: HashMap<CellId, Arc<Parent>>,
    order: VecDeque<CellId>,
    latest: Option<Arc<Parent>>,
}

/// A cell waiting in `input()`: the id of its `input_request`, where the answer goes.
pub(crate) struct InputWaiter {
    pub(crate) request: String,
    pub(crate) answer: std_mpsc::Sender<String>,
}

/// State shared by the kernel's threads, every shell and every [`KernelOutput`].
pub(crate) struct Shared {
    pub(crate) signer: Signer,
    pub(crate) session: String,
    pub(crate) outbox: Outbox,
    pub(crate) stdin: UnboundedSender<ZmqMessage>,
    routes: Mutex<Routes>,
    pub(crate) running: Mutex<Vec<Running>>,
    pub(crate) inputs: Mutex<Vec<InputWaiter>>,
    pub(crate) shutting_down: AtomicBool,
    /// File descriptors 1 and 2, once [`Kernel::capture_output`](crate::Kernel::capture_output) ran.
    pub(crate) capture: OnceLock<Capture>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub(crate) fn new(
        signer: Signer,
        iopub: UnboundedSender<Message>,
        stdin: UnboundedSender<ZmqMessage>,
    ) -> Self {
        let session = wire::new_id();
        Shared {
            signer,
            outbox: Outbox::new(session.clone(), iopub, Outbox::rate_from_env()),
            session,
            stdin,
            routes: Mutex::default(),
            running: Mutex::new(Vec::new()),
            inputs: Mutex::new(Vec::new()),
            shutting_down: AtomicBool::new(false),
            capture: OnceLock::new(),
        }
    }

    /// Publishes `content` on IOPub with `parent` as parent header, after the
    /// stream text of that parent.
    pub(crate) fn publish(&self, parent: Option<&Arc<Parent>>, msg_type: &str, content: Value) {
        self.outbox.publish(parent, msg_type, content);
    }

    pub(crate) fn status(&self, parent: &Arc<Parent>, state: &str) {
        self.publish(Some(parent), "status", json!({ "execution_state": state }));
    }

    /// Everything a request produced is on its way: what the captured file
    /// descriptors still hold, then its stream text and the rate-limit notice.
    pub(crate) fn finish_output(&self, parent: &Arc<Parent>) {
        if let Some(capture) = self.capture.get() {
            capture.drain();
        }
        self.outbox.flush(parent, true);
    }

    /// Routes `cell` to `parent` from now on; `parent` becomes the latest cell.
    pub(crate) fn route(&self, cell: CellId, parent: Arc<Parent>) {
        let mut routes = lock(&self.routes);
        if routes.cells.insert(cell, parent.clone()).is_none() {
            routes.order.push_back(cell);
            if routes.order.len() > KEEP_CELLS {
                if let Some(old) = routes.order.pop_front() {
                    routes.cells.remove(&old);
                }
            }
        }
        routes.latest = Some(parent);
    }

    pub(crate) fn parent_of(&self, cell: Option<CellId>) -> Option<Arc<Parent>> {
        let routes = lock(&self.routes);
        cell.and_then(|c| routes.cells.get(&c).cloned())
            .or_else(|| routes.latest.clone())
    }

    /// The request `cell` belongs to, if it is running: the main shell's when
    /// `cell` is `None` or unknown.
    fn running_index(&self, running: &[Running], cell: Option<CellId>) -> Option<usize> {
        let routed = cell.and_then(|c| lock(&self.routes).cells.get(&c).cloned());
        match routed {
            Some(parent) => running.iter().position(|r| Arc::ptr_eq(&r.parent, &parent)),
            None => running.iter().position(|r| r.shell.is_none()),
        }
    }

    /// Cancels every running cell, on the main shell and every subshell
    /// (interrupt): their tokens stop them, awaits and CPU-bound code alike.
    pub(crate) fn interrupt(&self) {
        for r in lock(&self.running).iter() {
            r.cancel.cancel();
        }
    }
}

/// Where a [`Session`](crate::Session) sends output: stream text, rich displays,
/// `clear_output`, errors of background tasks, and `input()` requests.
///
/// Cheap to clone, usable from any thread. Every method takes the [`CellId`] the
/// output belongs to (`autoawait_core::current_cell()` where it was produced): output
/// of a cell, and of every task it spawned, goes out with the parent header of the
/// `execute_request` that ran that cell, even after the cell finished and while another
/// cell runs, so JupyterLab shows it under the cell that started the work. `None`, or
/// an id the kernel never saw, goes to the latest cell: that is how a long-lived
/// service detaches from the cell that started it (see [`detached_cell`]).
///
/// # Examples
///
/// ```no_run
/// use autoawait_kernel::{ConnectionInfo, Kernel, MimeBundle};
///
/// let kernel = Kernel::start(ConnectionInfo::from_file("kernel-1.json".as_ref())?)?;
/// let out = kernel.output();
/// std::thread::spawn(move || {
///     out.stdout(autoawait_core::current_cell(), "from a thread\n");
///     out.display(None, &MimeBundle::text("**hi**").with("text/markdown", "**hi**"));
/// });
/// # Ok::<(), autoawait_kernel::KernelError>(())
/// ```
#[derive(Clone)]
pub struct KernelOutput {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for KernelOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KernelOutput")
            .field("session", &self.shared.session)
            .finish()
    }
}

/// A cell id for work that should not stay attached to the cell that started it.
///
/// Run a long-lived task under it (`autoawait_core::in_cell(detached_cell(), fut)`):
/// its output then goes to whichever cell ran last, like ipykernel's default for
/// threads (ipykernel 7.1 went back to that after pinning long-lived workers to their
/// first cell surprised users).
///
/// # Examples
///
/// ```
/// let a = autoawait_kernel::detached_cell();
/// assert_ne!(a, autoawait_kernel::detached_cell());
/// ```
pub fn detached_cell() -> CellId {
    CellId::next()
}

/// Why [`KernelOutput::input`] has no answer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InputError {
    /// No cell is running, or its request did not allow stdin (`allow_stdin: false`).
    NotAllowed,
    /// The cell was interrupted while waiting.
    Interrupted,
    /// The kernel is shutting down.
    Closed,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputError::NotAllowed => write!(
                f,
                "input() is not available: this front end does not accept input requests (allow_stdin is false)"
            ),
            InputError::Interrupted => write!(f, "input() was interrupted"),
            InputError::Closed => write!(f, "input() failed: the kernel is shutting down"),
        }
    }
}

impl std::error::Error for InputError {}

impl KernelOutput {
    /// Text on standard output (`stream`, name `stdout`), batched with the cell's
    /// other stream text (see the crate docs).
    pub fn stdout(&self, cell: Option<CellId>, text: &str) {
        self.stream(cell, Stream::Stdout, text);
    }

    /// Text on standard error (`stream`, name `stderr`).
    pub fn stderr(&self, cell: Option<CellId>, text: &str) {
        self.stream(cell, Stream::Stderr, text);
    }

    pub(crate) fn stream(&self, cell: Option<CellId>, stream: Stream, text: &str) {
        let parent = self.shared.parent_of(cell);
        let parent = parent.unwrap_or_else(|| self.orphan());
        self.shared.outbox.write(&parent, stream, text);
    }

    /// The parent of output that comes before any request: none.
    fn orphan(&self) -> Arc<Parent> {
        static ORPHAN: OnceLock<Arc<Parent>> = OnceLock::new();
        ORPHAN
            .get_or_init(|| {
                Arc::new(Parent {
                    header: json!({}),
                    identities: Vec::new(),
                })
            })
            .clone()
    }

    fn publish(&self, cell: Option<CellId>, msg_type: &str, content: Value) {
        let parent = self.shared.parent_of(cell);
        self.shared.publish(parent.as_ref(), msg_type, content);
    }

    /// A rich value (`display_data`).
    pub fn display(&self, cell: Option<CellId>, bundle: &MimeBundle) {
        self.publish(
            cell,
            "display_data",
            json!({ "data": bundle.to_json(), "metadata": {}, "transient": {} }),
        );
    }

    /// Adds a payload to the reply of the request `cell` belongs to; `false` if that
    /// request is not running.
    fn push_payload(&self, cell: Option<CellId>, payload: Value) -> bool {
        let mut running = lock(&self.shared.running);
        match self.shared.running_index(&running, cell) {
            Some(i) => {
                running[i].payload.push(payload);
                true
            }
            None => false,
        }
    }

    /// Shows `bundle` in the pager of the notebook (a `page` payload of the execute
    /// reply, as IPython's `name?`). Only a running request has a reply to carry
    /// it: outside one, the text goes to stdout instead, so that nothing is lost.
    pub fn page(&self, cell: Option<CellId>, bundle: &MimeBundle) {
        let payload = json!({ "source": "page", "data": bundle.to_json(), "start": 0 });
        if !self.push_payload(cell, payload) {
            let text = bundle.get("text/plain").unwrap_or_default();
            self.stdout(cell, &format!("{text}\n"));
        }
    }

    /// Asks the front end to exit (an `ask_exit` payload on the reply of the
    /// request `cell` belongs to, as IPython's `exit`): jupyter console quits and
    /// shuts the kernel down. `false` if no request of that cell is running.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f(ctx: &autoawait_kernel::ExecuteContext) {
    /// ctx.output.ask_exit(Some(ctx.cell));
    /// # }
    /// ```
    pub fn ask_exit(&self, cell: Option<CellId>) -> bool {
        self.push_payload(cell, json!({ "source": "ask_exit", "keepkernel": false }))
    }

    /// A value under display id `display_id` (`display_data` with a transient
    /// `display_id`): [`update_display`](Self::update_display) replaces it later.
    pub fn display_with_id(&self, cell: Option<CellId>, bundle: &MimeBundle, display_id: &str) {
        self.publish_display(cell, "display_data", bundle, display_id);
    }

    /// Replaces the value shown under `display_id`, in whichever cell shows it
    /// (`update_display_data`).
    pub fn update_display(&self, cell: Option<CellId>, bundle: &MimeBundle, display_id: &str) {
        self.publish_display(cell, "update_display_data", bundle, display_id);
    }

    fn publish_display(&self, cell: Option<CellId>, kind: &str, bundle: &MimeBundle, id: &str) {
        self.publish(
            cell,
            kind,
            json!({ "data": bundle.to_json(), "metadata": {}, "transient": { "display_id": id } }),
        );
    }

    /// `Out[count]` for a cell (`execute_result`). A [`Session`](crate::Session) returns
    /// its cell's value from `execute` instead; this is for values shown later.
    pub fn execute_result(&self, cell: Option<CellId>, count: u64, bundle: &MimeBundle) {
        self.publish(
            cell,
            "execute_result",
            json!({ "execution_count": count, "data": bundle.to_json(), "metadata": {} }),
        );
    }

    /// Clears the cell's output (`clear_output`); with `wait`, when new output arrives.
    pub fn clear_output(&self, cell: Option<CellId>, wait: bool) {
        self.publish(cell, "clear_output", json!({ "wait": wait }));
    }

    /// An error shown under the cell (`error`), e.g. a background task that failed.
    /// A [`Session`](crate::Session) returns its cell's own error from `execute` instead.
    pub fn error(&self, cell: Option<CellId>, error: &ErrorReport) {
        self.publish(cell, "error", error.to_json());
    }

    /// Cell `cell` is code of a request running now: route it there. `outer` is
    /// the cell whose code started it (`autoawait_core::current_cell()`), if any;
    /// without one, the main shell's request.
    ///
    /// Needed only if the engine runs the request under an id of its own rather than
    /// [`ExecuteContext::cell`](crate::ExecuteContext::cell), or runs nested cells.
    /// Ignored when no request runs.
    pub fn cell_started(&self, cell: CellId, outer: Option<CellId>) {
        if lock(&self.shared.routes).cells.contains_key(&cell) {
            return; // The kernel routed it already: the request's own cell.
        }
        let parent = {
            let running = lock(&self.shared.running);
            self.shared
                .running_index(&running, outer)
                .map(|i| running[i].parent.clone())
        };
        if let Some(parent) = parent {
            self.shared.route(cell, parent);
        }
    }

    /// Asks the front end for a line of input (`input_request` on stdin, with the
    /// request `cell` belongs to as parent) and waits for it.
    ///
    /// Blocks the calling thread until the answer arrives, the cell is interrupted or
    /// the kernel shuts down. Kernel I/O runs on threads of its own, so any thread
    /// may wait here, including one that drives a runner's loop.
    ///
    /// # Errors
    ///
    /// [`InputError::NotAllowed`] when the request of `cell` is not running or has
    /// `allow_stdin: false`; [`InputError::Interrupted`] on interrupt;
    /// [`InputError::Closed`] on shutdown.
    pub fn input(
        &self,
        cell: Option<CellId>,
        prompt: &str,
        password: bool,
    ) -> Result<String, InputError> {
        let (parent, cancel) = {
            let running = lock(&self.shared.running);
            match self.shared.running_index(&running, cell) {
                Some(i) if running[i].allow_stdin => {
                    (running[i].parent.clone(), running[i].cancel.clone())
                }
                _ => return Err(InputError::NotAllowed),
            }
        };
        // The prompt comes after what the cell printed before it.
        self.shared.finish_output(&parent);
        let (tx, rx) = std_mpsc::channel();
        let header = wire::header(&self.shared.session, "input_request");
        let request = header["msg_id"].as_str().unwrap_or_default().to_owned();
        lock(&self.shared.inputs).push(InputWaiter {
            request: request.clone(),
            answer: tx,
        });
        let forget = || lock(&self.shared.inputs).retain(|w| w.request != request);
        let msg = Message {
            identities: parent.identities.clone(),
            header,
            parent_header: parent.header.clone(),
            metadata: json!({}),
            content: json!({ "prompt": prompt, "password": password }),
            buffers: Vec::new(),
        };
        if self
            .shared
            .stdin
            .send(msg.encode(&self.shared.signer))
            .is_err()
        {
            forget();
            return Err(InputError::Closed);
        }
        loop {
            match rx.recv_timeout(Duration::from_millis(20)) {
                Ok(value) => return Ok(value),
                Err(std_mpsc::RecvTimeoutError::Disconnected) => return Err(InputError::Closed),
                Err(std_mpsc::RecvTimeoutError::Timeout) => {
                    if cancel.is_cancelled() {
                        forget();
                        return Err(InputError::Interrupted);
                    }
                    if self.shared.shutting_down.load(Ordering::SeqCst) {
                        forget();
                        return Err(InputError::Closed);
                    }
                }
            }
        }
    }
}
