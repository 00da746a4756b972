//! The execute side: a session, one shell request at a time, between busy and idle.
//! The main shell runs on the thread that called `serve`, each subshell on its own.

use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};

use autoawait_core::{CancelToken, CellId};
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedSender;
use zeromq::ZmqMessage;

use crate::history::History;
use crate::kernel::{bad_version, error_content, kernel_info_content, log, reply, reply_type, Job};
use crate::output::{lock, KernelOutput, Parent, Running, Shared};
use crate::wire::Message;
use crate::{Completeness, ErrorReport, ExecuteContext, KernelInfo, Session};

/// What the main shell and its subshells share.
pub(crate) struct Common {
    pub(crate) execution_count: AtomicU64,
    pub(crate) history: Mutex<History>,
    pub(crate) info: KernelInfo,
    /// The session makes subshells.
    pub(crate) subshells: bool,
}

/// One shell: its session, its queue.
pub(crate) struct Exec<S> {
    session: S,
    /// `None` for the main shell, else the subshell's id.
    shell: Option<String>,
    shared: Arc<Shared>,
    common: Arc<Common>,
    shell_reply: UnboundedSender<ZmqMessage>,
    jobs: std_mpsc::Receiver<Job>,
    pending: VecDeque<Job>,
    aborting: Vec<Message>,
}

impl<S: Session> Exec<S> {
    pub(crate) fn new(
        session: S,
        shell: Option<String>,
        shared: Arc<Shared>,
        common: Arc<Common>,
        shell_reply: UnboundedSender<ZmqMessage>,
        jobs: std_mpsc::Receiver<Job>,
    ) -> Self {
        Exec {
            session,
            shell,
            shared,
            common,
            shell_reply,
            jobs,
            pending: VecDeque::new(),
            aborting: Vec::new(),
        }
    }

    /// Serves requests until a shutdown (main shell) or until the queue closes
    /// (a deleted subshell, the kernel stopping).
    pub(crate) fn run(&mut self) {
        loop {
            let job = match self.pending.pop_front() {
                Some(job) => job,
                None => match self.jobs.recv() {
                    Ok(job) => job,
                    Err(_) => return,
                },
            };
            match job {
                Job::Shutdown { restart, done } => {
                    self.session.shutdown(restart);
                    let _ = done.send(());
                    return;
                }
                Job::Shell(msg) => {
                    if self.shell(msg) {
                        return;
                    }
                }
            }
        }
    }

    fn send(&self, req: &Message, msg_type: &str, content: Value) {
        let _ = self
            .shell_reply
            .send(reply(&self.shared, req, msg_type, content));
    }

    /// Handles one shell request between busy and idle; `true` to stop serving.
    fn shell(&mut self, msg: Message) -> bool {
        let parent = Parent::of(&msg);
        self.shared.status(&parent, "busy");
        // A session that panics on a request answers it with an error and serves on.
        let handled = panic::catch_unwind(AssertUnwindSafe(|| self.handle(&msg, &parent)));
        let stop = handled.unwrap_or_else(|panic| {
            self.recover(&msg, &parent, panic.as_ref());
            false
        });
        self.shared.status(&parent, "idle");
        self.abort_taken();
        stop
    }

    /// After a panic in the session: the request's cell is no longer running, and
    /// the request gets an error reply.
    fn recover(&mut self, msg: &Message, parent: &Arc<Parent>, panic: &(dyn std::any::Any + Send)) {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        log(format_args!(
            "the session panicked on a {}: {what}",
            msg.msg_type()
        ));
        lock(&self.shared.running).retain(|r| !Arc::ptr_eq(&r.parent, parent));
        if let Some(rt) = reply_type(msg.msg_type()) {
            let why = format!("the kernel's session panicked: {what}");
            self.send(msg, &rt, error_content("KernelPanic", why));
        }
    }

    /// Answers one shell request; `true` to stop serving.
    fn handle(&mut self, msg: &Message, parent: &Arc<Parent>) -> bool {
        let msg_type = msg.msg_type().to_owned();
        let mut stop = false;
        if let Some(why) = bad_version(msg) {
            log(format_args!("{why}"));
            if let Some(rt) = reply_type(&msg_type) {
                self.send(msg, &rt, error_content("ProtocolVersionError", why));
            }
        } else {
            match msg_type.as_str() {
                "execute_request" => self.execute(msg, parent),
                "kernel_info_request" => self.send(
                    msg,
                    "kernel_info_reply",
                    kernel_info_content(&self.common.info, self.common.subshells),
                ),
                "is_complete_request" => {
                    let code = msg.content["code"].as_str().unwrap_or("");
                    let content = match self.session.is_complete(code) {
                        Completeness::Complete => json!({ "status": "complete" }),
                        Completeness::Incomplete { indent } => {
                            json!({ "status": "incomplete", "indent": indent })
                        }
                        Completeness::Invalid => json!({ "status": "invalid" }),
                        Completeness::Unknown => json!({ "status": "unknown" }),
                    };
                    self.send(msg, "is_complete_reply", content);
                }
                "complete_request" => {
                    let code = msg.content["code"].as_str().unwrap_or("");
                    let cursor = byte_offset(code, &msg.content["cursor_pos"]);
                    let c = self.session.complete(code, cursor);
                    let content = json!({
                        "status": "ok",
                        "matches": c.matches,
                        "cursor_start": char_offset(code, c.cursor_start),
                        "cursor_end": char_offset(code, c.cursor_end),
                        "metadata": {},
                    });
                    self.send(msg, "complete_reply", content);
                }
                "inspect_request" => {
                    let code = msg.content["code"].as_str().unwrap_or("");
                    let cursor = byte_offset(code, &msg.content["cursor_pos"]);
                    let detail = msg.content["detail_level"].as_u64().unwrap_or(0).min(1) as u8;
                    let found = self.session.inspect(code, cursor, detail);
                    let content = json!({
                        "status": "ok",
                        "found": found.is_some(),
                        "data": found.map_or_else(|| json!({}), |b| b.to_json()),
                        "metadata": {},
                    });
                    self.send(msg, "inspect_reply", content);
                }
                "history_request" => {
                    let history = lock(&self.common.history).query(&msg.content);
                    self.send(
                        msg,
                        "history_reply",
                        json!({ "status": "ok", "history": history }),
                    );
                }
                "comm_info_request" => self.send(
                    msg,
                    "comm_info_reply",
                    json!({ "status": "ok", "comms": {} }),
                ),
                "shutdown_request" if self.shell.is_some() => self.send(
                    msg,
                    "shutdown_reply",
                    error_content(
                        "SubshellError",
                        "a subshell cannot shut the kernel down: send shutdown_request on control"
                            .into(),
                    ),
                ),
                "shutdown_request" => {
                    // Deprecated on shell since protocol 5.4; old clients still send it.
                    log(format_args!(
                        "shutdown_request on the shell channel is deprecated (protocol 5.4); send it on control"
                    ));
                    let restart = msg.content["restart"].as_bool().unwrap_or(false);
                    self.shared.shutting_down.store(true, Ordering::SeqCst);
                    self.session.shutdown(restart);
                    self.send(
                        msg,
                        "shutdown_reply",
                        json!({ "status": "ok", "restart": restart }),
                    );
                    stop = true;
                }
                other => {
                    log(format_args!("unknown shell message type `{other}`"));
                    if let Some(rt) = reply_type(other) {
                        let why = format!("this kernel does not handle `{other}`");
                        self.send(msg, &rt, error_content("UnknownMessageType", why));
                    }
                }
            }
        }
        stop
    }

    fn execute(&mut self, msg: &Message, parent: &Arc<Parent>) {
        let c = &msg.content;
        let code = c["code"].as_str().unwrap_or("");
        let silent = c["silent"].as_bool().unwrap_or(false);
        let store_history = !silent && c["store_history"].as_bool().unwrap_or(true);
        let stop_on_error = c["stop_on_error"].as_bool().unwrap_or(true);
        let allow_stdin = c["allow_stdin"].as_bool().unwrap_or(true);
        if self.shared.shutting_down.load(Ordering::SeqCst) {
            self.abort(msg);
            return;
        }
        let count = if store_history {
            self.common.execution_count.fetch_add(1, Ordering::SeqCst) + 1
        } else {
            self.common.execution_count.load(Ordering::SeqCst)
        };
        let cell = CellId::next();
        self.shared.route(cell, parent.clone());
        // Running before `execute_input` goes out: a client that interrupts as soon
        // as it sees the cell start must find it to cancel.
        let cancel = CancelToken::new();
        lock(&self.shared.running).push(Running {
            shell: self.shell.clone(),
            parent: parent.clone(),
            cancel: cancel.clone(),
            allow_stdin,
            payload: Vec::new(),
        });
        if !silent {
            self.shared.publish(
                Some(parent),
                "execute_input",
                json!({ "code": code, "execution_count": count }),
            );
        }
        let ctx = ExecuteContext {
            cell,
            execution_count: count,
            silent,
            store_history,
            allow_stdin,
            cancel: cancel.clone(),
            output: KernelOutput {
                shared: self.shared.clone(),
            },
        };
        let outcome = self.session.execute(code, &ctx);
        let payload = {
            let mut running = lock(&self.shared.running);
            match running.iter().position(|r| Arc::ptr_eq(&r.parent, parent)) {
                Some(i) => running.remove(i).payload,
                None => Vec::new(),
            }
        };
        // What the cell wrote goes out before its result, its error and its reply.
        self.shared.finish_output(parent);
        match outcome {
            Ok(value) => {
                let plain = value
                    .as_ref()
                    .and_then(|b| b.get("text/plain"))
                    .map(str::to_owned);
                if let (Some(value), false) = (&value, silent) {
                    self.shared.publish(
                        Some(parent),
                        "execute_result",
                        json!({ "execution_count": count, "data": value.to_json(), "metadata": {} }),
                    );
                }
                if store_history {
                    lock(&self.common.history).push(count, code, plain);
                }
                let user_expressions = self.user_expressions(&c["user_expressions"]);
                self.send(
                    msg,
                    "execute_reply",
                    json!({
                        "status": "ok",
                        "execution_count": count,
                        "user_expressions": user_expressions,
                        "payload": payload,
                    }),
                );
            }
            Err(mut report) => {
                if cancel.is_cancelled() {
                    report.ename = "KeyboardInterrupt".into();
                    if report.evalue.is_empty() {
                        report.evalue = "interrupted".into();
                    }
                }
                let mut error = report.to_json();
                if !silent {
                    self.shared.publish(Some(parent), "error", error.clone());
                }
                if store_history {
                    lock(&self.common.history).push(count, code, None);
                }
                error["status"] = "error".into();
                error["execution_count"] = count.into();
                error["user_expressions"] = json!({});
                error["payload"] = payload.into();
                // Take the queued executes out before the reply goes: a request sent
                // after the client saw this error must not be aborted.
                if stop_on_error {
                    self.take_queued_executes();
                }
                self.send(msg, "execute_reply", error);
            }
        }
    }

    /// `user_expressions` of an execute request, each evaluated by the session:
    /// `{name: {status, data, metadata}}` or `{name: {status: "error", ename, ...}}`.
    fn user_expressions(&mut self, requested: &Value) -> Value {
        let Some(requested) = requested.as_object() else {
            return json!({});
        };
        let failed = |report: ErrorReport| {
            let mut error = report.to_json();
            error["status"] = "error".into();
            error
        };
        let mut replies = serde_json::Map::new();
        for (name, expression) in requested {
            let reply = match expression.as_str() {
                None => failed(ErrorReport::new(
                    "TypeError",
                    "a user expression must be a string",
                )),
                Some(expression) => match self.session.evaluate(expression) {
                    Ok(bundle) => json!({
                        "status": "ok",
                        "data": bundle.to_json(),
                        "metadata": {},
                    }),
                    Err(report) => failed(report),
                },
            };
            replies.insert(name.clone(), reply);
        }
        Value::Object(replies)
    }

    /// Moves the execute requests already queued to `aborting` (`stop_on_error`);
    /// other requests stay queued, in order.
    fn take_queued_executes(&mut self) {
        let queued: Vec<Job> = self
            .pending
            .drain(..)
            .chain(std::iter::from_fn(|| self.jobs.try_recv().ok()))
            .collect();
        for job in queued {
            match job {
                Job::Shell(m) if m.msg_type() == "execute_request" => self.aborting.push(m),
                other => self.pending.push_back(other),
            }
        }
    }

    /// Replies `aborted` to the executes taken by `take_queued_executes`, each
    /// between busy and idle.
    fn abort_taken(&mut self) {
        for m in std::mem::take(&mut self.aborting) {
            let parent = Parent::of(&m);
            self.shared.status(&parent, "busy");
            self.abort(&m);
            self.shared.status(&parent, "idle");
        }
    }

    fn abort(&self, msg: &Message) {
        self.send(
            msg,
            "execute_reply",
            json!({
                "status": "aborted",
                "execution_count": self.common.execution_count.load(Ordering::SeqCst),
            }),
        );
    }
}

/// Jupyter cursors count Unicode code points; sessions get byte offsets.
fn byte_offset(code: &str, cursor: &Value) -> usize {
    let chars = cursor.as_u64().map_or(usize::MAX, |c| c as usize);
    code.char_indices()
        .nth(chars)
        .map_or(code.len(), |(i, _)| i)
}

fn char_offset(code: &str, byte: usize) -> usize {
    let mut byte = byte.min(code.len());
    while !code.is_char_boundary(byte) {
        byte -= 1;
    }
    code[..byte].chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_convert_between_code_points_and_bytes() {
        let code = "é = pri";
        assert_eq!(byte_offset(code, &json!(7)), code.len());
        assert_eq!(byte_offset(code, &json!(1)), 2);
        assert_eq!(char_offset(code, code.len()), 7);
        assert_eq!(char_offset(code, 1), 0);
        assert_eq!(byte_offset(code, &Value::Null), code.len());
    }

    #[test]
    fn reply_types() {
        assert_eq!(reply_type("foo_request").as_deref(), Some("foo_reply"));
        assert_eq!(reply_type("comm_msg"), None);
    }
}
