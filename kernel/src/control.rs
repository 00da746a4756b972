//! The control side, on `autoawait-kernel-control`: interrupt, shutdown,
//! `kernel_info`, subshells, and the parent watcher. No cell runs on this thread,
//! so control requests are answered whatever the cells do.

use std::sync::atomic::Ordering;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::runtime::Handle;
use tokio::sync::{oneshot, watch};
use zeromq::{RouterSocket, Socket, SocketSend};

use crate::connection::{Channel, ConnectionInfo};
use crate::io::{bind, recv_frames, stopped, Ready, ReadyTx, LINGER};
use crate::kernel::{
    bad_version, error_content, kernel_info_content, log, reply, reply_type, Job, SHUTDOWN_GRACE,
};
use crate::output::{lock, Parent, Shared};
use crate::subshell::Subshells;
use crate::wire::Message;
use crate::KernelInfo;

/// How often the parent watcher looks.
const PARENT_POLL: Duration = Duration::from_millis(500);
/// How long the kernel may take to shut down once its parent is gone.
const ORPHAN_GRACE: Duration = Duration::from_secs(4);

/// What the control thread (and the parent watcher) act on.
pub(crate) struct Control {
    pub(crate) shared: Arc<Shared>,
    pub(crate) jobs: std_mpsc::Sender<Job>,
    pub(crate) kernel_info: Arc<Mutex<KernelInfo>>,
    pub(crate) subshells: Arc<Subshells>,
}

impl Control {
    pub(crate) async fn main(
        self,
        info: ConnectionInfo,
        ready: ReadyTx,
        stop: watch::Receiver<bool>,
    ) {
        let mut socket = RouterSocket::new();
        let mut ports = Vec::new();
        if let Err(e) = bind(&mut socket, &info, Channel::Control, &mut ports).await {
            let _ = ready.send(Err(e));
            return;
        }
        let _ = ready.send(Ok(Ready {
            ports,
            handle: Handle::current(),
        }));
        self.serve(&mut socket, stop).await;
        // The socket's writer tasks live on this runtime: let the last reply go.
        tokio::time::sleep(LINGER).await;
    }

    /// Answers control requests until the kernel stops; a request being answered
    /// is answered to the end (the reply to a shutdown goes out).
    async fn serve(&self, socket: &mut RouterSocket, stop: watch::Receiver<bool>) {
        let mut stop = std::pin::pin!(stopped(stop));
        loop {
            let frames = tokio::select! {
                frames = recv_frames(socket, Channel::Control) => frames,
                () = &mut stop => return,
            };
            let msg = match Message::decode(frames, &self.shared.signer) {
                Ok(msg) => msg,
                Err(e) => {
                    log(format_args!("dropped a control message: {e}"));
                    continue;
                }
            };
            let parent = Parent::of(&msg);
            self.shared.status(&parent, "busy");
            let msg_type = msg.msg_type().to_owned();
            let content = match bad_version(&msg) {
                Some(why) => {
                    log(format_args!("{why}"));
                    Some(error_content("ProtocolVersionError", why))
                }
                None => self.handle(&msg_type, &msg.content).await,
            };
            if let (Some(content), Some(rt)) = (content, reply_type(&msg_type)) {
                if let Err(e) = socket.send(reply(&self.shared, &msg, &rt, content)).await {
                    log(format_args!("control reply not sent: {e}"));
                }
            }
            self.shared.status(&parent, "idle");
        }
    }

    async fn handle(&self, msg_type: &str, content: &Value) -> Option<Value> {
        let ok = |mut v: Value| {
            v["status"] = "ok".into();
            Some(v)
        };
        match msg_type {
            "interrupt_request" => {
                self.shared.interrupt();
                ok(json!({}))
            }
            "shutdown_request" => {
                let restart = content["restart"].as_bool().unwrap_or(false);
                self.shutdown(restart).await;
                ok(json!({ "restart": restart }))
            }
            "kernel_info_request" => Some(kernel_info_content(
                &lock(&self.kernel_info),
                self.subshells.supported(),
            )),
            "create_subshell_request" => Some(match self.subshells.create() {
                Ok(id) => json!({ "status": "ok", "subshell_id": id }),
                Err(why) => error_content("SubshellError", why),
            }),
            "delete_subshell_request" => Some(match content["subshell_id"].as_str() {
                Some(id) => match self.subshells.delete(id) {
                    Ok(()) => json!({ "status": "ok" }),
                    Err(why) => error_content("SubshellNotFound", why),
                },
                None => error_content(
                    "SubshellError",
                    "delete_subshell_request needs a string `subshell_id`".into(),
                ),
            }),
            "list_subshell_request" => ok(json!({ "subshell_id": self.subshells.list() })),
            other => {
                log(format_args!("unknown control message type `{other}`"));
                reply_type(other).map(|_| {
                    error_content(
                        "UnknownMessageType",
                        format!(
                            "the control channel does not handle `{other}`; it handles \
                             interrupt, shutdown, kernel_info, create_subshell, \
                             delete_subshell and list_subshell requests"
                        ),
                    )
                })
            }
        }
    }

    /// Interrupts the running cells, aborts queued executes, lets the session shut down.
    pub(crate) async fn shutdown(&self, restart: bool) {
        self.shared.shutting_down.store(true, Ordering::SeqCst);
        self.shared.interrupt();
        let (done, wait) = oneshot::channel();
        if self.jobs.send(Job::Shutdown { restart, done }).is_ok()
            && tokio::time::timeout(SHUTDOWN_GRACE, wait).await.is_err()
        {
            log(format_args!(
                "the running cell did not stop within {SHUTDOWN_GRACE:?} of the shutdown request; shutting down anyway"
            ));
        }
    }

    /// Shuts the kernel down when its parent goes (see
    /// [`Kernel::exit_with_parent`](crate::Kernel::exit_with_parent)).
    pub(crate) async fn watch_parent(self) {
        let named = std::env::var("JPY_PARENT_PID")
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
            .filter(|&p| p > 1)
            .and_then(rustix::process::Pid::from_raw);
        let first = std::os::unix::process::parent_id();
        loop {
            tokio::time::sleep(PARENT_POLL).await;
            let reparented = std::os::unix::process::parent_id() != first;
            let named_gone = named.is_some_and(|pid| {
                rustix::process::test_kill_process(pid) == Err(rustix::io::Errno::SRCH)
            });
            if reparented || named_gone {
                break;
            }
        }
        log(format_args!(
            "Parent appears to have exited, shutting down."
        ));
        // The session gets its shutdown; if it hangs, the process goes anyway.
        let _ = tokio::time::timeout(ORPHAN_GRACE, self.shutdown(false)).await;
        tokio::time::sleep(ORPHAN_GRACE).await;
        log(format_args!(
            "the kernel did not exit within {ORPHAN_GRACE:?} of its parent; exiting now"
        ));
        std::process::exit(1);
    }
}
