//! [`KernelOutput`]: output from any thread, routed to the cell it belongs to.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use autoawait_core::{CancelToken, CellId};
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedSender;
use zeromq::ZmqMessage;

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

/// The execute request that is running now.
#[derive(Debug)]
pub(crate) struct Running {
    pub(crate) parent: Arc<Parent>,
    pub(crate) cancel: CancelToken,
    pub(crate) allow_stdin: bool,
    /// Payloads for the execute reply (`page`).
    pub(crate) payload: Vec<serde_json::Value>,
}

#[derive(Default)]
struct Routes {
    cells: HashMap<CellId, Arc<Parent>>,
    order: VecDeque<CellId>,
    latest: Option<Arc<Parent>>,
}

/// State shared by the I/O thread, the execute thread and every [`KernelOutput`].
pub(crate) struct Shared {
    pub(crate) signer: Signer,
    pub(crate) session: String,
    pub(crate) iopub: UnboundedSender<ZmqMessage>,
    pub(crate) stdin: UnboundedSender<ZmqMessage>,
    routes: Mutex<Routes>,
    pub(crate) running: Mutex<Option<Running>>,
    pub(crate) input_waiter: Mutex<Option<std_mpsc::Sender<String>>>,
    pub(crate) shutting_down: AtomicBool,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub(crate) fn new(
        signer: Signer,
        iopub: UnboundedSender<ZmqMessage>,
        stdin: UnboundedSender<ZmqMessage>,
    ) -> Self {
        Shared {
            signer,
            session: wire::new_id(),
            iopub,
            stdin,
            routes: Mutex::default(),
            running: Mutex::new(None),
            input_waiter: Mutex::new(None),
            shutting_down: AtomicBool::new(false),
        }
    }

    /// Publishes `content` on IOPub with `parent` as parent header.
    pub(crate) fn publish(&self, parent: Option<&Parent>, msg_type: &str, content: Value) {
        let msg = Message {
            identities: vec![Bytes::from(msg_type.to_owned())],
            header: wire::header(&self.session, msg_type),
            parent_header: parent.map_or_else(|| json!({}), |p| p.header.clone()),
            metadata: json!({}),
            content,
            buffers: Vec::new(),
        };
        let _ = self.iopub.send(msg.encode(&self.signer));
    }

    pub(crate) fn status(&self, parent: &Parent, state: &str) {
        self.publish(Some(parent), "status", json!({ "execution_state": state }));
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

    fn parent_of(&self, cell: Option<CellId>) -> Option<Arc<Parent>> {
        let routes = lock(&self.routes);
        cell.and_then(|c| routes.cells.get(&c).cloned())
            .or_else(|| routes.latest.clone())
    }

    fn running_parent(&self) -> Option<Arc<Parent>> {
        lock(&self.running).as_ref().map(|r| r.parent.clone())
    }

    /// Cancels the running cell, if any (interrupt): its token stops it, awaits
    /// and CPU-bound code alike, whatever the engine.
    pub(crate) fn interrupt(&self) {
        if let Some(r) = lock(&self.running).as_ref() {
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
    /// Text on standard output (`stream`, name `stdout`).
    pub fn stdout(&self, cell: Option<CellId>, text: &str) {
        self.stream(cell, "stdout", text);
    }

    /// Text on standard error (`stream`, name `stderr`).
    pub fn stderr(&self, cell: Option<CellId>, text: &str) {
        self.stream(cell, "stderr", text);
    }

    fn stream(&self, cell: Option<CellId>, name: &str, text: &str) {
        let parent = self.shared.parent_of(cell);
        self.shared.publish(
            parent.as_deref(),
            "stream",
            json!({ "name": name, "text": text }),
        );
    }

    /// A rich value (`display_data`).
    pub fn display(&self, cell: Option<CellId>, bundle: &MimeBundle) {
        let parent = self.shared.parent_of(cell);
        self.shared.publish(
            parent.as_deref(),
            "display_data",
            json!({ "data": bundle.to_json(), "metadata": {}, "transient": {} }),
        );
    }

    /// Shows `bundle` in the pager of the notebook (a `page` payload of the execute
    /// reply, as IPython's `name?`). Only the running request has a reply to carry
    /// it: outside one, the text goes to stdout instead, so that nothing is lost.
    pub fn page(&self, bundle: &MimeBundle) {
        let mut running = lock(&self.shared.running);
        match running.as_mut() {
            Some(running) => running.payload.push(json!({
                "source": "page",
                "data": bundle.to_json(),
                "start": 0,
            })),
            None => {
                drop(running);
                let text = bundle.get("text/plain").unwrap_or_default();
                self.stdout(None, &format!("{text}\n"));
            }
        }
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
        let parent = self.shared.parent_of(cell);
        self.shared.publish(
            parent.as_deref(),
            kind,
            json!({ "data": bundle.to_json(), "metadata": {}, "transient": { "display_id": id } }),
        );
    }

    /// `Out[count]` for a cell (`execute_result`). A [`Session`](crate::Session) returns
    /// its cell's value from `execute` instead; this is for values shown later.
    pub fn execute_result(&self, cell: Option<CellId>, count: u64, bundle: &MimeBundle) {
        let parent = self.shared.parent_of(cell);
        self.shared.publish(
            parent.as_deref(),
            "execute_result",
            json!({ "execution_count": count, "data": bundle.to_json(), "metadata": {} }),
        );
    }

    /// Clears the cell's output (`clear_output`); with `wait`, when new output arrives.
    pub fn clear_output(&self, cell: Option<CellId>, wait: bool) {
        let parent = self.shared.parent_of(cell);
        self.shared
            .publish(parent.as_deref(), "clear_output", json!({ "wait": wait }));
    }

    /// An error shown under the cell (`error`), e.g. a background task that failed.
    /// A [`Session`](crate::Session) returns its cell's own error from `execute` instead.
    pub fn error(&self, cell: Option<CellId>, error: &ErrorReport) {
        let parent = self.shared.parent_of(cell);
        self.shared
            .publish(parent.as_deref(), "error", error.to_json());
    }

    /// Cell `cell` is the code of the request running now: route it there.
    ///
    /// Needed only if the engine runs the request under an id of its own rather than
    /// [`ExecuteContext::cell`](crate::ExecuteContext::cell). Ignored outside of execute.
    pub fn cell_started(&self, cell: CellId) {
        if let Some(parent) = self.shared.running_parent() {
            self.shared.route(cell, parent);
        }
    }

    /// Asks the front end for a line of input (`input_request` on stdin) and waits for it.
    ///
    /// Blocks the calling thread until the answer arrives, the cell is interrupted or
    /// the kernel shuts down.
    ///
    /// # Errors
    ///
    /// [`InputError::NotAllowed`] when no cell runs or its request has
    /// `allow_stdin: false`; [`InputError::Interrupted`] on interrupt;
    /// [`InputError::Closed`] on shutdown.
    pub fn input(&self, prompt: &str, password: bool) -> Result<String, InputError> {
        let (parent, cancel) = match lock(&self.shared.running).as_ref() {
            Some(r) if r.allow_stdin => (r.parent.clone(), r.cancel.clone()),
            _ => return Err(InputError::NotAllowed),
        };
        let (tx, rx) = std_mpsc::channel();
        *lock(&self.shared.input_waiter) = Some(tx);
        let msg = Message {
            identities: parent.identities.clone(),
            header: wire::header(&self.shared.session, "input_request"),
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
            return Err(InputError::Closed);
        }
        loop {
            match rx.recv_timeout(Duration::from_millis(20)) {
                Ok(value) => return Ok(value),
                Err(std_mpsc::RecvTimeoutError::Disconnected) => return Err(InputError::Closed),
                Err(std_mpsc::RecvTimeoutError::Timeout) => {
                    if cancel.is_cancelled() {
                        lock(&self.shared.input_waiter).take();
                        return Err(InputError::Interrupted);
                    }
                    if self.shared.shutting_down.load(Ordering::SeqCst) {
                        return Err(InputError::Closed);
                    }
                }
            }
        }
    }
}
