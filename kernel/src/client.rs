//! [`Client`]: a minimal Jupyter client over the same ZeroMQ sockets, for tests,
//! soak runs and benches that drive a kernel (ours or any other) from Rust.

use std::fmt;
use std::time::Duration;

use serde_json::{json, Value};
use zeromq::util::PeerIdentity;
use zeromq::{
    DealerSocket, ReqSocket, Socket, SocketOptions, SocketRecv, SocketSend, SubSocket, ZmqMessage,
};

use crate::connection::{Channel, ConnectionInfo, KernelError};
use crate::wire::{self, Message, Signer};

/// A reply or an IOPub message, as the client received it.
#[derive(Clone, Debug)]
pub struct Received {
    /// The header (`msg_type`, `msg_id`, ...).
    pub header: Value,
    /// The header of the request it answers (`{}` for none).
    pub parent_header: Value,
    /// The content.
    pub content: Value,
}

impl Received {
    /// `header.msg_type`.
    pub fn msg_type(&self) -> &str {
        self.header["msg_type"].as_str().unwrap_or("")
    }

    /// `parent_header.msg_id`.
    pub fn parent_id(&self) -> &str {
        self.parent_header["msg_id"].as_str().unwrap_or("")
    }

    /// `true` for the `status: idle` of request `id`.
    pub fn is_idle_of(&self, id: &str) -> bool {
        self.msg_type() == "status"
            && self.content["execution_state"] == "idle"
            && self.parent_id() == id
    }
}

/// A Jupyter client: shell, control, stdin, IOPub and heartbeat sockets connected
/// to a kernel, messages signed with the connection file's key. Async, on a tokio
/// runtime; every wait has a timeout.
///
/// # Errors
///
/// Every method that waits returns [`KernelError::Io`] when the kernel does not
/// answer in time or a socket fails.
///
/// # Examples
///
/// ```no_run
/// # async fn f() -> Result<(), autoawait_kernel::KernelError> {
/// use autoawait_kernel::{Client, ConnectionInfo};
///
/// let info = ConnectionInfo::from_file("kernel-1.json".as_ref())?;
/// let mut client = Client::connect(&info).await?;
/// let id = client.execute("print(6 * 7)").await?;
/// let reply = client.reply_to(&id).await?;
/// assert_eq!(reply.content["status"], "ok");
/// let output = client.iopub_until_idle(&id).await?;
/// # Ok(()) }
/// ```
pub struct Client {
    shell: DealerSocket,
    control: DealerSocket,
    stdin: DealerSocket,
    iopub: SubSocket,
    hb: ReqSocket,
    signer: Signer,
    session: String,
    timeout: Duration,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

fn failed(what: impl fmt::Display) -> KernelError {
    KernelError::Io(what.to_string())
}

impl Client {
    /// Connects every channel and waits until IOPub delivers (jupyter_client's
    /// `wait_for_ready`: `kernel_info` requests until a status arrives).
    pub async fn connect(info: &ConnectionInfo) -> Result<Client, KernelError> {
        let session = wire::new_id();
        let dealer = |suffix: &str| {
            let mut opts = SocketOptions::default();
            if let Ok(id) = PeerIdentity::try_from(format!("{session}{suffix}").into_bytes()) {
                opts.peer_identity(id);
            }
            DealerSocket::with_options(opts)
        };
        let (mut shell, mut control, mut stdin) = (dealer(""), dealer("-control"), dealer(""));
        let mut iopub = SubSocket::new();
        let mut hb = ReqSocket::new();
        let connect = |e: zeromq::ZmqError, channel: Channel| {
            failed(format!("cannot connect the {channel} channel: {e}"))
        };
        shell
            .connect(&info.endpoint(info.shell_port))
            .await
            .map_err(|e| connect(e, Channel::Shell))?;
        control
            .connect(&info.endpoint(info.control_port))
            .await
            .map_err(|e| connect(e, Channel::Control))?;
        stdin
            .connect(&info.endpoint(info.stdin_port))
            .await
            .map_err(|e| connect(e, Channel::Stdin))?;
        iopub
            .connect(&info.endpoint(info.iopub_port))
            .await
            .map_err(|e| connect(e, Channel::Iopub))?;
        iopub
            .subscribe("")
            .await
            .map_err(|e| connect(e, Channel::Iopub))?;
        hb.connect(&info.endpoint(info.hb_port))
            .await
            .map_err(|e| connect(e, Channel::Heartbeat))?;
        let mut client = Client {
            shell,
            control,
            stdin,
            iopub,
            hb,
            signer: Signer::new(info.key.as_bytes()),
            session,
            timeout: Duration::from_secs(30),
        };
        client.wait_for_ready().await?;
        Ok(client)
    }

    async fn wait_for_ready(&mut self) -> Result<(), KernelError> {
        for _ in 0..150 {
            let id = self
                .request(Channel::Shell, "kernel_info_request", json!({}))
                .await?;
            self.reply_to(&id).await?;
            let got = tokio::time::timeout(Duration::from_millis(200), self.iopub.recv()).await;
            if let Ok(Ok(_)) = got {
                // Later status messages of these requests have other parents: the
                // waits for a request's own messages pass over them.
                return Ok(());
            }
        }
        Err(failed("IOPub never delivered a message"))
    }

    /// Sends request `msg_type` on `channel` (shell, control or stdin); its msg_id.
    pub async fn request(
        &mut self,
        channel: Channel,
        msg_type: &str,
        content: Value,
    ) -> Result<String, KernelError> {
        let header = wire::header(&self.session, msg_type);
        let id = header["msg_id"].as_str().unwrap_or_default().to_owned();
        let msg = Message {
            identities: Vec::new(),
            header,
            parent_header: json!({}),
            metadata: json!({}),
            content,
            buffers: Vec::new(),
        }
        .encode(&self.signer);
        let sent = match channel {
            Channel::Shell => self.shell.send(msg).await,
            Channel::Control => self.control.send(msg).await,
            Channel::Stdin => self.stdin.send(msg).await,
            other => {
                return Err(failed(format!(
                    "requests go on shell, control or stdin, not {other}"
                )))
            }
        };
        sent.map_err(|e| failed(format!("cannot send on {channel}: {e}")))?;
        Ok(id)
    }

    /// An `execute_request` for `code` (stdin allowed); its msg_id.
    pub async fn execute(&mut self, code: &str) -> Result<String, KernelError> {
        self.request(
            Channel::Shell,
            "execute_request",
            json!({ "code": code, "silent": false, "store_history": true,
                    "user_expressions": {}, "allow_stdin": true, "stop_on_error": false }),
        )
        .await
    }

    fn parse(&self, m: ZmqMessage) -> Result<Received, KernelError> {
        let msg = Message::decode(m.into_vec(), &self.signer)
            .map_err(|e| failed(format!("the kernel sent a bad message: {e}")))?;
        Ok(Received {
            header: msg.header,
            parent_header: msg.parent_header,
            content: msg.content,
        })
    }

    async fn recv<S: SocketRecv>(
        socket: &mut S,
        timeout: Duration,
        channel: Channel,
    ) -> Result<ZmqMessage, KernelError> {
        tokio::time::timeout(timeout, socket.recv())
            .await
            .map_err(|_| failed(format!("no {channel} message within {timeout:?}")))?
            .map_err(|e| failed(format!("{channel} receive failed: {e}")))
    }

    /// Shell replies up to the one to request `id`.
    pub async fn reply_to(&mut self, id: &str) -> Result<Received, KernelError> {
        loop {
            let m = Self::recv(&mut self.shell, self.timeout, Channel::Shell).await?;
            let r = self.parse(m)?;
            if r.parent_id() == id {
                return Ok(r);
            }
        }
    }

    /// Control replies up to the one to request `id`.
    pub async fn control_reply_to(&mut self, id: &str) -> Result<Received, KernelError> {
        loop {
            let m = Self::recv(&mut self.control, self.timeout, Channel::Control).await?;
            let r = self.parse(m)?;
            if r.parent_id() == id {
                return Ok(r);
            }
        }
    }

    /// The next stdin request (`input_request`).
    pub async fn stdin_request(&mut self) -> Result<Received, KernelError> {
        let m = Self::recv(&mut self.stdin, self.timeout, Channel::Stdin).await?;
        self.parse(m)
    }

    /// The next IOPub message.
    pub async fn iopub(&mut self) -> Result<Received, KernelError> {
        let m = Self::recv(&mut self.iopub, self.timeout, Channel::Iopub).await?;
        self.parse(m)
    }

    /// Every IOPub message up to and including the `idle` of request `id`.
    pub async fn iopub_until_idle(&mut self, id: &str) -> Result<Vec<Received>, KernelError> {
        let mut out = Vec::new();
        loop {
            let m = self.iopub().await?;
            let done = m.is_idle_of(id);
            out.push(m);
            if done {
                return Ok(out);
            }
        }
    }

    /// One heartbeat round trip, within `timeout`.
    pub async fn ping(&mut self, timeout: Duration) -> Result<(), KernelError> {
        self.hb
            .send(ZmqMessage::from("ping"))
            .await
            .map_err(|e| failed(format!("heartbeat send failed: {e}")))?;
        Self::recv(&mut self.hb, timeout, Channel::Heartbeat).await?;
        Ok(())
    }
}
