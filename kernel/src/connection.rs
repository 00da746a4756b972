//! [`ConnectionInfo`]: the connection file a front end writes, and [`KernelError`].

use std::fmt;
use std::path::Path;

use serde_json::{json, Value};

/// The five channels of a kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// Requests (ROUTER).
    Shell,
    /// Broadcast output (PUB).
    Iopub,
    /// `input()` requests (ROUTER).
    Stdin,
    /// Interrupt and shutdown (ROUTER).
    Control,
    /// Liveness echo (REP).
    Heartbeat,
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Channel::Shell => "shell",
            Channel::Iopub => "iopub",
            Channel::Stdin => "stdin",
            Channel::Control => "control",
            Channel::Heartbeat => "heartbeat",
        })
    }
}

/// A Jupyter connection file: where to bind and how to sign.
///
/// # Examples
///
/// ```
/// use autoawait_kernel::ConnectionInfo;
///
/// let info = ConnectionInfo::from_json(r#"{
///     "transport": "tcp", "ip": "127.0.0.1", "key": "s3cret",
///     "signature_scheme": "hmac-sha256",
///     "shell_port": 5001, "iopub_port": 5002, "stdin_port": 5003,
///     "control_port": 5004, "hb_port": 5005
/// }"#)?;
/// assert_eq!(info.endpoint(info.shell_port), "tcp://127.0.0.1:5001");
/// # Ok::<(), autoawait_kernel::KernelError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// `tcp` or `ipc`.
    pub transport: String,
    /// The address to bind (tcp), or the path prefix (ipc).
    pub ip: String,
    /// The HMAC key; empty disables signing.
    pub key: String,
    /// Shell port.
    pub shell_port: u16,
    /// IOPub port.
    pub iopub_port: u16,
    /// Stdin port.
    pub stdin_port: u16,
    /// Control port.
    pub control_port: u16,
    /// Heartbeat port.
    pub hb_port: u16,
    /// `kernel_name`, if the file names one.
    pub kernel_name: Option<String>,
}

impl ConnectionInfo {
    /// Reads a connection file.
    ///
    /// # Errors
    ///
    /// [`KernelError::ConnectionFile`] if it cannot be read or is not valid.
    pub fn from_file(path: &Path) -> Result<Self, KernelError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            KernelError::ConnectionFile(format!("cannot read {}: {e}", path.display()))
        })?;
        Self::from_json(&text)
            .map_err(|e| KernelError::ConnectionFile(format!("{}: {e}", path.display())))
    }

    /// Parses a connection file's text.
    ///
    /// # Errors
    ///
    /// [`KernelError::ConnectionFile`] for bad JSON, a missing field, an unknown
    /// transport or a signature scheme other than `hmac-sha256`.
    pub fn from_json(text: &str) -> Result<Self, KernelError> {
        let bad = |m: String| KernelError::ConnectionFile(m);
        let v: Value = serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
        let s = |k: &str, default: &str| -> String { v[k].as_str().unwrap_or(default).to_owned() };
        let port = |k: &str| -> Result<u16, KernelError> {
            v[k].as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .ok_or_else(|| bad(format!("`{k}` is missing or not a port number")))
        };
        let transport = s("transport", "tcp");
        if transport != "tcp" && transport != "ipc" {
            return Err(bad(format!(
                "unsupported transport `{transport}`; the transports are `tcp` and `ipc`"
            )));
        }
        let key = s("key", "");
        let scheme = s("signature_scheme", "hmac-sha256");
        if !key.is_empty() && scheme != "hmac-sha256" {
            return Err(bad(format!(
                "unsupported signature scheme `{scheme}`; the supported scheme is `hmac-sha256`"
            )));
        }
        Ok(ConnectionInfo {
            transport,
            ip: s("ip", "127.0.0.1"),
            key,
            shell_port: port("shell_port")?,
            iopub_port: port("iopub_port")?,
            stdin_port: port("stdin_port")?,
            control_port: port("control_port")?,
            hb_port: port("hb_port")?,
            kernel_name: v["kernel_name"].as_str().map(str::to_owned),
        })
    }

    /// The file's JSON (as a front end writes it).
    pub fn to_json(&self) -> String {
        let mut v = json!({
            "transport": self.transport,
            "ip": self.ip,
            "key": self.key,
            "signature_scheme": "hmac-sha256",
            "shell_port": self.shell_port,
            "iopub_port": self.iopub_port,
            "stdin_port": self.stdin_port,
            "control_port": self.control_port,
            "hb_port": self.hb_port,
        });
        if let Some(name) = &self.kernel_name {
            v["kernel_name"] = name.clone().into();
        }
        v.to_string()
    }

    /// The ZeroMQ endpoint of `port`: `tcp://ip:port`, or `ipc://ip-port` (Jupyter's naming).
    pub fn endpoint(&self, port: u16) -> String {
        if self.transport == "ipc" {
            format!("ipc://{}-{port}", self.ip)
        } else if self.ip.contains(':') {
            format!("tcp://[{}]:{port}", self.ip)
        } else {
            format!("tcp://{}:{port}", self.ip)
        }
    }

    pub(crate) fn port(&self, channel: Channel) -> u16 {
        match channel {
            Channel::Shell => self.shell_port,
            Channel::Iopub => self.iopub_port,
            Channel::Stdin => self.stdin_port,
            Channel::Control => self.control_port,
            Channel::Heartbeat => self.hb_port,
        }
    }

    pub(crate) fn set_port(&mut self, channel: Channel, port: u16) {
        match channel {
            Channel::Shell => self.shell_port = port,
            Channel::Iopub => self.iopub_port = port,
            Channel::Stdin => self.stdin_port = port,
            Channel::Control => self.control_port = port,
            Channel::Heartbeat => self.hb_port = port,
        }
    }
}

/// Why the kernel could not start or serve.
#[derive(Debug)]
#[non_exhaustive]
pub enum KernelError {
    /// The connection file is unreadable or invalid.
    ConnectionFile(String),
    /// A socket could not be bound.
    Bind {
        /// Which channel.
        channel: Channel,
        /// The endpoint tried.
        endpoint: String,
        /// What the socket layer said.
        reason: String,
    },
    /// The kernel's I/O thread could not start or died.
    Io(String),
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelError::ConnectionFile(m) => write!(f, "bad connection file: {m}"),
            KernelError::Bind {
                channel,
                endpoint,
                reason,
            } => write!(
                f,
                "cannot bind the {channel} socket to {endpoint}: {reason} (is another kernel using this connection file?)"
            ),
            KernelError::Io(m) => write!(f, "kernel I/O failed: {m}"),
        }
    }
}

impl std::error::Error for KernelError {}
