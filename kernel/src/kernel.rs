//! [`Kernel`]: start, serve, stop; the helpers both sides use to answer requests.

use std::collections::VecDeque;
use std::fmt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::runtime::Handle;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};
use tokio::sync::{oneshot, Notify};
use zeromq::ZmqMessage;

use crate::connection::{ConnectionInfo, KernelError};
use crate::exec::Exec;
use crate::history::History;
use crate::io::Io;
use crate::output::{lock, KernelOutput, Shared};
use crate::wire::{self, Message, Signer};
use crate::{KernelInfo, Session};

/// How long a shutdown waits for the running cell to stop before it goes anyway.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long the I/O thread keeps sending queued IOPub messages after shutdown.
pub(crate) const FLUSH: Duration = Duration::from_millis(200);

pub(crate) enum Job {
    Shell(Message),
    Shutdown {
        restart: bool,
        done: oneshot::Sender<()>,
    },
}

/// Logs a dropped message or an I/O hiccup on stderr (Jupyter servers keep kernel stderr
/// in their log).
pub(crate) fn log(what: fmt::Arguments<'_>) {
    eprintln!("autoawait kernel: {what}");
}

/// A Jupyter kernel: sockets bound, I/O running on its own thread, waiting for a
/// [`Session`] to [`serve`](Self::serve).
///
/// Kernel I/O (shell, control, stdin, IOPub, heartbeat) runs on a current-thread
/// tokio runtime on the thread `autoawait-kernel-io`, whatever runner cells use.
/// Control requests (interrupt, shutdown) are answered there even while a cell runs.
///
/// # Examples
///
/// ```no_run
/// use autoawait_kernel::{Completeness, ConnectionInfo, ExecuteContext, ExecuteOutcome, Kernel, KernelInfo, Session};
///
/// struct Quiet;
/// impl Session for Quiet {
///     fn info(&self) -> KernelInfo { KernelInfo::default() }
///     fn execute(&mut self, _code: &str, _ctx: &ExecuteContext) -> ExecuteOutcome { Ok(None) }
///     fn is_complete(&mut self, _code: &str) -> Completeness { Completeness::Complete }
/// }
///
/// let kernel = Kernel::start(ConnectionInfo::from_file("kernel-1.json".as_ref())?)?;
/// kernel.serve(Quiet)?; // until a shutdown_request
/// # Ok::<(), autoawait_kernel::KernelError>(())
/// ```
pub struct Kernel {
    info: ConnectionInfo,
    shared: Arc<Shared>,
    jobs: std_mpsc::Receiver<Job>,
    shell_reply: UnboundedSender<ZmqMessage>,
    kernel_info: Arc<Mutex<KernelInfo>>,
    stop: Arc<Notify>,
    io_thread: Option<JoinHandle<()>>,
    runtime: Handle,
}

impl fmt::Debug for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kernel").field("info", &self.info).finish()
    }
}

/// Reads `connection_file`, starts a kernel (SIGINT interrupts cells), builds the
/// session (`make_session` gets the kernel, for [`Kernel::output`] and
/// the sessions own hooks) and serves it until shutdown: all of
/// `autoawait kernel -f FILE`.
///
/// # Errors
///
/// See [`Kernel::start`] and [`Kernel::serve`].
///
/// # Examples
///
/// ```no_run
/// # use autoawait_kernel::{Completeness, ExecuteContext, ExecuteOutcome, KernelInfo, KernelOutput, Session};
/// # struct Engine(KernelOutput);
/// # impl Engine { fn new(out: KernelOutput) -> Self { Engine(out) } }
/// # impl Session for Engine {
/// #     fn info(&self) -> KernelInfo { KernelInfo::default() }
/// #     fn execute(&mut self, _: &str, _: &ExecuteContext) -> ExecuteOutcome { Ok(None) }
/// #     fn is_complete(&mut self, _: &str) -> Completeness { Completeness::Complete }
/// # }
/// autoawait_kernel::run("kernel-1.json".as_ref(), |kernel| Engine::new(kernel.output()))?;
/// # Ok::<(), autoawait_kernel::KernelError>(())
/// ```
pub fn run<S, F>(connection_file: &Path, make_session: F) -> Result<(), KernelError>
where
    S: Session,
    F: FnOnce(&Kernel) -> S,
{
    let kernel = Kernel::start(ConnectionInfo::from_file(connection_file)?)?;
    kernel.interrupt_on_sigint();
    let session = make_session(&kernel);
    kernel.serve(session)
}

impl Kernel {
    /// Binds the five sockets to the connection file's transport and IP (port `0`
    /// picks a free port, see [`connection_info`](Self::connection_info)) and starts
    /// kernel I/O on the thread `autoawait-kernel-io`.
    ///
    /// # Errors
    ///
    /// [`KernelError::Bind`] if a socket cannot be bound; [`KernelError::Io`] if the
    /// I/O thread cannot start.
    pub fn start(info: ConnectionInfo) -> Result<Kernel, KernelError> {
        let (iopub_tx, iopub_rx) = unbounded_channel();
        let (stdin_tx, stdin_rx) = unbounded_channel();
        let (shell_tx, shell_rx) = unbounded_channel();
        let (jobs_tx, jobs) = std_mpsc::channel();
        let (ready_tx, ready_rx) = std_mpsc::channel();
        let shared = Arc::new(Shared::new(
            Signer::new(info.key.as_bytes()),
            iopub_tx,
            stdin_tx,
        ));
        let kernel_info = Arc::new(Mutex::new(KernelInfo::default()));
        let stop = Arc::new(Notify::new());
        let io = Io {
            shared: shared.clone(),
            jobs: jobs_tx,
            kernel_info: kernel_info.clone(),
            stop: stop.clone(),
        };
        let io_thread = std::thread::Builder::new()
            .name("autoawait-kernel-io".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(KernelError::Io(format!(
                            "cannot build the kernel's tokio runtime: {e}"
                        ))));
                        return;
                    }
                };
                rt.block_on(io.main(info, iopub_rx, stdin_rx, shell_rx, ready_tx));
            })
            .map_err(|e| KernelError::Io(format!("cannot spawn the kernel I/O thread: {e}")))?;
        let (info, runtime) = match ready_rx.recv() {
            Ok(Ok(ready)) => ready,
            Ok(Err(e)) => {
                let _ = io_thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = io_thread.join();
                return Err(KernelError::Io(
                    "the kernel I/O thread died at start".into(),
                ));
            }
        };
        Ok(Kernel {
            info,
            shared,
            jobs,
            shell_reply: shell_tx,
            kernel_info,
            stop,
            io_thread: Some(io_thread),
            runtime,
        })
    }

    /// The kernel's own tokio runtime (a current_thread runtime driven by the
    /// `autoawait-kernel-io` thread), for a `tokio-host` runner: cells and their tasks
    /// then run on the kernel's loop, as in ipykernel. Work spawned there shares the
    /// thread with kernel I/O: CPU-bound code delays heartbeats and interrupts.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let kernel = autoawait_kernel::Kernel::start(
    /// #     autoawait_kernel::ConnectionInfo::from_file("k.json".as_ref())?)?;
    /// let on_loop = kernel.runtime_handle().spawn(async { 6 * 7 });
    /// # Ok::<(), autoawait_kernel::KernelError>(())
    /// ```
    pub fn runtime_handle(&self) -> Handle {
        self.runtime.clone()
    }

    /// The connection info with the ports actually bound.
    pub fn connection_info(&self) -> &ConnectionInfo {
        &self.info
    }

    /// The output handle to give the session (before [`serve`](Self::serve)).
    pub fn output(&self) -> KernelOutput {
        KernelOutput {
            shared: self.shared.clone(),
        }
    }

    /// Makes SIGINT (Ctrl-C, `kill -INT`) interrupt the running cell like an
    /// `interrupt_request`, instead of ending the process. Call it in the kernel's
    /// binary; a library or test embedding the kernel may leave signals alone.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let kernel = autoawait_kernel::Kernel::start(
    /// #     autoawait_kernel::ConnectionInfo::from_file("k.json".as_ref())?)?;
    /// kernel.interrupt_on_sigint();
    /// # Ok::<(), autoawait_kernel::KernelError>(())
    /// ```
    pub fn interrupt_on_sigint(&self) {
        let shared = self.shared.clone();
        self.runtime.spawn(async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                shared.interrupt();
            }
        });
    }

    /// Serves shell requests with `session` on this thread until a shutdown request.
    ///
    /// Requests run one at a time, in order, each between `status: busy` and
    /// `status: idle` on IOPub. Returns after [`Session::shutdown`] ran and the
    /// reply was sent.
    ///
    /// # Errors
    ///
    /// None today: the signature leaves room for I/O failures.
    pub fn serve<S: Session>(mut self, session: S) -> Result<(), KernelError> {
        *lock(&self.kernel_info) = session.info();
        let jobs = std::mem::replace(&mut self.jobs, std_mpsc::channel().1);
        let mut exec = Exec {
            session,
            shared: self.shared.clone(),
            shell_reply: self.shell_reply.clone(),
            jobs,
            pending: VecDeque::new(),
            aborting: Vec::new(),
            execution_count: 0,
            history: History::default(),
            info: lock(&self.kernel_info).clone(),
        };
        exec.run();
        self.finish();
        Ok(())
    }

    fn finish(&mut self) {
        self.shared.shutting_down.store(true, Ordering::SeqCst);
        self.stop.notify_one();
        if let Some(t) = self.io_thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Kernel {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Builds a reply to `req` (same identities, parent = its header).
pub(crate) fn reply(shared: &Shared, req: &Message, msg_type: &str, content: Value) -> ZmqMessage {
    Message {
        identities: req.identities.clone(),
        header: wire::header(&shared.session, msg_type),
        parent_header: req.header.clone(),
        metadata: json!({}),
        content,
        buffers: Vec::new(),
    }
    .encode(&shared.signer)
}

pub(crate) fn reply_type(msg_type: &str) -> Option<String> {
    msg_type
        .strip_suffix("_request")
        .map(|base| format!("{base}_reply"))
}

pub(crate) fn error_content(ename: &str, evalue: String) -> Value {
    json!({ "status": "error", "ename": ename, "evalue": evalue, "traceback": [] })
}

pub(crate) fn kernel_info_content(info: &KernelInfo) -> Value {
    json!({
        "status": "ok",
        "protocol_version": wire::PROTOCOL_VERSION,
        "implementation": info.implementation,
        "implementation_version": info.implementation_version,
        "language_info": {
            "name": info.language,
            "version": info.language_version,
            "mimetype": info.mimetype,
            "file_extension": info.file_extension,
            "pygments_lexer": info.language,
            "codemirror_mode": info.language,
            "nbconvert_exporter": "script",
        },
        "banner": info.banner,
        "help_links": info.help_links.iter()
            .map(|(text, url)| json!({ "text": text, "url": url }))
            .collect::<Vec<_>>(),
        "debugger": false,
    })
}

/// A protocol version we do not speak: `None` if fine, else the reason.
pub(crate) fn bad_version(msg: &Message) -> Option<String> {
    let v = msg.version();
    (!v.starts_with("5.")).then(|| {
        format!(
            "unsupported protocol version `{v}` in a {}; this kernel speaks {} (any 5.x is accepted)",
            msg.msg_type(),
            wire::PROTOCOL_VERSION
        )
    })
}
