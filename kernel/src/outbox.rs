//! [`Outbox`]: every IOPub message, in order, with stream text batched per cell and
//! stream and a rate limit that summarises a runaway cell instead of dropping it.
//!
//! Stream text is appended to a buffer per parent (the request a cell came from),
//! as chunks of one stream each, so `stdout` and `stderr` keep their interleaving.
//! A buffer goes out as one `stream` message per chunk: after [`FLUSH_INTERVAL`],
//! before any other message with the same parent (a display, an error, the result,
//! `idle`), and when the request ends. Messages are handed to the I/O thread under
//! one lock, so what a cell produced goes out in the order it was produced.
//!
//! Beyond the rate (`AUTOAWAIT_IOPUB_RATE_LIMIT` bytes per second, default
//! [`DEFAULT_RATE`]; `0` turns the limit off) stream text is held back: the kernel
//! counts it, keeps its last lines and, at most once a second and when the request
//! ends, sends a notice saying how much was not shown, with those last lines.
//! Jupyter servers drop IOPub traffic beyond their own `iopub_data_rate_limit`
//! (1 MB/s) without telling the kernel; staying below it means nothing vanishes
//! unannounced.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::Notify;

use crate::output::{lock, Parent};
use crate::wire::{self, Bytes, Message};

/// How long stream text waits for more before it is sent.
pub(crate) const FLUSH_INTERVAL: Duration = Duration::from_millis(50);
/// Stream bytes per second the kernel sends before it summarises (half of the
/// Jupyter server's default `iopub_data_rate_limit`).
pub(crate) const DEFAULT_RATE: u64 = 500_000;
/// How many stream bytes may go out at once before the rate applies.
const BURST_SECONDS: f64 = 2.0;
/// How often a held-back stream is summarised while it keeps going.
const NOTICE_EVERY: Duration = Duration::from_secs(1);
/// The last lines of held-back text a notice shows.
const TAIL_LINES: usize = 5;
const TAIL_BYTES: usize = 2048;

/// A stream of a cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Text held back by the rate limit, per stream.
#[derive(Default)]
struct Held {
    bytes: usize,
    lines: usize,
    tail: String,
    since: Option<Instant>,
}

impl Held {
    fn add(&mut self, text: &str) {
        self.since.get_or_insert_with(Instant::now);
        self.bytes += text.len();
        self.lines += text.matches('\n').count();
        self.tail.push_str(text);
        // Keep the last lines only.
        let mut cut = 0;
        if let Some((i, _)) = self
            .tail
            .trim_end_matches('\n')
            .rmatch_indices('\n')
            .nth(TAIL_LINES - 1)
        {
            cut = i + 1;
        }
        if self.tail.len() - cut > TAIL_BYTES {
            cut = self.tail.len() - TAIL_BYTES;
            while !self.tail.is_char_boundary(cut) {
                cut += 1;
            }
        }
        self.tail.drain(..cut);
    }

    fn notice(&mut self, stream: Stream, rate: u64) -> String {
        let held = std::mem::take(self);
        let mut tail = held.tail;
        if !tail.ends_with('\n') {
            tail.push('\n');
        }
        format!(
            "\n[autoawait: {} lines ({} bytes) of {} not shown: the cell writes faster than \
             {rate} bytes/s (AUTOAWAIT_IOPUB_RATE_LIMIT sets the limit); the last lines were:]\n{tail}",
            held.lines,
            held.bytes,
            stream.name(),
        )
    }
}

/// The pending output of one parent.
struct Buffer {
    parent: Arc<Parent>,
    chunks: Vec<(Stream, String)>,
    held: [Held; 2],
}

impl Buffer {
    fn is_empty(&self) -> bool {
        self.chunks.is_empty() && self.held.iter().all(|h| h.bytes == 0)
    }
}

/// A token bucket of stream bytes.
struct Bucket {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: u64) -> Self {
        Bucket {
            rate: rate as f64,
            tokens: rate as f64 * BURST_SECONDS,
            at: Instant::now(),
        }
    }

    /// Takes `n` bytes if they fit.
    fn take(&mut self, n: usize) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        let now = Instant::now();
        let cap = self.rate * BURST_SECONDS;
        self.tokens =
            (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(cap);
        self.at = now;
        if self.tokens >= n as f64 {
            self.tokens -= n as f64;
            true
        } else {
            false
        }
    }
}

struct State {
    buffers: Vec<Buffer>,
    bucket: Bucket,
}

/// The ordered IOPub publisher (see the module docs).
pub(crate) struct Outbox {
    session: String,
    rate: u64,
    state: Mutex<State>,
    tx: UnboundedSender<Message>,
    /// Wakes the flusher when the first text of an empty outbox arrives.
    pub(crate) wake: Notify,
}

impl Outbox {
    pub(crate) fn new(session: String, tx: UnboundedSender<Message>, rate: u64) -> Self {
        Outbox {
            session,
            rate,
            state: Mutex::new(State {
                buffers: Vec::new(),
                bucket: Bucket::new(rate),
            }),
            tx,
            wake: Notify::new(),
        }
    }

    /// The rate from `AUTOAWAIT_IOPUB_RATE_LIMIT`, else [`DEFAULT_RATE`].
    pub(crate) fn rate_from_env() -> u64 {
        match std::env::var("AUTOAWAIT_IOPUB_RATE_LIMIT") {
            Ok(v) => v.trim().parse().unwrap_or_else(|_| {
                crate::kernel::log(format_args!(
                    "AUTOAWAIT_IOPUB_RATE_LIMIT=`{v}` is not a number of bytes per second \
                     (0 turns the limit off); using {DEFAULT_RATE}"
                ));
                DEFAULT_RATE
            }),
            Err(_) => DEFAULT_RATE,
        }
    }

    /// Appends stream text for `parent`; it goes out within [`FLUSH_INTERVAL`].
    pub(crate) fn write(&self, parent: &Arc<Parent>, stream: Stream, text: &str) {
        if text.is_empty() {
            return;
        }
        let mut st = lock(&self.state);
        let was_empty = st.buffers.is_empty();
        let fits = st.bucket.take(text.len());
        let i = match st
            .buffers
            .iter()
            .position(|b| Arc::ptr_eq(&b.parent, parent))
        {
            Some(i) => i,
            None => {
                st.buffers.push(Buffer {
                    parent: parent.clone(),
                    chunks: Vec::new(),
                    held: Default::default(),
                });
                st.buffers.len() - 1
            }
        };
        let buffer = &mut st.buffers[i];
        if !fits {
            buffer.held[stream.index()].add(text);
        } else {
            match buffer.chunks.last_mut() {
                Some((s, t)) if *s == stream => t.push_str(text),
                _ => buffer.chunks.push((stream, text.to_owned())),
            }
        }
        drop(st);
        if was_empty {
            self.wake.notify_one();
        }
    }

    /// Sends a message with `parent` (none: `{}`), after that parent's stream text.
    pub(crate) fn publish(&self, parent: Option<&Arc<Parent>>, msg_type: &str, content: Value) {
        let mut st = lock(&self.state);
        if let Some(parent) = parent {
            self.flush_locked(&mut st, parent, false);
        }
        self.send(parent.map(|p| &**p), msg_type, content);
    }

    /// Sends `parent`'s stream text now; with `last` (its request ended), also the
    /// notice for what the rate limit held back.
    pub(crate) fn flush(&self, parent: &Arc<Parent>, last: bool) {
        let mut st = lock(&self.state);
        self.flush_locked(&mut st, parent, last);
    }

    /// Sends every parent's stream text (the flusher's tick). `true` if held-back
    /// text waits for its notice, so another tick is due.
    pub(crate) fn flush_all(&self) -> bool {
        let mut st = lock(&self.state);
        let mut buffers = std::mem::take(&mut st.buffers);
        for b in &mut buffers {
            self.drain(b, false);
        }
        buffers.retain(|b| !b.is_empty());
        let pending = !buffers.is_empty();
        // Buffers created meanwhile cannot exist: the lock was held throughout.
        st.buffers = buffers;
        pending
    }

    fn flush_locked(&self, st: &mut State, parent: &Arc<Parent>, last: bool) {
        if let Some(i) = st
            .buffers
            .iter()
            .position(|b| Arc::ptr_eq(&b.parent, parent))
        {
            self.drain(&mut st.buffers[i], last);
            if st.buffers[i].is_empty() {
                st.buffers.remove(i);
            }
        }
    }

    fn drain(&self, b: &mut Buffer, last: bool) {
        for (stream, text) in b.chunks.drain(..) {
            self.send(
                Some(&b.parent),
                "stream",
                json!({ "name": stream.name(), "text": text }),
            );
        }
        for stream in [Stream::Stdout, Stream::Stderr] {
            let held = &mut b.held[stream.index()];
            let due = held.since.is_some_and(|t| t.elapsed() >= NOTICE_EVERY);
            if held.bytes > 0 && (last || due) {
                let text = held.notice(stream, self.rate);
                self.send(
                    Some(&b.parent),
                    "stream",
                    json!({ "name": stream.name(), "text": text }),
                );
            }
        }
    }

    fn send(&self, parent: Option<&Parent>, msg_type: &str, content: Value) {
        let msg = Message {
            identities: vec![Bytes::from(msg_type.to_owned())],
            header: wire::header(&self.session, msg_type),
            parent_header: parent.map_or_else(|| json!({}), |p| p.header.clone()),
            metadata: json!({}),
            content,
            buffers: Vec::new(),
        };
        let _ = self.tx.send(msg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc::unbounded_channel;

    fn parent(id: &str) -> Arc<Parent> {
        Arc::new(Parent {
            header: json!({ "msg_id": id }),
            identities: Vec::new(),
        })
    }

    fn texts(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Message>) -> Vec<(String, String)> {
        let mut out = Vec::new();
        while let Ok(m) = rx.try_recv() {
            let kind = match m.msg_type() {
                "stream" => m.content["name"].as_str().unwrap().to_owned(),
                other => other.to_owned(),
            };
            out.push((kind, m.content["text"].as_str().unwrap_or("").to_owned()));
        }
        out
    }

    #[test]
    fn stream_text_is_one_message_per_run_of_a_stream_and_order_is_kept() {
        let (tx, mut rx) = unbounded_channel();
        let out = Outbox::new("s".into(), tx, 0);
        let p = parent("a");
        for i in 0..1000 {
            out.write(&p, Stream::Stdout, &format!("{i}\n"));
        }
        out.write(&p, Stream::Stderr, "oops\n");
        out.write(&p, Stream::Stdout, "after\n");
        assert!(texts(&mut rx).is_empty(), "nothing before a flush");
        out.publish(Some(&p), "display_data", json!({}));
        let got = texts(&mut rx);
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(got[0].0, "stdout");
        assert_eq!(got[0].1.lines().count(), 1000);
        assert_eq!(got[0].1.lines().last(), Some("999"));
        assert_eq!(got[1], ("stderr".into(), "oops\n".into()));
        assert_eq!(got[2], ("stdout".into(), "after\n".into()));
        assert_eq!(got[3].0, "display_data");
    }

    #[test]
    fn other_parents_keep_their_text_until_their_own_flush() {
        let (tx, mut rx) = unbounded_channel();
        let out = Outbox::new("s".into(), tx, 0);
        let (a, b) = (parent("a"), parent("b"));
        out.write(&a, Stream::Stdout, "a\n");
        out.write(&b, Stream::Stdout, "b\n");
        out.publish(Some(&b), "status", json!({}));
        assert_eq!(texts(&mut rx).len(), 2);
        assert!(!out.flush_all(), "nothing held back");
        assert_eq!(texts(&mut rx), [("stdout".to_string(), "a\n".to_string())]);
    }

    #[test]
    fn beyond_the_rate_text_is_summarised_with_its_last_lines() {
        let (tx, mut rx) = unbounded_channel();
        let out = Outbox::new("s".into(), tx, 1000);
        let p = parent("a");
        for i in 0..2000 {
            out.write(&p, Stream::Stdout, &format!("line {i}\n"));
        }
        out.flush(&p, true);
        let got = texts(&mut rx);
        let all: String = got.iter().map(|(_, t)| t.as_str()).collect();
        assert!(all.contains("line 0\n"), "the start is shown");
        let notice = &got.last().unwrap().1;
        assert!(notice.contains("not shown"), "{notice}");
        assert!(notice.contains("line 1999\n"), "the end is shown: {notice}");
        let shown = all.matches("line ").count();
        let held: usize = notice
            .split("autoawait: ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        assert_eq!(
            shown - TAIL_LINES + held,
            2000,
            "every line is shown or counted"
        );
        assert!(
            all.len() < 4000,
            "the burst caps what goes out: {}",
            all.len()
        );
    }
}
