//! The Jupyter wire format: frames, HMAC-SHA256 signatures, headers.
//!
//! `[identities…, b"<IDS|MSG>", hex HMAC, header, parent_header, metadata, content, buffers…]`;
//! the signature covers the four JSON frames. An empty key disables signing.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use zeromq::ZmqMessage;

pub(crate) use bytes::Bytes;

const DELIMITER: &[u8] = b"<IDS|MSG>";

/// The protocol version stamped on every header we send.
pub(crate) const PROTOCOL_VERSION: &str = "5.5";

/// Signs and verifies messages with the connection file's key.
#[derive(Clone)]
pub(crate) struct Signer {
    mac: Option<Hmac<Sha256>>,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("signing", &self.mac.is_some())
            .finish()
    }
}

impl Signer {
    /// A signer for `key`; an empty key disables signing (and checking).
    pub(crate) fn new(key: &[u8]) -> Self {
        let mac = (!key.is_empty())
            .then(|| Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length"));
        Signer { mac }
    }

    /// Whether messages are signed (the connection file has a key).
    pub(crate) fn is_signing(&self) -> bool {
        self.mac.is_some()
    }

    fn sign(&self, parts: [&[u8]; 4]) -> String {
        match &self.mac {
            None => String::new(),
            Some(mac) => {
                let mut mac = mac.clone();
                for part in parts {
                    mac.update(part);
                }
                hex::encode(mac.finalize().into_bytes())
            }
        }
    }

    /// Constant-time check of a hex signature (`verify_slice` compares in constant time).
    fn verify(&self, signature: &[u8], parts: [&[u8]; 4]) -> bool {
        let Some(mac) = &self.mac else { return true };
        let Ok(expected) = hex::decode(signature) else {
            return false;
        };
        let mut mac = mac.clone();
        for part in parts {
            mac.update(part);
        }
        mac.verify_slice(&expected).is_ok()
    }
}

/// Why an incoming message was dropped.
#[derive(Debug)]
pub(crate) enum WireError {
    /// No `<IDS|MSG>` delimiter, or fewer than five frames after it.
    Framing,
    /// The signature is missing or wrong.
    Signature,
    /// A JSON frame does not parse, or the header is not an object with a `msg_type`.
    Json(String),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Framing => write!(
                f,
                "not a Jupyter message (no <IDS|MSG> delimiter or too few frames)"
            ),
            WireError::Signature => write!(f, "bad or missing HMAC signature"),
            WireError::Json(e) => write!(f, "malformed message: {e}"),
        }
    }
}

/// One Jupyter message.
#[derive(Clone, Debug)]
pub(crate) struct Message {
    pub(crate) identities: Vec<Bytes>,
    pub(crate) header: Value,
    pub(crate) parent_header: Value,
    pub(crate) metadata: Value,
    pub(crate) content: Value,
    pub(crate) buffers: Vec<Bytes>,
}

impl Message {
    pub(crate) fn msg_type(&self) -> &str {
        self.header["msg_type"].as_str().unwrap_or("")
    }

    pub(crate) fn version(&self) -> &str {
        self.header["version"].as_str().unwrap_or("")
    }

    /// Decodes and verifies frames received on a ROUTER socket (identities first).
    pub(crate) fn decode(frames: Vec<Bytes>, signer: &Signer) -> Result<Message, WireError> {
        let delim = frames
            .iter()
            .position(|f| f.as_ref() == DELIMITER)
            .ok_or(WireError::Framing)?;
        if frames.len() < delim + 6 {
            return Err(WireError::Framing);
        }
        let mut rest = frames.into_iter();
        let identities: Vec<Bytes> = rest.by_ref().take(delim).collect();
        let _delim = rest.next();
        let signature = rest.next().unwrap_or_default();
        let header = rest.next().unwrap_or_default();
        let parent = rest.next().unwrap_or_default();
        let metadata = rest.next().unwrap_or_default();
        let content = rest.next().unwrap_or_default();
        // Authenticate before parsing anything.
        if !signer.verify(&signature, [&header, &parent, &metadata, &content]) {
            return Err(WireError::Signature);
        }
        let parse = |name: &str, b: &[u8]| -> Result<Value, WireError> {
            serde_json::from_slice(b).map_err(|e| WireError::Json(format!("{name}: {e}")))
        };
        let header = parse("header", &header)?;
        if !header.is_object() || !header["msg_type"].is_string() {
            return Err(WireError::Json(
                "header: not an object with a msg_type".into(),
            ));
        }
        Ok(Message {
            identities,
            header,
            parent_header: parse("parent_header", &parent)?,
            metadata: parse("metadata", &metadata)?,
            content: parse("content", &content)?,
            buffers: rest.collect(),
        })
    }

    /// Encodes, signing with `signer`; `prefix` is the identities (ROUTER) or a topic (PUB).
    pub(crate) fn encode(&self, signer: &Signer) -> ZmqMessage {
        let header = self.header.to_string();
        let parent = self.parent_header.to_string();
        let metadata = self.metadata.to_string();
        let content = self.content.to_string();
        let signature = signer.sign([
            header.as_bytes(),
            parent.as_bytes(),
            metadata.as_bytes(),
            content.as_bytes(),
        ]);
        let mut frames: Vec<Bytes> = self.identities.clone();
        frames.push(Bytes::from_static(DELIMITER));
        frames.push(Bytes::from(signature));
        frames.push(Bytes::from(header));
        frames.push(Bytes::from(parent));
        frames.push(Bytes::from(metadata));
        frames.push(Bytes::from(content));
        frames.extend(self.buffers.iter().cloned());
        ZmqMessage::try_from(frames).expect("a Jupyter message has at least six frames")
    }
}

/// A header for a new message of `msg_type` in kernel session `session`.
pub(crate) fn header(session: &str, msg_type: &str) -> Value {
    json!({
        "msg_id": new_id(),
        "session": session,
        "username": "kernel",
        "date": now_iso8601(),
        "msg_type": msg_type,
        "version": PROTOCOL_VERSION,
    })
}

/// A fresh random id in UUID form (version-4 layout).
pub(crate) fn new_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let a = h.finish();
    h.write_u64(a);
    let b = h.finish();
    let a = (a & 0xffff_ffff_ffff_0fff) | 0x4000;
    let b = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

/// Now, as `2026-11-22T03:55:50.123456Z`.
pub(crate) fn now_iso8601() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        now.subsec_micros()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(m: ZmqMessage) -> Vec<Bytes> {
        m.into_vec()
    }

    fn sample() -> Message {
        Message {
            identities: vec![Bytes::from_static(b"client")],
            header: header("s", "execute_request"),
            parent_header: json!({}),
            metadata: json!({}),
            content: json!({"code": "1"}),
            buffers: vec![],
        }
    }

    #[test]
    fn round_trip_with_key() {
        let signer = Signer::new(b"secret");
        let back = Message::decode(frames(sample().encode(&signer)), &signer).unwrap();
        assert_eq!(back.msg_type(), "execute_request");
        assert_eq!(back.identities, vec![Bytes::from_static(b"client")]);
        assert_eq!(back.content["code"], "1");
    }

    #[test]
    fn wrong_key_or_missing_signature_is_rejected() {
        let encoded = frames(sample().encode(&Signer::new(b"other")));
        let err = Message::decode(encoded, &Signer::new(b"secret")).unwrap_err();
        assert!(matches!(err, WireError::Signature));
        let unsigned = frames(sample().encode(&Signer::new(b"")));
        let err = Message::decode(unsigned, &Signer::new(b"secret")).unwrap_err();
        assert!(matches!(err, WireError::Signature));
    }

    #[test]
    fn no_key_accepts_unsigned() {
        let unsigned = frames(sample().encode(&Signer::new(b"")));
        assert!(Message::decode(unsigned, &Signer::new(b"")).is_ok());
    }

    #[test]
    fn dates_and_ids_have_the_expected_shape() {
        let d = now_iso8601();
        assert_eq!(d.len(), 27, "{d}");
        assert!(d.starts_with("20") && d.ends_with('Z'));
        let id = new_id();
        assert_eq!(id.len(), 36);
        assert_ne!(id, new_id());
    }
}
