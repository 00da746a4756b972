//! SIGINT interrupts the running cell (and does not end the kernel) once the kernel
//! binary asked for it. Its own test binary: the signal goes to the whole process.
#![cfg(unix)]

mod common;

use std::process::Command;

use common::{run_async, watchdog, Client, Fake, Log, KEY};
use serde_json::json;

#[test]
fn sigint_interrupts_the_running_cell_and_the_kernel_lives_on() {
    watchdog(30, || {
        let info = autoawait_kernel::ConnectionInfo::from_json(
            &json!({ "ip": "127.0.0.1", "key": KEY, "shell_port": 0, "iopub_port": 0,
                     "stdin_port": 0, "control_port": 0, "hb_port": 0 })
            .to_string(),
        )
        .unwrap();
        let kernel = autoawait_kernel::Kernel::start(info).unwrap();
        kernel.interrupt_on_sigint();
        let info = kernel.connection_info().clone();
        let log = std::sync::Arc::new(Log::default());
        let session = Fake::new(log.clone());
        let serve = std::thread::spawn(move || kernel.serve(session).unwrap());
        run_async(async move {
            let mut c = Client::connect(&info).await;
            let id = c.execute("sleep").await;
            loop {
                let m = c.recv_iopub().await;
                if m.msg_type() == "execute_input" && m.parent_id() == id {
                    break;
                }
            }
            let status = Command::new("kill")
                .args(["-INT", &std::process::id().to_string()])
                .status()
                .expect("kill(1) runs");
            assert!(status.success());
            let reply = c.recv_shell().await;
            assert_eq!(reply.parent_id(), id);
            assert_eq!(reply.content["ename"], "KeyboardInterrupt");

            let next = c.execute("value 1").await;
            let reply = c.recv_shell().await;
            assert_eq!(
                (reply.parent_id(), &reply.content["status"]),
                (next.as_str(), &json!("ok"))
            );
            c.send_control("shutdown_request", json!({ "restart": false }))
                .await;
            c.recv_control().await;
        });
        serve.join().unwrap();
    });
}
