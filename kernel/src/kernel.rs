//! [`Kernel`]: start, serve, stop; the helpers both sides use to answer requests.

use std::fmt;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::runtime::{Handle, Runtime};
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};
use tokio::sync::{oneshot, watch};
use zeromq::ZmqMessage;

use crate::capture::{self, Capture};
use crate::connection::{ConnectionInfo, KernelError};
use crate::control::Control;
use crate::exec::{Common, Exec};
use crate::history::History;
use crate::io::{self, Io, Ready};
use crate::output::{lock, KernelOutput, Shared};
use crate::subshell::{Shell, Subshells};
use crate::wire::{self, Message, Signer};
use crate::{KernelInfo, Session};

/// How long a shutdown waits for the running cell to stop before it goes anyway.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long the I/O thread keeps sending queued IOPub messages after shutdown.
pub(crate) const FLUSH: Duration = Duration::from_secs(2);
/// Worker threads of the runtime cells of `tokio-host` run on.
const CELL_WORKERS: usize = 2;

pub(crate) enum Job {
    Shell(Message),
    Shutdown {
        restart: bool,
        done: oneshot::Sender<()>,
    },
}

/// Logs a dropped message or an I/O hiccup on the kernel's stderr (Jupyter servers
/// keep kernel stderr in their log); the original one when fds 1 and 2 are captured.
pub(crate) fn log(what: fmt::Arguments<'_>) {
    match capture::log_file() {
        Some(mut f) => {
            let _ = writeln!(f, "autoawait kernel: {what}");
        }
        None => eprintln!("autoawait kernel: {what}"),
    }
}

/// A Jupyter kernel: sockets bound, I/O running on threads of its own, waiting for
/// a [`Session`] to [`serve`](Self::serve).
///
/// No cell ever runs on a kernel thread, so none can starve them:
/// `autoawait-kernel-io` serves shell, stdin, IOPub and signals,
/// `autoawait-kernel-control` serves control (interrupt, shutdown, kernel_info,
/// subshells) and `autoawait-kernel-hb` echoes heartbeats, each on a current_thread
/// tokio runtime of its own. Cells run on the thread that called
/// [`serve`](Self::serve) (and on subshell threads), through the session's runner;
/// [`cell_runtime`](Self::cell_runtime) is the runtime the kernel offers for cells
/// that want a tokio loop it owns (`tokio-host`).
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
    jobs: Option<std_mpsc::Receiver<Job>>,
    jobs_tx: std_mpsc::Sender<Job>,
    shell_reply: UnboundedSender<ZmqMessage>,
    kernel_info: Arc<Mutex<KernelInfo>>,
    subshells: Arc<Subshells>,
    /// Stops control and heartbeat, then (`io_stop`) the I/O thread, which sends
    /// the last IOPub messages.
    stop: watch::Sender<bool>,
    io_stop: watch::Sender<bool>,
    threads: Vec<JoinHandle<()>>,
    io: Handle,
    control: Handle,
    cells: Option<Runtime>,
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
    S: Session + 'static,
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
    /// the kernel's threads.
    ///
    /// A connection file without a key is accepted (the protocol allows it), with a
    /// warning on stderr: messages are then not signed, so anyone who can reach the
    /// ports can run code.
    ///
    /// # Errors
    ///
    /// [`KernelError::Bind`] if a socket cannot be bound; [`KernelError::Io`] if a
    /// thread or runtime cannot start.
    pub fn start(info: ConnectionInfo) -> Result<Kernel, KernelError> {
        let (iopub_tx, iopub_rx) = unbounded_channel();
        let (stdin_tx, stdin_rx) = unbounded_channel();
        let (shell_tx, shell_rx) = unbounded_channel();
        let (jobs_tx, jobs) = std_mpsc::channel();
        let signer = Signer::new(info.key.as_bytes());
        if !signer.is_signing() {
            log(format_args!(
                "WARNING: the connection file has no key: messages are NOT signed, and \
                 anyone who can reach the kernel's ports can run code as you"
            ));
        }
        let shared = Arc::new(Shared::new(signer, iopub_tx, stdin_tx));
        let kernel_info = Arc::new(Mutex::new(KernelInfo::default()));
        let subshells = Arc::new(Subshells::default());
        let (stop, stopped) = watch::channel(false);
        let (io_stop, io_stopped) = watch::channel(false);
        let cells = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(CELL_WORKERS)
            .thread_name("autoawait-kernel-cells")
            .enable_all()
            .build()
            .map_err(|e| KernelError::Io(format!("cannot build the cells' tokio runtime: {e}")))?;

        let mut threads = Vec::new();
        let mut readies = Vec::new();
        let started = (|| {
            let io_part = Io {
                shared: shared.clone(),
                jobs: jobs_tx.clone(),
                subshells: subshells.clone(),
                shell_reply: shell_tx.clone(),
            };
            let (t, r) = io::spawn("autoawait-kernel-io", info.clone(), io_stopped, {
                move |info, ready, stopped| {
                    io_part.main(info, iopub_rx, stdin_rx, shell_rx, ready, stopped)
                }
            })?;
            threads.push(t);
            readies.push(r);
            let control = Control {
                shared: shared.clone(),
                jobs: jobs_tx.clone(),
                kernel_info: kernel_info.clone(),
                subshells: subshells.clone(),
            };
            let (t, r) = io::spawn("autoawait-kernel-control", info.clone(), stopped.clone(), {
                move |info, ready, stopped| control.main(info, ready, stopped)
            })?;
            threads.push(t);
            readies.push(r);
            let (t, r) = io::spawn(
                "autoawait-kernel-hb",
                info.clone(),
                stopped.clone(),
                io::heartbeat,
            )?;
            threads.push(t);
            readies.push(r);
            Ok::<(), KernelError>(())
        })();
        let mut bound = info.clone();
        let mut handles = Vec::new();
        let mut failure = started.err();
        for ready in readies {
            match ready.recv() {
                Ok(Ok(Ready { ports, handle })) => {
                    for (channel, port) in ports {
                        bound.set_port(channel, port);
                    }
                    handles.push(handle);
                }
                Ok(Err(e)) => failure = failure.or(Some(e)),
                Err(_) => {
                    failure = failure.or(Some(KernelError::Io(
                        "a kernel thread died at start".into(),
                    )))
                }
            }
        }
        if let Some(e) = failure {
            let _ = stop.send(true);
            let _ = io_stop.send(true);
            for t in threads {
                let _ = t.join();
            }
            return Err(e);
        }
        Ok(Kernel {
            info: bound,
            shared,
            jobs: Some(jobs),
            jobs_tx,
            shell_reply: shell_tx,
            kernel_info,
            subshells,
            stop,
            io_stop,
            threads,
            io: handles[0].clone(),
            control: handles[1].clone(),
            cells: Some(cells),
        })
    }

    /// The runtime the kernel owns for cells: a multi_thread tokio runtime (workers
    /// `autoawait-kernel-cells`), not the one serving the sockets, so a cell spinning
    /// on it delays no heartbeat and no interrupt. `autoawait kernel` attaches it to
    /// `tokio-host`: cells are polled by the thread that runs them while the workers
    /// drive timers, sockets and spawned tasks.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let kernel = autoawait_kernel::Kernel::start(
    /// #     autoawait_kernel::ConnectionInfo::from_file("k.json".as_ref())?)?;
    /// let on_loop = kernel.cell_runtime().spawn(async { 6 * 7 });
    /// # Ok::<(), autoawait_kernel::KernelError>(())
    /// ```
    pub fn cell_runtime(&self) -> Handle {
        self.cells
            .as_ref()
            .expect("the cells' runtime lives until the kernel is dropped")
            .handle()
            .clone()
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

    /// Makes SIGINT (Ctrl-C, `kill -INT`) interrupt the running cells like an
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
        self.io.spawn(async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                shared.interrupt();
            }
        });
    }

    /// Captures file descriptors 1 and 2 for as long as the process lives: what C
    /// code, `io.stdout:write` or a child process writes there reaches the latest
    /// cell as `stdout` / `stderr`, and the kernel's own log goes to the original
    /// stderr. For the kernel's binary: a test embedding the kernel keeps its output.
    ///
    /// # Errors
    ///
    /// [`KernelError::Io`] if a pipe, a `dup2` or a reader thread fails; nothing is
    /// captured then.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let kernel = autoawait_kernel::Kernel::start(
    /// #     autoawait_kernel::ConnectionInfo::from_file("k.json".as_ref())?)?;
    /// kernel.capture_output()?;
    /// std::process::Command::new("echo").arg("to the cell").status()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn capture_output(&self) -> Result<(), KernelError> {
        if self.shared.capture.get().is_none() {
            let capture = Capture::start(&self.output())?;
            let _ = self.shared.capture.set(capture);
        }
        Ok(())
    }

    /// Ends the kernel when its parent goes, as ipykernel's parent poller does: when
    /// the process named by `JPY_PARENT_PID` (Jupyter sets it) is gone, or the
    /// parent process changes (it died and the kernel was re-parented, to pid 1 or
    /// a subreaper). The kernel then shuts down as on a `shutdown_request`; if the
    /// session has not finished within a few seconds, the process exits anyway.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let kernel = autoawait_kernel::Kernel::start(
    /// #     autoawait_kernel::ConnectionInfo::from_file("k.json".as_ref())?)?;
    /// kernel.exit_with_parent();
    /// # Ok::<(), autoawait_kernel::KernelError>(())
    /// ```
    pub fn exit_with_parent(&self) {
        let control = Control {
            shared: self.shared.clone(),
            jobs: self.jobs_tx.clone(),
            kernel_info: self.kernel_info.clone(),
            subshells: self.subshells.clone(),
        };
        self.control
            .spawn(async move { control.watch_parent().await });
    }

    /// Serves shell requests with `session` on this thread until a shutdown request.
    ///
    /// Requests run one at a time, in order, each between `status: busy` and
    /// `status: idle` on IOPub. If the session makes subshells
    /// ([`Session::subshell`]), each subshell serves its own requests on a thread
    /// of its own, concurrently. Returns after [`Session::shutdown`] ran and the
    /// reply was sent.
    ///
    /// # Errors
    ///
    /// None today: the signature leaves room for I/O failures.
    pub fn serve<S: Session + 'static>(mut self, session: S) -> Result<(), KernelError> {
        *lock(&self.kernel_info) = session.info();
        let template = session.subshell();
        let common = Arc::new(Common {
            execution_count: AtomicU64::new(0),
            history: Mutex::new(History::default()),
            info: lock(&self.kernel_info).clone(),
            subshells: template.is_some(),
        });
        if let Some(template) = template {
            self.subshells
                .enable(self.spawner(template, common.clone()));
        }
        let jobs = self.jobs.take().expect("serve runs once");
        let mut exec = Exec::new(
            session,
            None,
            self.shared.clone(),
            common,
            self.shell_reply.clone(),
            jobs,
        );
        exec.run();
        self.finish();
        Ok(())
    }

    /// Starts subshells with sessions made from `template`, sharing `common` (the
    /// execution count and the history) with the main shell.
    fn spawner<S: Session + 'static>(
        &self,
        template: S,
        common: Arc<Common>,
    ) -> crate::subshell::Spawn {
        let template = Mutex::new(template);
        let shared = self.shared.clone();
        let replies = self.shell_reply.clone();
        Box::new(move |id: &str| {
            let session = lock(&template)
                .subshell()
                .ok_or_else(|| "the session cannot make another subshell".to_owned())?;
            let (jobs_tx, jobs) = std_mpsc::channel();
            let mut exec = Exec::new(
                session,
                Some(id.to_owned()),
                shared.clone(),
                common.clone(),
                replies.clone(),
                jobs,
            );
            let thread = std::thread::Builder::new()
                .name("autoawait-subshell".into())
                .spawn(move || exec.run())
                .map_err(|e| format!("cannot spawn the subshell's thread: {e}"))?;
            Ok(Shell {
                jobs: jobs_tx,
                thread,
            })
        })
    }

    fn finish(&mut self) {
        self.shared.shutting_down.store(true, Ordering::SeqCst);
        self.shared.interrupt();
        self.subshells.stop_all(Duration::from_secs(2));
        let _ = self.stop.send(true);
        // The I/O thread is the first: control and heartbeat go before it.
        let mut threads = self.threads.drain(..);
        let io = threads.next();
        for t in threads {
            let _ = t.join();
        }
        let _ = self.io_stop.send(true);
        if let Some(t) = io {
            let _ = t.join();
        }
        if let Some(cells) = self.cells.take() {
            cells.shutdown_timeout(Duration::from_secs(1));
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

/// The `kernel_info_reply`; `subshells`: advertise kernel subshells.
pub(crate) fn kernel_info_content(info: &KernelInfo, subshells: bool) -> Value {
    let features: &[&str] = if subshells {
        &["kernel subshells"]
    } else {
        &[]
    };
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
        // 5.5 replaced `debugger` with `supported_features`; older front ends read it.
        "debugger": false,
        "supported_features": features,
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
