//! The kernel driven over real ZeroMQ sockets by a Rust client, with a fake session.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use common::{run_async, start_kernel, watchdog, Client, Msg, KEY};
use serde_json::json;
use zeromq::{SocketRecv, SocketSend, ZmqMessage};

fn types(msgs: &[Msg]) -> Vec<String> {
    msgs.iter()
        .map(|m| match m.msg_type() {
            "status" => format!("status:{}", m.state()),
            t => t.to_owned(),
        })
        .collect()
}

fn of<'a>(msgs: &'a [Msg], id: &str) -> Vec<&'a Msg> {
    msgs.iter().filter(|m| m.parent_id() == id).collect()
}

/// Shuts the kernel down over control and checks the session's hook ran.
async fn shutdown(c: &mut Client, k: &mut common::Running) {
    let id = c
        .send_control("shutdown_request", json!({ "restart": false }))
        .await;
    let reply = c.recv_control().await;
    assert_eq!(reply.msg_type(), "shutdown_reply");
    assert_eq!(reply.parent_id(), id);
    assert_eq!(reply.content["status"], "ok");
    k.serve.take().unwrap().join().unwrap();
    assert!(
        k.log.shutdown.load(Ordering::SeqCst),
        "Session::shutdown ran"
    );
}

#[test]
fn every_request_is_wrapped_in_busy_and_idle() {
    watchdog(30, || {
        let mut k = start_kernel(KEY);
        run_async(async move {
            let mut c = Client::connect(&k.info).await;

            let id = c.send_shell("kernel_info_request", json!({})).await;
            let reply = c.recv_shell().await;
            assert_eq!(reply.msg_type(), "kernel_info_reply");
            assert_eq!(reply.content["language_info"]["name"], "lua");
            assert_eq!(reply.content["language_info"]["file_extension"], ".lua");
            assert_eq!(reply.content["protocol_version"], "5.5");
            let io = c.iopub_until_idle(&id).await;
            assert_eq!(
                types(&of(&io, &id).into_iter().cloned().collect::<Vec<_>>()),
                ["status:busy", "status:idle"]
            );

            let id = c.execute("print hello, world").await;
            let reply = c.recv_shell().await;
            assert_eq!(reply.parent_id(), id);
            assert_eq!(reply.content["status"], "ok");
            assert_eq!(reply.content["execution_count"], 1);
            let io = c.iopub_until_idle(&id).await;
            assert_eq!(
                types(&io),
                ["status:busy", "execute_input", "stream", "status:idle"]
            );
            assert!(io.iter().all(|m| m.parent_id() == id));
            assert_eq!(io[1].content["code"], "print hello, world");
            assert_eq!(
                io[2].content,
                json!({ "name": "stdout", "text": "hello, world\n" })
            );

            let id = c.execute("value 3").await;
            c.recv_shell().await;
            let io = c.iopub_until_idle(&id).await;
            assert_eq!(
                types(&io),
                [
                    "status:busy",
                    "execute_input",
                    "execute_result",
                    "status:idle"
                ]
            );
            assert_eq!(io[2].content["data"]["text/plain"], "3");
            assert_eq!(io[2].content["execution_count"], 2);

            // An error cell has exactly one output: the error.
            let id = c.execute("fail boom").await;
            let reply = c.recv_shell().await;
            assert_eq!(reply.content["status"], "error");
            assert_eq!(reply.content["ename"], "ValueError");
            let io = c.iopub_until_idle(&id).await;
            assert_eq!(
                types(&io),
                ["status:busy", "execute_input", "error", "status:idle"]
            );
            assert_eq!(io[2].content["evalue"], "boom");

            for (code, kind) in [("html hi", "display_data"), ("clear", "clear_output")] {
                let id = c.execute(code).await;
                c.recv_shell().await;
                let io = c.iopub_until_idle(&id).await;
                assert_eq!(types(&io)[2], kind, "{code}");
            }

            // Silent: no execute_input, no result, count unchanged.
            let id = c
                .send_shell(
                    "execute_request",
                    json!({ "code": "value 9", "silent": true }),
                )
                .await;
            let reply = c.recv_shell().await;
            assert_eq!(reply.content["execution_count"], 5);
            let io = c.iopub_until_idle(&id).await;
            assert_eq!(types(&io), ["status:busy", "status:idle"]);

            shutdown(&mut c, &mut k).await;
        });
    });
}

#[test]
fn a_bad_or_missing_signature_is_dropped_and_never_executed() {
    watchdog(30, || {
        let mut k = start_kernel(KEY);
        let log = k.log.clone();
        run_async(async move {
            let mut c = Client::connect(&k.info).await;
            // Signed with the wrong key.
            c.key = b"wrong-key".to_vec();
            let (_, forged) = c.frames("execute_request", json!({ "code": "print pwned" }), "5.3");
            c.key = KEY.as_bytes().to_vec();
            c.send_raw_shell(forged).await;
            // No signature at all.
            let (_, mut unsigned) = c.frames(
                "execute_request",
                json!({ "code": "print unsigned" }),
                "5.3",
            );
            unsigned[1] = Bytes::new();
            c.send_raw_shell(unsigned).await;
            // A tampered content frame under a valid signature.
            let (_, mut tampered) =
                c.frames("execute_request", json!({ "code": "print fine" }), "5.3");
            tampered[5] = Bytes::from(json!({ "code": "print tampered" }).to_string());
            c.send_raw_shell(tampered).await;

            let id = c.execute("print ok").await;
            let reply = c.recv_shell().await;
            assert_eq!(reply.parent_id(), id, "the forged requests got no reply");
            let io = c.iopub_until_idle(&id).await;
            assert!(io.iter().all(|m| !m.content.to_string().contains("pwned")));
            let executed = log.executed.lock().unwrap().clone();
            assert_eq!(executed, ["print ok"]);
            shutdown(&mut c, &mut k).await;
        });
    });
}

#[test]
fn output_of_a_background_task_carries_the_parent_of_the_cell_that_started_it() {
    watchdog(30, || {
        let mut k = start_kernel(KEY);
        run_async(async move {
            let mut c = Client::connect(&k.info).await;
            let first = c.execute("spawn late from cell 1").await;
            c.recv_shell().await;
            c.iopub_until_idle(&first).await;

            // Cell 2 releases cell 1's task and waits until it printed.
            let second = c.execute("release").await;
            c.recv_shell().await;
            let mut io = c.iopub_until_idle(&second).await;
            // Background text is batched: it may come up to a flush interval later.
            if !io.iter().any(|m| m.msg_type() == "stream") {
                io.push(c.recv_iopub().await);
            }
            let late: Vec<_> = io.iter().filter(|m| m.msg_type() == "stream").collect();
            assert_eq!(late.len(), 1, "{:?}", types(&io));
            assert_eq!(late[0].content["text"], "late from cell 1\n");
            assert_eq!(late[0].parent_id(), first, "routed to cell 1, not cell 2");

            // A detached task's output goes to the latest cell.
            let third = c.execute("detached service line").await;
            c.recv_shell().await;
            let io = c.iopub_until_idle(&third).await;
            let line = io.iter().find(|m| m.msg_type() == "stream").unwrap();
            assert_eq!(line.parent_id(), third);

            shutdown(&mut c, &mut k).await;
        });
    });
}

#[test]
fn interrupt_cancels_the_running_cell_and_the_next_cell_works() {
    watchdog(30, || {
        let mut k = start_kernel(KEY);
        run_async(async move {
            let mut c = Client::connect(&k.info).await;
            let id = c.execute("sleep").await;
            // Wait until the cell runs (its execute_input was published).
            loop {
                let m = c.recv_iopub().await;
                if m.msg_type() == "execute_input" && m.parent_id() == id {
                    break;
                }
            }
            let int = c.send_control("interrupt_request", json!({})).await;
            let reply = c.recv_control().await;
            assert_eq!(reply.msg_type(), "interrupt_reply");
            assert_eq!(reply.parent_id(), int);

            let reply = c.recv_shell().await;
            assert_eq!(reply.parent_id(), id);
            assert_eq!(reply.content["status"], "error");
            assert_eq!(reply.content["ename"], "KeyboardInterrupt");
            assert_eq!(
                k.log.interrupts.load(Ordering::SeqCst),
                1,
                "the cell saw its token fire"
            );

            let next = c.execute("value 4").await;
            let reply = c.recv_shell().await;
            assert_eq!(reply.parent_id(), next);
            assert_eq!(reply.content["status"], "ok");

            shutdown(&mut c, &mut k).await;
        });
    });
}

#[test]
fn malformed_unknown_and_wrong_version_messages_leave_the_kernel_serving() {
    watchdog(30, || {
        let mut k = start_kernel(KEY);
        run_async(async move {
            let mut c = Client::connect(&k.info).await;
            // No delimiter.
            c.send_raw_shell(vec![Bytes::from_static(b"garbage")]).await;
            // Bad JSON under a valid signature.
            let key = c.key.clone();
            let bad = b"{not json".as_slice();
            let sig = common::sign(&key, &[bad, b"{}", b"{}", b"{}"]);
            c.send_raw_shell(vec![
                Bytes::from_static(b"<IDS|MSG>"),
                Bytes::from(sig),
                Bytes::from_static(b"{not json"),
                Bytes::from_static(b"{}"),
                Bytes::from_static(b"{}"),
                Bytes::from_static(b"{}"),
            ])
            .await;

            let id = c.send_shell("frobnicate_request", json!({})).await;
            let reply = c.recv_shell().await;
            assert_eq!(reply.parent_id(), id);
            assert_eq!(reply.msg_type(), "frobnicate_reply");
            assert_eq!(reply.content["status"], "error");
            assert_eq!(reply.content["ename"], "UnknownMessageType");

            let (id, frames) = c.frames("execute_request", json!({ "code": "print old" }), "4.1");
            c.send_raw_shell(frames).await;
            let reply = c.recv_shell().await;
            assert_eq!(reply.parent_id(), id);
            assert_eq!(reply.content["ename"], "ProtocolVersionError");

            let id = c.execute("value alive").await;
            let reply = c.recv_shell().await;
            assert_eq!(reply.parent_id(), id);
            assert_eq!(reply.content["status"], "ok");
            assert_eq!(*k.log.executed.lock().unwrap(), ["value alive"]);

            // Heartbeat echoes.
            c.hb.send(ZmqMessage::from("ping")).await.unwrap();
            let echo = tokio::time::timeout(Duration::from_secs(10), c.hb.recv())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(echo.get(0).unwrap().as_ref(), b"ping");

            shutdown(&mut c, &mut k).await;
        });
    });
}

#[test]
fn stop_on_error_aborts_the_queued_executes_only() {
    watchdog(30, || {
        let mut k = start_kernel(KEY);
        run_async(async move {
            let mut c = Client::connect(&k.info).await;
            let failing = c.execute("slowfail first").await;
            let queued = c.execute("print never").await;
            let info = c.send_shell("kernel_info_request", json!({})).await;
            let reply = c.recv_shell().await;
            assert_eq!(
                (reply.parent_id(), &reply.content["status"]),
                (failing.as_str(), &json!("error"))
            );
            let reply = c.recv_shell().await;
            assert_eq!(
                (reply.parent_id(), &reply.content["status"]),
                (queued.as_str(), &json!("aborted"))
            );
            let reply = c.recv_shell().await;
            assert_eq!(reply.parent_id(), info, "non-execute requests still run");
            assert_eq!(*k.log.executed.lock().unwrap(), ["slowfail first"]);

            let next = c.execute("value after").await;
            let reply = c.recv_shell().await;
            assert_eq!(
                (reply.parent_id(), &reply.content["status"]),
                (next.as_str(), &json!("ok"))
            );
            shutdown(&mut c, &mut k).await;
        });
    });
}

#[test]
fn user_expressions_are_evaluated_after_a_cell_that_succeeds() {
    watchdog(30, || {
        let mut k = start_kernel(KEY);
        run_async(async move {
            let mut c = Client::connect(&k.info).await;
            let request = |code: &str| {
                json!({ "code": code, "silent": false, "store_history": true,
                        "user_expressions": { "good": "value 42", "bad": "nope", "odd": 7 },
                        "allow_stdin": false, "stop_on_error": true })
            };
            c.send_shell("execute_request", request("print hi")).await;
            let reply = c.recv_shell().await;
            let user = &reply.content["user_expressions"];
            assert_eq!(
                user["good"],
                json!({ "status": "ok", "data": { "text/plain": "42" }, "metadata": {} })
            );
            assert_eq!(user["bad"]["status"], "error");
            assert_eq!(user["bad"]["ename"], "NameError");
            assert_eq!(user["odd"]["ename"], "TypeError");
            // After a failing cell: not evaluated (as ipykernel).
            c.send_shell("execute_request", request("fail no")).await;
            let reply = c.recv_shell().await;
            assert_eq!(reply.content["status"], "error");
            assert_eq!(reply.content["user_expressions"], json!({}));
            shutdown(&mut c, &mut k).await;
        });
    });
}

#[test]
fn input_is_asked_over_stdin_with_the_cell_as_parent() {
    watchdog(30, || {
        let mut k = start_kernel(KEY);
        run_async(async move {
            let mut c = Client::connect(&k.info).await;
            let id = c.execute("input name?").await;
            let req = c.recv_stdin().await;
            assert_eq!(req.msg_type(), "input_request");
            assert_eq!(req.parent_id(), id);
            assert_eq!(req.content["prompt"], "name?");
            let (_, frames) = c.frames("input_reply", json!({ "value": "Ada" }), "5.3");
            c.stdin
                .send(ZmqMessage::try_from(frames).unwrap())
                .await
                .unwrap();
            let reply = c.recv_shell().await;
            assert_eq!(reply.content["status"], "ok");
            let io = c.iopub_until_idle(&id).await;
            let out = io.iter().find(|m| m.msg_type() == "stream").unwrap();
            assert_eq!(out.content["text"], "got Ada\n");
            shutdown(&mut c, &mut k).await;
        });
    });
}

#[test]
fn completion_inspection_completeness_history_and_comms() {
    watchdog(30, || {
        let mut k = start_kernel(KEY);
        run_async(async move {
            let mut c = Client::connect(&k.info).await;
            c.send_shell(
                "complete_request",
                json!({ "code": "x = pri", "cursor_pos": 7 }),
            )
            .await;
            let r = c.recv_shell().await;
            assert_eq!(r.content["matches"], json!(["print"]));
            assert_eq!(
                (
                    r.content["cursor_start"].as_u64(),
                    r.content["cursor_end"].as_u64()
                ),
                (Some(4), Some(7))
            );

            for (code, status) in [
                ("x = 1", "complete"),
                ("for i = 1, 3 do", "incomplete"),
                ("x = = 1", "invalid"),
            ] {
                c.send_shell("is_complete_request", json!({ "code": code }))
                    .await;
                assert_eq!(c.recv_shell().await.content["status"], status, "{code}");
            }

            c.send_shell(
                "inspect_request",
                json!({ "code": "print", "cursor_pos": 5, "detail_level": 0 }),
            )
            .await;
            let r = c.recv_shell().await;
            assert_eq!(r.content["found"], true);
            assert!(r.content["data"]["text/plain"]
                .as_str()
                .unwrap()
                .contains("stdout"));

            for code in ["value 1", "print two", "value 3"] {
                c.execute(code).await;
                c.recv_shell().await;
            }
            c.send_shell(
                "history_request",
                json!({ "hist_access_type": "tail", "n": 2, "output": false, "raw": true }),
            )
            .await;
            let r = c.recv_shell().await;
            assert_eq!(
                r.content["history"],
                json!([[1, 2, "print two"], [1, 3, "value 3"]])
            );
            c.send_shell("history_request", json!({ "hist_access_type": "search", "pattern": "value*", "output": true, "raw": true })).await;
            let r = c.recv_shell().await;
            assert_eq!(
                r.content["history"],
                json!([[1, 1, ["value 1", "1"]], [1, 3, ["value 3", "3"]]])
            );

            c.send_shell("comm_info_request", json!({})).await;
            assert_eq!(c.recv_shell().await.content["comms"], json!({}));
            shutdown(&mut c, &mut k).await;
        });
    });
}

#[test]
fn the_cell_runtime_is_not_a_kernel_io_thread() {
    watchdog(30, || {
        let mut k = start_kernel(KEY);
        let (tx, rx) = std::sync::mpsc::channel();
        k.runtime.spawn(async move {
            let _ = tx.send(std::thread::current().name().map(str::to_owned));
        });
        let name = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(name.as_deref(), Some("autoawait-kernel-cells"));
        run_async(async move {
            let mut c = Client::connect(&k.info).await;
            shutdown(&mut c, &mut k).await;
        });
    });
}

/// Regression: the queue was drained after the error reply went out, so a request the
/// client sent on seeing that reply could be aborted too.
#[test]
fn a_request_sent_after_the_error_reply_is_not_aborted() {
    watchdog(60, || {
        let mut k = start_kernel(KEY);
        run_async(async move {
            let mut c = Client::connect(&k.info).await;
            for _ in 0..30 {
                let failing = c.execute("fail again").await;
                let reply = c.recv_shell().await;
                assert_eq!(
                    (reply.parent_id(), &reply.content["status"]),
                    (failing.as_str(), &json!("error"))
                );
                let next = c.execute("value ok").await;
                let reply = c.recv_shell().await;
                assert_eq!(
                    (reply.parent_id(), &reply.content["status"]),
                    (next.as_str(), &json!("ok"))
                );
            }
            shutdown(&mut c, &mut k).await;
        });
    });
}

#[cfg(unix)]
#[test]
fn the_ipc_transport_of_the_connection_file_is_honoured() {
    watchdog(30, || {
        let dir = std::env::temp_dir().join(format!("autoawait-ipc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let info = autoawait_kernel::ConnectionInfo::from_json(
            &json!({ "transport": "ipc", "ip": dir.join("kernel").display().to_string(),
                     "key": KEY, "shell_port": 1, "iopub_port": 2, "stdin_port": 3,
                     "control_port": 4, "hb_port": 5 })
            .to_string(),
        )
        .unwrap();
        assert!(info.endpoint(1).starts_with("ipc://"));
        let kernel = autoawait_kernel::Kernel::start(info).unwrap();
        let info = kernel.connection_info().clone();
        assert!(
            dir.join("kernel-1").exists(),
            "the shell socket is a file in the given dir"
        );
        let log = std::sync::Arc::new(common::Log::default());
        let serve = std::thread::spawn(move || kernel.serve(common::Fake::new(log)).unwrap());
        run_async(async move {
            let mut c = Client::connect(&info).await;
            let id = c.execute("value via ipc").await;
            let reply = c.recv_shell().await;
            assert_eq!(
                (reply.parent_id(), &reply.content["status"]),
                (id.as_str(), &json!("ok"))
            );
            c.send_control("shutdown_request", json!({ "restart": false }))
                .await;
            c.recv_control().await;
        });
        serve.join().unwrap();
        let _ = std::fs::remove_dir_all(dir);
    });
}
