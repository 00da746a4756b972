//! A Jupyter client over real ZeroMQ sockets, a fake session, and a watchdog.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use autoawait_core::{block_on_inline, current_cell, in_cell};
use autoawait_kernel::{
    detached_cell, Completeness, Completions, ConnectionInfo, ErrorReport, ExecuteContext,
    ExecuteOutcome, Kernel, KernelInfo, MimeBundle, Session,
};
use bytes::Bytes;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use zeromq::util::PeerIdentity;
use zeromq::{
    DealerSocket, ReqSocket, Socket, SocketOptions, SocketRecv, SocketSend, SubSocket, ZmqMessage,
};

pub const KEY: &str = "test-secret";

/// Runs `body` on a thread; fails if it does not finish within `secs`.
pub fn watchdog(secs: u64, body: impl FnOnce() + Send + 'static) {
    autoawait_test_support::watchdog("test-body", Duration::from_secs(secs), body);
}

/// What the fake session saw.
#[derive(Default)]
pub struct Log {
    pub executed: Mutex<Vec<String>>,
    pub shutdown: AtomicBool,
    pub interrupts: AtomicUsize,
}

/// An echo-like session with a few commands (first word of the cell):
/// `print T`, `eprint T`, `value T`, `fail T`, `slowfail T`, `sleep`, `spawn T`,
/// `release`, `detached T`, `input P`, `clear`, `html T`, `printmany N`, `mixed`, `spin`, `panic`.
pub struct Fake {
    pub log: Arc<Log>,
    gate: Option<(std_mpsc::Sender<()>, std_mpsc::Receiver<()>)>,
}

impl Fake {
    pub fn new(log: Arc<Log>) -> Self {
        Fake { log, gate: None }
    }
}

impl Session for Fake {
    fn info(&self) -> KernelInfo {
        KernelInfo {
            implementation: "fake".into(),
            language: "lua".into(),
            file_extension: ".lua".into(),
            ..KernelInfo::default()
        }
    }

    fn execute(&mut self, code: &str, ctx: &ExecuteContext) -> ExecuteOutcome {
        self.log.executed.lock().unwrap().push(code.to_owned());
        let (cmd, arg) = code.split_once(' ').unwrap_or((code, ""));
        let out = &ctx.output;
        match cmd {
            "print" => out.stdout(Some(ctx.cell), &format!("{arg}\n")),
            "eprint" => out.stderr(Some(ctx.cell), &format!("{arg}\n")),
            "value" => return Ok(Some(MimeBundle::text(arg))),
            "html" => out.display(
                Some(ctx.cell),
                &MimeBundle::text(arg).with("text/html", format!("<b>{arg}</b>")),
            ),
            "clear" => out.clear_output(Some(ctx.cell), false),
            "fail" => return Err(ErrorReport::new("ValueError", arg)),
            "slowfail" => {
                std::thread::sleep(Duration::from_millis(500));
                return Err(ErrorReport::new("ValueError", arg));
            }
            "sleep" => {
                for _ in 0..3000 {
                    if ctx.cancel.is_cancelled() {
                        self.log.interrupts.fetch_add(1, Ordering::SeqCst);
                        return Err(ErrorReport::new("Cancelled", "the cell was cancelled"));
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                return Ok(Some(MimeBundle::text("slept 30 s")));
            }
            "spawn" => {
                // A background task of this cell: prints when released, tagged with
                // current_cell() as an engine would.
                let (go_tx, go_rx) = std_mpsc::channel::<()>();
                let (done_tx, done_rx) = std_mpsc::channel::<()>();
                let out = out.clone();
                let text = format!("{arg}\n");
                let task = in_cell(ctx.cell, async move {
                    let _ = go_rx.recv();
                    out.stdout(current_cell(), &text);
                    let _ = done_tx.send(());
                });
                std::thread::Builder::new()
                    .name("fake-task".into())
                    .spawn(move || block_on_inline(task))
                    .unwrap();
                self.gate = Some((go_tx, done_rx));
            }
            "release" => {
                if let Some((go, done)) = self.gate.take() {
                    let _ = go.send(());
                    let _ = done.recv_timeout(Duration::from_secs(10));
                }
            }
            "printmany" => {
                let n: usize = arg.parse().unwrap_or(0);
                for i in 1..=n {
                    out.stdout(Some(ctx.cell), &format!("{i}\n"));
                }
            }
            "mixed" => {
                out.stdout(Some(ctx.cell), "before\n");
                out.display(Some(ctx.cell), &MimeBundle::text("shown"));
                out.stderr(Some(ctx.cell), "warn\n");
                out.stdout(Some(ctx.cell), "after\n");
            }
            "panic" => panic!("the fake session panics on purpose"),
            "spin" => {
                // CPU-bound until interrupted, as a Lua loop is.
                while !ctx.cancel.is_cancelled() {
                    std::hint::spin_loop();
                }
                self.log.interrupts.fetch_add(1, Ordering::SeqCst);
                return Err(ErrorReport::new("Cancelled", "the cell was cancelled"));
            }
            "detached" => out.stdout(Some(detached_cell()), &format!("{arg}\n")),
            "input" => match out.input(Some(ctx.cell), arg, false) {
                Ok(v) => out.stdout(Some(ctx.cell), &format!("got {v}\n")),
                Err(e) => return Err(ErrorReport::new("InputError", e.to_string())),
            },
            _ => {}
        }
        Ok(None)
    }

    fn is_complete(&mut self, code: &str) -> Completeness {
        if code.trim_end().ends_with("do") {
            Completeness::Incomplete {
                indent: "  ".into(),
            }
        } else if code.contains("= =") {
            Completeness::Invalid
        } else {
            Completeness::Complete
        }
    }

    fn complete(&mut self, code: &str, cursor: usize) -> Completions {
        let start = code[..cursor]
            .rfind(|c: char| !c.is_alphanumeric() && c != '_')
            .map_or(0, |i| i + 1);
        let word = &code[start..cursor];
        Completions {
            matches: ["print", "pairs", "pcall"]
                .iter()
                .filter(|n| n.starts_with(word))
                .map(|n| n.to_string())
                .collect(),
            cursor_start: start,
            cursor_end: cursor,
        }
    }

    fn inspect(&mut self, code: &str, _cursor: usize, _detail: u8) -> Option<MimeBundle> {
        code.contains("print")
            .then(|| MimeBundle::text("print(...): writes its arguments to stdout"))
    }

    fn evaluate(&mut self, expression: &str) -> Result<MimeBundle, ErrorReport> {
        match expression.strip_prefix("value ") {
            Some(value) => Ok(MimeBundle::text(value)),
            None => Err(ErrorReport::new("NameError", expression)),
        }
    }

    fn subshell(&self) -> Option<Self> {
        Some(Fake::new(self.log.clone()))
    }

    fn shutdown(&mut self, _restart: bool) {
        self.log.shutdown.store(true, Ordering::SeqCst);
    }
}

/// A kernel on free ports serving a [`Fake`] on its own thread.
pub struct Running {
    pub info: ConnectionInfo,
    pub runtime: tokio::runtime::Handle,
    pub log: Arc<Log>,
    pub serve: Option<std::thread::JoinHandle<()>>,
}

pub fn start_kernel(key: &str) -> Running {
    let info = ConnectionInfo {
        transport: "tcp".into(),
        ip: "127.0.0.1".into(),
        key: key.into(),
        shell_port: 0,
        iopub_port: 0,
        stdin_port: 0,
        control_port: 0,
        hb_port: 0,
        kernel_name: None,
    };
    let kernel = Kernel::start(info).expect("kernel starts");
    let info = kernel.connection_info().clone();
    let runtime = kernel.cell_runtime();
    let log = Arc::new(Log::default());
    let session = Fake::new(log.clone());
    let serve = std::thread::Builder::new()
        .name("kernel-serve".into())
        .spawn(move || kernel.serve(session).unwrap())
        .unwrap();
    Running {
        info,
        runtime,
        log,
        serve: Some(serve),
    }
}

/// A parsed message.
#[derive(Clone, Debug)]
pub struct Msg {
    pub header: Value,
    pub parent: Value,
    pub content: Value,
}

impl Msg {
    pub fn msg_type(&self) -> &str {
        self.header["msg_type"].as_str().unwrap_or("")
    }
    pub fn parent_id(&self) -> &str {
        self.parent["msg_id"].as_str().unwrap_or("")
    }
    pub fn state(&self) -> &str {
        self.content["execution_state"].as_str().unwrap_or("")
    }
}

pub struct Client {
    pub shell: DealerSocket,
    pub control: DealerSocket,
    pub stdin: DealerSocket,
    pub iopub: SubSocket,
    pub hb: ReqSocket,
    pub key: Vec<u8>,
    session: String,
    counter: u64,
}

fn dealer(identity: &str) -> DealerSocket {
    let mut opts = SocketOptions::default();
    opts.peer_identity(PeerIdentity::try_from(identity.as_bytes()).unwrap());
    DealerSocket::with_options(opts)
}

pub fn sign(key: &[u8], parts: &[&[u8]]) -> String {
    if key.is_empty() {
        return String::new();
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    for p in parts {
        mac.update(p);
    }
    hex::encode(mac.finalize().into_bytes())
}

pub const T: Duration = Duration::from_secs(10);

impl Client {
    pub async fn connect(info: &ConnectionInfo) -> Client {
        let id = format!("client-{}", std::process::id());
        let mut shell = dealer(&id);
        shell
            .connect(&info.endpoint(info.shell_port))
            .await
            .unwrap();
        let mut stdin = dealer(&id);
        stdin
            .connect(&info.endpoint(info.stdin_port))
            .await
            .unwrap();
        let mut control = dealer(&format!("{id}-control"));
        control
            .connect(&info.endpoint(info.control_port))
            .await
            .unwrap();
        let mut iopub = SubSocket::new();
        iopub
            .connect(&info.endpoint(info.iopub_port))
            .await
            .unwrap();
        iopub.subscribe("").await.unwrap();
        let mut hb = ReqSocket::new();
        hb.connect(&info.endpoint(info.hb_port)).await.unwrap();
        let mut c = Client {
            shell,
            control,
            stdin,
            iopub,
            hb,
            key: info.key.as_bytes().to_vec(),
            session: "test-session".into(),
            counter: 0,
        };
        c.wait_for_iopub().await;
        c
    }

    /// jupyter_client's wait_for_ready: kernel_info until IOPub delivers something.
    async fn wait_for_iopub(&mut self) {
        for _ in 0..100 {
            let id = self.send_shell("kernel_info_request", json!({})).await;
            let reply = self.recv_shell().await;
            assert_eq!(reply.parent_id(), id);
            if let Ok(Ok(_)) =
                tokio::time::timeout(Duration::from_millis(200), self.iopub.recv()).await
            {
                // Drain the rest of that request's status messages.
                while let Ok(Ok(_)) =
                    tokio::time::timeout(Duration::from_millis(100), self.iopub.recv()).await
                {
                }
                return;
            }
        }
        panic!("IOPub never connected");
    }

    pub fn frames(
        &mut self,
        msg_type: &str,
        content: Value,
        version: &str,
    ) -> (String, Vec<Bytes>) {
        self.counter += 1;
        let id = format!("{}-{}", msg_type, self.counter);
        let header = json!({
            "msg_id": id, "session": self.session, "username": "test",
            "date": "2026-11-22T04:00:00.000000Z", "msg_type": msg_type, "version": version,
        })
        .to_string();
        let (p, m, c) = ("{}".to_string(), "{}".to_string(), content.to_string());
        let sig = sign(
            &self.key,
            &[header.as_bytes(), p.as_bytes(), m.as_bytes(), c.as_bytes()],
        );
        let frames = vec![
            Bytes::from_static(b"<IDS|MSG>"),
            Bytes::from(sig),
            Bytes::from(header),
            Bytes::from(p),
            Bytes::from(m),
            Bytes::from(c),
        ];
        (id, frames)
    }

    pub async fn send_raw_control(&mut self, frames: Vec<Bytes>) {
        self.control
            .send(ZmqMessage::try_from(frames).unwrap())
            .await
            .unwrap();
    }

    pub async fn send_raw_stdin(&mut self, frames: Vec<Bytes>) {
        self.stdin
            .send(ZmqMessage::try_from(frames).unwrap())
            .await
            .unwrap();
    }

    /// Drops every IOPub message already received.
    pub async fn drain_iopub(&mut self) {
        while let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_millis(5), self.iopub.recv()).await
        {}
    }

    pub async fn send_raw_shell(&mut self, frames: Vec<Bytes>) {
        self.shell
            .send(ZmqMessage::try_from(frames).unwrap())
            .await
            .unwrap();
    }

    /// A shell request whose header also has `extra`'s fields (`subshell_id`).
    pub async fn send_shell_with(
        &mut self,
        msg_type: &str,
        content: Value,
        extra: Value,
    ) -> String {
        self.counter += 1;
        let id = format!("{}-{}", msg_type, self.counter);
        let mut header = json!({
            "msg_id": id, "session": self.session, "username": "test",
            "date": "2026-11-22T04:00:00.000000Z", "msg_type": msg_type, "version": "5.5",
        });
        for (k, v) in extra.as_object().into_iter().flatten() {
            header[k] = v.clone();
        }
        let frames = self.signed(&header, &json!({}), &content);
        self.send_raw_shell(frames).await;
        id
    }

    /// The signed frames of a message with these parts.
    pub fn signed(&self, header: &Value, metadata: &Value, content: &Value) -> Vec<Bytes> {
        let (h, p, m, c) = (
            header.to_string(),
            "{}".to_string(),
            metadata.to_string(),
            content.to_string(),
        );
        let sig = sign(
            &self.key,
            &[h.as_bytes(), p.as_bytes(), m.as_bytes(), c.as_bytes()],
        );
        vec![
            Bytes::from_static(b"<IDS|MSG>"),
            Bytes::from(sig),
            Bytes::from(h),
            Bytes::from(p),
            Bytes::from(m),
            Bytes::from(c),
        ]
    }

    /// An execute request on subshell `subshell`.
    pub async fn execute_in(&mut self, subshell: &str, code: &str) -> String {
        self.send_shell_with(
            "execute_request",
            json!({ "code": code, "silent": false, "store_history": true,
                    "user_expressions": {}, "allow_stdin": true, "stop_on_error": true }),
            json!({ "subshell_id": subshell }),
        )
        .await
    }

    /// Shell replies up to the one to `id`.
    pub async fn reply_to(&mut self, id: &str) -> Msg {
        loop {
            let m = self.recv_shell().await;
            if m.parent_id() == id {
                return m;
            }
        }
    }

    /// Control replies up to the one to `id`.
    pub async fn control_reply_to(&mut self, id: &str) -> Msg {
        loop {
            let m = self.recv_control().await;
            if m.parent_id() == id {
                return m;
            }
        }
    }

    pub async fn send_shell(&mut self, msg_type: &str, content: Value) -> String {
        let (id, frames) = self.frames(msg_type, content, "5.3");
        self.send_raw_shell(frames).await;
        id
    }

    pub async fn send_control(&mut self, msg_type: &str, content: Value) -> String {
        let (id, frames) = self.frames(msg_type, content, "5.3");
        self.control
            .send(ZmqMessage::try_from(frames).unwrap())
            .await
            .unwrap();
        id
    }

    pub async fn execute(&mut self, code: &str) -> String {
        self.send_shell(
            "execute_request",
            json!({ "code": code, "silent": false, "store_history": true,
                    "user_expressions": {}, "allow_stdin": true, "stop_on_error": true }),
        )
        .await
    }

    fn parse(&self, m: ZmqMessage) -> Msg {
        let frames = m.into_vec();
        let d = frames
            .iter()
            .position(|f| f.as_ref() == b"<IDS|MSG>")
            .expect("delimiter");
        let parts: Vec<&[u8]> = frames[d + 2..d + 6].iter().map(|b| b.as_ref()).collect();
        let expected = sign(&self.key, &parts);
        assert_eq!(
            std::str::from_utf8(&frames[d + 1]).unwrap(),
            expected,
            "kernel messages are signed"
        );
        let j = |i: usize| serde_json::from_slice::<Value>(&frames[d + i]).unwrap();
        let header = j(2);
        assert_eq!(header["version"], "5.5");
        Msg {
            header,
            parent: j(3),
            content: j(5),
        }
    }

    pub async fn recv_shell(&mut self) -> Msg {
        let m = tokio::time::timeout(T, self.shell.recv())
            .await
            .expect("shell reply in time")
            .unwrap();
        self.parse(m)
    }

    pub async fn recv_control(&mut self) -> Msg {
        let m = tokio::time::timeout(T, self.control.recv())
            .await
            .expect("control reply in time")
            .unwrap();
        self.parse(m)
    }

    pub async fn recv_stdin(&mut self) -> Msg {
        let m = tokio::time::timeout(T, self.stdin.recv())
            .await
            .expect("stdin request in time")
            .unwrap();
        self.parse(m)
    }

    pub async fn recv_iopub(&mut self) -> Msg {
        let m = tokio::time::timeout(T, self.iopub.recv())
            .await
            .expect("iopub message in time")
            .unwrap();
        self.parse(m)
    }

    /// Every IOPub message up to and including the idle of request `id`.
    pub async fn iopub_until_idle(&mut self, id: &str) -> Vec<Msg> {
        let mut out = Vec::new();
        loop {
            let m = self.recv_iopub().await;
            let done = m.msg_type() == "status" && m.state() == "idle" && m.parent_id() == id;
            out.push(m);
            if done {
                return out;
            }
        }
    }
}

/// Builds a current-thread runtime and runs `f` on it.
pub fn run_async<F: std::future::Future<Output = ()>>(f: F) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f);
}
