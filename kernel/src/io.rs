//! The I/O side: shell, stdin and IOPub on `autoawait-kernel-io`, the heartbeat on
//! `autoawait-kernel-hb`, and the helpers every kernel thread shares.

use std::future::Future;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::json;
use tokio::runtime::Handle;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::sync::watch;
use zeromq::{
    Endpoint, RepSocket, RouterSocket, Socket, SocketRecv, SocketSend, XPubSocket, ZmqMessage,
};

use crate::connection::{Channel, ConnectionInfo, KernelError};
use crate::kernel::{error_content, log, reply, reply_type, Job, FLUSH};
use crate::outbox::FLUSH_INTERVAL;
use crate::output::{lock, Parent, Shared};
use crate::subshell::Subshells;
use crate::wire::{self, Bytes, Message};

/// How long a kernel thread lets its sockets' writer tasks send the last messages
/// before its runtime goes (ZeroMQ's linger).
pub(crate) const LINGER: Duration = Duration::from_millis(100);

/// What a kernel thread reports once its sockets are bound.
pub(crate) struct Ready {
    pub(crate) ports: Vec<(Channel, u16)>,
    pub(crate) handle: Handle,
}

pub(crate) type ReadyTx = std_mpsc::Sender<Result<Ready, KernelError>>;
pub(crate) type ReadyRx = std_mpsc::Receiver<Result<Ready, KernelError>>;

/// Starts kernel thread `name` on a current_thread runtime of its own, running
/// `body` (which binds its sockets, reports [`Ready`] and serves until `stopped`).
pub(crate) fn spawn<F, Fut>(
    name: &str,
    info: ConnectionInfo,
    stopped: watch::Receiver<bool>,
    body: F,
) -> Result<(JoinHandle<()>, ReadyRx), KernelError>
where
    F: FnOnce(ConnectionInfo, ReadyTx, watch::Receiver<bool>) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let (ready_tx, ready_rx) = std_mpsc::channel();
    let thread_name = name.to_owned();
    let thread = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(body(info, ready_tx, stopped)),
                Err(e) => {
                    let _ = ready_tx.send(Err(KernelError::Io(format!(
                        "cannot build the tokio runtime of {thread_name}: {e}"
                    ))));
                }
            }
        })
        .map_err(|e| KernelError::Io(format!("cannot spawn the kernel thread {name}: {e}")))?;
    Ok((thread, ready_rx))
}

/// Until the kernel stops.
pub(crate) async fn stopped(mut stop: watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

pub(crate) async fn bind<S: Socket>(
    socket: &mut S,
    info: &ConnectionInfo,
    channel: Channel,
    ports: &mut Vec<(Channel, u16)>,
) -> Result<(), KernelError> {
    let endpoint = info.endpoint(info.port(channel));
    match socket.bind(&endpoint).await {
        Ok(Endpoint::Tcp(_, port)) => {
            ports.push((channel, port));
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

/// Receives the next message's frames; a socket error is logged and waited out.
pub(crate) async fn recv_frames<S: SocketRecv>(socket: &mut S, channel: Channel) -> Vec<Bytes> {
    loop {
        match socket.recv().await {
            Ok(m) => return m.into_vec(),
            Err(e) => {
                log(format_args!("{channel} receive failed: {e}"));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// The heartbeat thread: echoes every ping.
pub(crate) async fn heartbeat(info: ConnectionInfo, ready: ReadyTx, stop: watch::Receiver<bool>) {
    let mut hb = RepSocket::new();
    let mut ports = Vec::new();
    if let Err(e) = bind(&mut hb, &info, Channel::Heartbeat, &mut ports).await {
        let _ = ready.send(Err(e));
        return;
    }
    let _ = ready.send(Ok(Ready {
        ports,
        handle: Handle::current(),
    }));
    let echo = async {
        loop {
            match hb.recv().await {
                Ok(m) => {
                    let _ = hb.send(m).await;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    };
    tokio::select! {
        () = echo => {}
        () = stopped(stop) => {}
    }
}

/// The shell, stdin and IOPub side.
pub(crate) struct Io {
    pub(crate) shared: Arc<Shared>,
    pub(crate) jobs: std_mpsc::Sender<Job>,
    pub(crate) subshells: Arc<Subshells>,
    pub(crate) shell_reply: UnboundedSender<ZmqMessage>,
}

impl Io {
    pub(crate) async fn main(
        self,
        info: ConnectionInfo,
        iopub_rx: UnboundedReceiver<Message>,
        mut stdin_rx: UnboundedReceiver<ZmqMessage>,
        mut shell_rx: UnboundedReceiver<ZmqMessage>,
        ready: ReadyTx,
        stop: watch::Receiver<bool>,
    ) {
        let mut shell = RouterSocket::new();
        let mut stdin = RouterSocket::new();
        let mut iopub = XPubSocket::new();
        let mut ports = Vec::new();
        let bound = async {
            bind(&mut shell, &info, Channel::Shell, &mut ports).await?;
            bind(&mut iopub, &info, Channel::Iopub, &mut ports).await?;
            bind(&mut stdin, &info, Channel::Stdin, &mut ports).await
        }
        .await;
        if let Err(e) = bound {
            let _ = ready.send(Err(e));
            return;
        }
        let _ = ready.send(Ok(Ready {
            ports,
            handle: Handle::current(),
        }));
        let io = Arc::new(self);

        let (finish, finished) = tokio::sync::oneshot::channel();
        let publisher = tokio::spawn(publish(iopub, iopub_rx, io.shared.clone(), finished));

        // Stream text goes out FLUSH_INTERVAL after it first waits.
        let flusher = io.clone();
        tokio::spawn(async move {
            loop {
                flusher.shared.outbox.wake.notified().await;
                loop {
                    tokio::time::sleep(FLUSH_INTERVAL).await;
                    if !flusher.shared.outbox.flush_all() {
                        break;
                    }
                }
            }
        });

        // Shell: requests go to their shell's queue in order; replies come back.
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
                let frames = recv_frames(&mut shell_recv, Channel::Shell).await;
                match Message::decode(frames, &shell_io.shared.signer) {
                    Ok(msg) => shell_io.route(msg),
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
                let frames = recv_frames(&mut stdin_recv, Channel::Stdin).await;
                match Message::decode(frames, &stdin_io.shared.signer) {
                    Ok(msg) if msg.msg_type() == "input_reply" => stdin_io.answer(&msg),
                    Ok(msg) => log(format_args!(
                        "dropped a stdin message of type `{}` (stdin takes input_reply only)",
                        msg.msg_type()
                    )),
                    Err(e) => log(format_args!("dropped a stdin message: {e}")),
                }
            }
        });

        stopped(stop).await;
        // Stream text still buffered goes out; the publisher sends what is queued.
        io.shared.outbox.flush_all();
        let _ = finish.send(());
        let _ = tokio::time::timeout(FLUSH, publisher).await;
        tokio::time::sleep(LINGER).await;
    }

    /// Hands a shell request to the main shell or to the subshell its header names.
    fn route(&self, msg: Message) {
        let subshell = &msg.header["subshell_id"];
        if subshell.is_null() {
            let _ = self.jobs.send(Job::Shell(msg));
            return;
        }
        let queue = match subshell.as_str() {
            Some(id) => self.subshells.queue(id),
            None => Err(format!("`subshell_id` must be a string, not {subshell}")),
        };
        match queue {
            Ok(queue) => {
                if let Err(std_mpsc::SendError(Job::Shell(msg))) = queue.send(Job::Shell(msg)) {
                    self.refuse(&msg, "the subshell was deleted".into());
                }
            }
            Err(why) => self.refuse(&msg, why),
        }
    }

    /// Answers a request for a subshell that does not exist: busy, error, idle.
    fn refuse(&self, msg: &Message, why: String) {
        log(format_args!("{why}"));
        let parent = Parent::of(msg);
        self.shared.status(&parent, "busy");
        if let Some(rt) = reply_type(msg.msg_type()) {
            let _ = self.shell_reply.send(reply(
                &self.shared,
                msg,
                &rt,
                error_content("SubshellNotFound", why),
            ));
        }
        self.shared.status(&parent, "idle");
    }

    /// An `input_reply`: to the `input()` waiting for it (its parent names the
    /// request), else to the only one waiting.
    fn answer(&self, msg: &Message) {
        let value = msg.content["value"].as_str().unwrap_or("").to_owned();
        let request = msg.parent_header["msg_id"].as_str();
        let mut waiters = lock(&self.shared.inputs);
        let i = waiters
            .iter()
            .position(|w| Some(w.request.as_str()) == request)
            .or_else(|| (waiters.len() == 1).then_some(0));
        match i {
            Some(i) => {
                let _ = waiters.remove(i).answer.send(value);
            }
            None => log(format_args!("dropped an input_reply nobody waits for")),
        }
    }
}

/// The IOPub publisher: sends what the outbox queues, and greets each new
/// subscriber with `iopub_welcome` (XPUB, protocol 5.5).
async fn publish(
    mut socket: XPubSocket,
    mut rx: UnboundedReceiver<Message>,
    shared: Arc<Shared>,
    finish: tokio::sync::oneshot::Receiver<()>,
) {
    enum Event {
        Out(Option<Message>),
        Subscription(Option<Vec<u8>>),
        Stop,
    }
    let mut finish = finish;
    loop {
        let event = tokio::select! {
            m = rx.recv() => Event::Out(m),
            s = socket.recv() => Event::Subscription(match s {
                Ok(m) => m.into_vec().first().and_then(|f| f.strip_prefix(&[1u8][..]).map(<[u8]>::to_vec)),
                Err(e) => {
                    log(format_args!("iopub subscription receive failed: {e}"));
                    None
                }
            }),
            _ = &mut finish => Event::Stop,
        };
        match event {
            Event::Out(Some(m)) => send(&mut socket, m.encode(&shared.signer)).await,
            Event::Out(None) => return,
            Event::Subscription(Some(topic)) => {
                let welcome = Message {
                    identities: vec![if topic.is_empty() {
                        Bytes::from_static(b"iopub_welcome")
                    } else {
                        Bytes::from(topic.clone())
                    }],
                    header: wire::header(&shared.session, "iopub_welcome"),
                    parent_header: json!({}),
                    metadata: json!({}),
                    content: json!({ "subscription": String::from_utf8_lossy(&topic) }),
                    buffers: Vec::new(),
                };
                send(&mut socket, welcome.encode(&shared.signer)).await;
            }
            Event::Subscription(None) => {}
            Event::Stop => {
                while let Ok(m) = rx.try_recv() {
                    send(&mut socket, m.encode(&shared.signer)).await;
                }
                return;
            }
        }
    }
}

async fn send(socket: &mut XPubSocket, m: ZmqMessage) {
    if let Err(e) = socket.send(m).await {
        log(format_args!("iopub send failed: {e}"));
    }
}
