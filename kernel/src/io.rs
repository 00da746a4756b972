//! The I/O side: the five sockets on the kernel's own tokio runtime.

use std::sync::atomic::Ordering;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::runtime::Handle;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::{oneshot, Notify};
use zeromq::{
    Endpoint, PubSocket, RepSocket, RouterSocket, Socket, SocketRecv, SocketSend, ZmqMessage,
};

use crate::connection::{Channel, ConnectionInfo, KernelError};
use crate::kernel::{
    bad_version, error_content, kernel_info_content, log, reply, reply_type, Job, FLUSH,
    SHUTDOWN_GRACE,
};
use crate::output::{lock, Parent, Shared};
use crate::wire::Message;
use crate::KernelInfo;

/// The I/O side: sockets on the kernel's tokio runtime.
pub(crate) struct Io {
    pub(crate) shared: Arc<Shared>,
    pub(crate) jobs: std_mpsc::Sender<Job>,
    pub(crate) kernel_info: Arc<Mutex<KernelInfo>>,
    pub(crate) stop: Arc<Notify>,
}

async fn bind<S: Socket>(
    socket: &mut S,
    info: &mut ConnectionInfo,
    channel: Channel,
) -> Result<(), KernelError> {
    let endpoint = info.endpoint(info.port(channel));
    match socket.bind(&endpoint).await {
        Ok(Endpoint::Tcp(_, port)) => {
            info.set_port(channel, port);
            Ok(())
        }
        Ok(_) => Ok(()),
        Err(e) => Err(KernelError::Bind {
            channel,
            endpoint,
            reason: e.to_string(),
        }),
    }
}

impl Io {
    pub(crate) async fn main(
        self,
        mut info: ConnectionInfo,
        mut iopub_rx: UnboundedReceiver<ZmqMessage>,
        mut stdin_rx: UnboundedReceiver<ZmqMessage>,
        mut shell_rx: UnboundedReceiver<ZmqMessage>,
        ready: std_mpsc::Sender<Result<(ConnectionInfo, Handle), KernelError>>,
    ) {
        let mut shell = RouterSocket::new();
        let mut control = RouterSocket::new();
        let mut stdin = RouterSocket::new();
        let mut iopub = PubSocket::new();
        let mut hb = RepSocket::new();
        let bound = async {
            bind(&mut shell, &mut info, Channel::Shell).await?;
            bind(&mut iopub, &mut info, Channel::Iopub).await?;
            bind(&mut stdin, &mut info, Channel::Stdin).await?;
            bind(&mut control, &mut info, Channel::Control).await?;
            bind(&mut hb, &mut info, Channel::Heartbeat).await
        }
        .await;
        if let Err(e) = bound {
            let _ = ready.send(Err(e));
            return;
        }
        let _ = ready.send(Ok((info, Handle::current())));

        let io = Arc::new(self);

        // IOPub: one publisher fed by every thread.
        tokio::spawn(async move {
            while let Some(m) = iopub_rx.recv().await {
                if let Err(e) = iopub.send(m).await {
                    log(format_args!("iopub send failed: {e}"));
                }
            }
        });

        // Heartbeat: echo.
        tokio::spawn(async move {
            loop {
                match hb.recv().await {
                    Ok(m) => {
                        let _ = hb.send(m).await;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        });

        // Shell: requests go to the execute thread in order; replies come back.
        let (mut shell_send, mut shell_recv) = shell.split();
        tokio::spawn(async move {
            while let Some(m) = shell_rx.recv().await {
                if let Err(e) = shell_send.send(m).await {
                    log(format_args!("shell reply not sent: {e}"));
                }
            }
        });
        let shell_io = io.clone();
        tokio::spawn(async move {
            loop {
                let frames = match shell_recv.recv().await {
                    Ok(m) => m.into_vec(),
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                match Message::decode(frames, &shell_io.shared.signer) {
                    Ok(msg) => {
                        if shell_io.jobs.send(Job::Shell(msg)).is_err() {
                            break;
                        }
                    }
                    Err(e) => log(format_args!("dropped a shell message: {e}")),
                }
            }
        });

        // Stdin: input requests out, input replies in.
        let (mut stdin_send, mut stdin_recv) = stdin.split();
        tokio::spawn(async move {
            while let Some(m) = stdin_rx.recv().await {
                if let Err(e) = stdin_send.send(m).await {
                    log(format_args!("input request not sent: {e}"));
                }
            }
        });
        let stdin_io = io.clone();
        tokio::spawn(async move {
            loop {
                let frames = match stdin_recv.recv().await {
                    Ok(m) => m.into_vec(),
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                match Message::decode(frames, &stdin_io.shared.signer) {
                    Ok(msg) if msg.msg_type() == "input_reply" => {
                        let value = msg.content["value"].as_str().unwrap_or("").to_owned();
                        match lock(&stdin_io.shared.input_waiter).take() {
                            Some(tx) => {
                                let _ = tx.send(value);
                            }
                            None => log(format_args!("dropped an input_reply nobody waits for")),
                        }
                    }
                    Ok(msg) => log(format_args!(
                        "dropped a stdin message of type `{}`",
                        msg.msg_type()
                    )),
                    Err(e) => log(format_args!("dropped a stdin message: {e}")),
                }
            }
        });

        // Control: handled here, so it works while a cell runs.
        let control_io = io.clone();
        tokio::spawn(async move { control_io.control(control).await });

        io.stop.notified().await;
        // Let the last IOPub messages (the idle after a shutdown reply) go out.
        tokio::time::sleep(FLUSH).await;
    }

    async fn control(&self, mut socket: RouterSocket) {
        loop {
            let frames = match socket.recv().await {
                Ok(m) => m.into_vec(),
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
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
            let mut stop = false;
            let content = if let Some(why) = bad_version(&msg) {
                log(format_args!("{why}"));
                Some(error_content("ProtocolVersionError", why))
            } else {
                match msg_type.as_str() {
                    "interrupt_request" => {
                        self.shared.interrupt();
                        Some(json!({ "status": "ok" }))
                    }
                    "shutdown_request" => {
                        let restart = msg.content["restart"].as_bool().unwrap_or(false);
                        self.shutdown(restart).await;
                        stop = true;
                        Some(json!({ "status": "ok", "restart": restart }))
                    }
                    "kernel_info_request" => Some(kernel_info_content(&lock(&self.kernel_info))),
                    other => {
                        log(format_args!("unknown control message type `{other}`"));
                        reply_type(other).map(|_| {
                            error_content(
                                "UnknownMessageType",
                                format!("the control channel does not handle `{other}`"),
                            )
                        })
                    }
                }
            };
            if let (Some(content), Some(rt)) = (content, reply_type(&msg_type)) {
                if let Err(e) = socket.send(reply(&self.shared, &msg, &rt, content)).await {
                    log(format_args!("control reply not sent: {e}"));
                }
            }
            self.shared.status(&parent, "idle");
            if stop {
                self.stop.notify_one();
                return;
            }
        }
    }

    /// Interrupts the running cell, aborts queued executes, lets the session shut down.
    async fn shutdown(&self, restart: bool) {
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
}
