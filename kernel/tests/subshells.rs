//! Protocol 5.5: kernel_info, subshells (JEP 91), iopub_welcome (XPUB), and the
//! threads that no cell can starve (heartbeat, control).

mod common;

use std::time::{Duration, Instant};

use common::{run_async, start_kernel, watchdog, Client, KEY};
use serde_json::json;
use zeromq::{ReqSocket, Socket, SocketRecv, SocketSend, SubSocket, ZmqMessage};

#[test]
fn kernel_info_says_5_5_with_subshells_on_shell_and_control() {
    watchdog(30, || {
        let k = start_kernel(KEY);
        run_async(async move {
            let mut c = Client::connect(&k.info).await;
            let id = c.send_shell("kernel_info_request", json!({})).await;
            let shell = c.reply_to(&id).await;
            let id = c.send_control("kernel_info_request", json!({})).await;
            let control = c.control_reply_to(&id).await;
            for reply in [shell, control] {
                assert_eq!(reply.content["protocol_version"], "5.5");
                assert_eq!(
                    reply.content["supported_features"],
                    json!(["kernel subshells"])
                );
            }
        });
    });
}

async fn create_subshell(c: &mut Client) -> String {
    let id = c.send_control("create_subshell_request", json!({})).await;
    let reply = c.control_reply_to(&id).await;
    assert_eq!(reply.msg_type(), "create_subshell_reply");
    assert_eq!(reply.content["status"], "ok", "{:?}", reply.content);
    reply.content["subshell_id"].as_str().unwrap().to_owned()
}

#[test]
fn a_subshell_cell_finishes_while_the_main_cell_runs_and_an_interrupt_reaches_both() {
    watchdog(60, || {
        let k = start_kernel(KEY);
        run_async(async move {
            let mut c = Client::connect(&k.info).await;
            let sub = create_subshell(&mut c).await;
            let id = c.send_control("list_subshell_request", json!({})).await;
            let listed = c.control_reply_to(&id).await;
            assert_eq!(listed.content["subshell_id"], json!([sub.clone()]));

            let main = c.execute("sleep").await;
            let quick = c.execute_in(&sub, "value 7").await;
            let reply = c.recv_shell().await;
            assert_eq!(reply.parent_id(), quick, "the subshell answers first");
            assert_eq!(reply.content["status"], "ok");

            // Both shells busy; one interrupt stops both.
            let second = c.execute_in(&sub, "sleep").await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            let started = Instant::now();
            let id = c.send_control("interrupt_request", json!({})).await;
            c.control_reply_to(&id).await;
            let mut interrupted = Vec::new();
            for _ in 0..2 {
                let r = c.recv_shell().await;
                assert_eq!(r.content["ename"], "KeyboardInterrupt", "{:?}", r.content);
                interrupted.push(r.parent_id().to_owned());
            }
            interrupted.sort();
            let mut expected = vec![main.clone(), second.clone()];
            expected.sort();
            assert_eq!(interrupted, expected);
            assert!(started.elapsed() < Duration::from_secs(2));
            assert_eq!(
                k.log.interrupts.load(std::sync::atomic::Ordering::SeqCst),
                2
            );

            // Deleted: requests for it get an error between busy and idle.
            let id = c
                .send_control("delete_subshell_request", json!({ "subshell_id": sub }))
                .await;
            assert_eq!(c.control_reply_to(&id).await.content["status"], "ok");
            let gone = c.execute_in(&sub, "value 1").await;
            let reply = c.reply_to(&gone).await;
            assert_eq!(reply.content["status"], "error");
            assert_eq!(reply.content["ename"], "SubshellNotFound");
            let io = c.iopub_until_idle(&gone).await;
            assert!(io
                .iter()
                .any(|m| m.parent_id() == gone && m.state() == "busy"));
            let id = c
                .send_control("delete_subshell_request", json!({ "subshell_id": 3 }))
                .await;
            assert_eq!(c.control_reply_to(&id).await.content["status"], "error");
        });
    });
}

#[test]
fn heartbeat_and_control_answer_while_a_cell_spins() {
    watchdog(30, || {
        let k = start_kernel(KEY);
        run_async(async move {
            let mut c = Client::connect(&k.info).await;
            let spin = c.execute("spin").await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            let mut hb = ReqSocket::new();
            hb.connect(&k.info.endpoint(k.info.hb_port)).await.unwrap();
            for _ in 0..3 {
                hb.send(ZmqMessage::from("ping")).await.unwrap();
                let echo = tokio::time::timeout(Duration::from_secs(2), hb.recv())
                    .await
                    .expect("heartbeat answers within 2 s while a cell spins")
                    .unwrap();
                assert_eq!(echo.get(0).unwrap().as_ref(), b"ping");
            }
            let id = c.send_control("kernel_info_request", json!({})).await;
            c.control_reply_to(&id).await;
            let id = c.send_control("interrupt_request", json!({})).await;
            c.control_reply_to(&id).await;
            let reply = c.reply_to(&spin).await;
            assert_eq!(reply.content["ename"], "KeyboardInterrupt");
        });
    });
}

#[test]
fn a_new_iopub_subscriber_is_welcomed() {
    watchdog(30, || {
        let k = start_kernel(KEY);
        run_async(async move {
            let mut sub = SubSocket::new();
            sub.connect(&k.info.endpoint(k.info.iopub_port))
                .await
                .unwrap();
            sub.subscribe("").await.unwrap();
            let m = tokio::time::timeout(Duration::from_secs(5), sub.recv())
                .await
                .expect("iopub_welcome within 5 s")
                .unwrap();
            let frames = m.into_vec();
            let d = frames
                .iter()
                .position(|f| f.as_ref() == b"<IDS|MSG>")
                .unwrap();
            let header: serde_json::Value = serde_json::from_slice(&frames[d + 2]).unwrap();
            let content: serde_json::Value = serde_json::from_slice(&frames[d + 5]).unwrap();
            assert_eq!(header["msg_type"], "iopub_welcome");
            assert_eq!(content["subscription"], "");
        });
    });
}
