//! Fuzzed requests: correctly signed messages with arbitrary JSON, missing and
//! wrongly typed fields, on shell, control and stdin. After each one the kernel
//! still answers `kernel_info` on shell and control. Unsigned and badly signed
//! messages on control and stdin are dropped, as on shell.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{run_async, start_kernel, watchdog, Client, KEY};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Map, Value};

/// How many fuzzed messages one run sends.
const CASES: u32 = 400;

/// Request types per channel; never `shutdown_request` (it is obeyed).
const SHELL_TYPES: &[&str] = &[
    "execute_request",
    "kernel_info_request",
    "is_complete_request",
    "complete_request",
    "inspect_request",
    "history_request",
    "comm_info_request",
    "comm_open",
    "comm_msg",
    "debug_request",
];
const CONTROL_TYPES: &[&str] = &[
    "interrupt_request",
    "kernel_info_request",
    "create_subshell_request",
    "delete_subshell_request",
    "list_subshell_request",
    "debug_request",
    "usage_request",
];
const STDIN_TYPES: &[&str] = &["input_reply", "input_request", "execute_request"];
const FIELDS: &[&str] = &[
    "code",
    "silent",
    "store_history",
    "user_expressions",
    "allow_stdin",
    "stop_on_error",
    "cursor_pos",
    "detail_level",
    "hist_access_type",
    "n",
    "start",
    "stop",
    "pattern",
    "unique",
    "output",
    "value",
    "restart",
    "subshell_id",
    "target_name",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e9f64..1e9).prop_map(Value::from),
        // Short text that names no fake-session command that blocks.
        "[a-z0-9 ?.*\\\\\"é]{0,12}".prop_map(|s| Value::from(format!("~{s}"))),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(FIELDS), inner), 0..5).prop_map(|pairs| {
                Value::Object(
                    pairs
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

/// A message: channel (0 shell, 1 control, 2 stdin), type, content, header changes.
fn message() -> impl Strategy<Value = (usize, String, Value, Value)> {
    (0usize..3)
        .prop_flat_map(|channel| {
            let types = [SHELL_TYPES, CONTROL_TYPES, STDIN_TYPES][channel];
            let msg_type = prop_oneof![
                4 => prop::sample::select(types).prop_map(str::to_owned),
                1 => "[a-z_]{0,16}",
            ];
            let header = prop_oneof![
                3 => Just(json!({})),
                1 => json_value().prop_map(|v| json!({ "version": v })),
                1 => json_value().prop_map(|v| json!({ "subshell_id": v })),
                1 => Just(json!({ "version": "4.1" })),
            ];
            (Just(channel), msg_type, json_value(), header)
        })
        .boxed()
}

#[test]
fn signed_messages_of_any_shape_are_answered_or_logged_and_the_kernel_serves_on() {
    watchdog(240, || {
        let k = start_kernel(KEY);
        run_async(async move {
            let mut c = Client::connect(&k.info).await;
            let mut runner = TestRunner::new(Config {
                cases: CASES,
                failure_persistence: None,
                ..Config::default()
            });
            let strategy = message();
            for _ in 0..CASES {
                let tree = strategy.new_tree(&mut runner).unwrap();
                let (channel, msg_type, content, extra) = tree.current();
                let mut header = json!({
                    "msg_id": "fuzz", "session": "fuzz", "username": "fuzz",
                    "date": "2026-11-22T04:00:00.000000Z", "msg_type": msg_type,
                    "version": "5.5",
                });
                for (key, v) in extra.as_object().into_iter().flatten() {
                    header[key] = v.clone();
                }
                let frames = c.signed(&header, &json!({}), &content);
                match channel {
                    0 => c.send_raw_shell(frames).await,
                    1 => c.send_raw_control(frames).await,
                    _ => c.send_raw_stdin(frames).await,
                }
                // Still serving on both channels.
                let id = c.send_control("kernel_info_request", json!({})).await;
                let reply = c.control_reply_to(&id).await;
                assert_eq!(reply.content["status"], "ok", "after {header} {content}");
                let id = c.send_shell("kernel_info_request", json!({})).await;
                let reply = c.reply_to(&id).await;
                assert_eq!(reply.content["status"], "ok", "after {header} {content}");
                c.drain_iopub().await;
            }
            // Subshells the fuzzer made go with the kernel; it still runs cells.
            let id = c.execute("print still here").await;
            assert_eq!(c.reply_to(&id).await.content["status"], "ok");
            assert!(!k.log.shutdown.load(Ordering::SeqCst));
        });
    });
}

#[test]
fn a_panicking_session_answers_with_an_error_and_serves_on() {
    watchdog(30, || {
        let k = start_kernel(KEY);
        run_async(async move {
            let mut c = Client::connect(&k.info).await;
            let id = c.execute("panic").await;
            let reply = c.reply_to(&id).await;
            assert_eq!(reply.content["ename"], "KernelPanic");
            let id = c.execute("value 5").await;
            assert_eq!(c.reply_to(&id).await.content["status"], "ok");
        });
    });
}

#[test]
fn unsigned_or_badly_signed_control_and_stdin_messages_are_dropped() {
    watchdog(30, || {
        let k = start_kernel(KEY);
        run_async(async move {
            let mut c = Client::connect(&k.info).await;
            let header = json!({
                "msg_id": "forged", "session": "mallory", "username": "mallory",
                "date": "2026-11-22T04:00:00.000000Z", "msg_type": "shutdown_request",
                "version": "5.5",
            });
            let mut unsigned = c.signed(&header, &json!({}), &json!({ "restart": false }));
            unsigned[1] = bytes::Bytes::new();
            c.send_raw_control(unsigned).await;
            let mut forged = c.signed(&header, &json!({}), &json!({ "restart": false }));
            forged[1] = bytes::Bytes::from("0".repeat(64));
            c.send_raw_control(forged).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            assert!(!k.log.shutdown.load(Ordering::SeqCst), "not obeyed");

            // A forged answer to input() is not taken; the genuine one is.
            let id = c.execute("input name?").await;
            let request = c.recv_stdin().await;
            assert_eq!(request.msg_type(), "input_request");
            let reply_header = json!({
                "msg_id": "forged-input", "session": "mallory", "username": "mallory",
                "date": "2026-11-22T04:00:00.000000Z", "msg_type": "input_reply",
                "version": "5.5",
            });
            let mut forged = c.signed(&reply_header, &json!({}), &json!({ "value": "evil" }));
            forged[1] = bytes::Bytes::from("ab".repeat(32));
            c.send_raw_stdin(forged).await;
            let (_, genuine) = c.frames("input_reply", json!({ "value": "Ada" }), "5.5");
            c.send_raw_stdin(genuine).await;
            c.reply_to(&id).await;
            let io = c.iopub_until_idle(&id).await;
            let text: String = io
                .iter()
                .filter(|m| m.msg_type() == "stream")
                .map(|m| m.content["text"].as_str().unwrap().to_owned())
                .collect();
            assert_eq!(text, "got Ada\n");
        });
    });
}
