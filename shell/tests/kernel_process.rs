//! `autoawait kernel` as a process: it dies with its parent, and a connection file
//! without a key works but says loudly that messages are not signed.

mod kernel_support;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use autoawait_kernel::{Channel, Client};
use kernel_support::{block_on, connection, has_exited, spawn_kernel, BIN};
use serde_json::json;

fn wait_exit(pid: u32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if has_exited(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn the_kernel_exits_when_its_parent_is_killed() {
    let (info, file) = connection("k", "orphan");
    // The parent: a shell that starts the kernel and waits.
    let mut parent = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{BIN}' kernel -f '{}' 2>/dev/null & echo $!; wait",
            file.display()
        ))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(parent.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let kernel: u32 = line.trim().parse().expect("the kernel's pid");
    block_on(async {
        let mut c = Client::connect(&info).await.expect("the kernel serves");
        let id = c.execute("x = 1").await.unwrap();
        c.reply_to(&id).await.unwrap();
    });
    parent.kill().unwrap(); // SIGKILL: the kernel is re-parented
    parent.wait().unwrap();
    let gone = wait_exit(kernel, Duration::from_secs(8));
    if !gone {
        let _ = Command::new("kill")
            .args(["-9", &kernel.to_string()])
            .status();
    }
    let _ = std::fs::remove_file(&file);
    assert!(gone, "the kernel outlived its parent by 8 s");
}

#[test]
fn the_kernel_exits_when_jpy_parent_pid_exits() {
    let (info, file) = connection("k", "jpy");
    let mut watched = Command::new("sleep").arg("60").spawn().unwrap();
    let mut kernel = Command::new(BIN)
        .args(["kernel", "-f"])
        .arg(&file)
        .env("JPY_PARENT_PID", watched.id().to_string())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    block_on(async {
        Client::connect(&info).await.expect("the kernel serves");
    });
    watched.kill().unwrap();
    watched.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(8);
    let status = loop {
        if let Some(status) = kernel.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = kernel.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    let _ = kernel.stderr.take().unwrap().read_to_string(&mut stderr);
    let _ = std::fs::remove_file(&file);
    assert!(
        status.is_some(),
        "the kernel outlived JPY_PARENT_PID by 8 s"
    );
    assert!(stderr.contains("Parent appears to have exited"), "{stderr}");
}

#[test]
fn a_connection_file_without_a_key_works_and_warns_that_nothing_is_signed() {
    let (info, file) = connection("", "nokey");
    let mut kernel = spawn_kernel(&file);
    block_on(async {
        let mut c = Client::connect(&info).await.expect("the kernel serves");
        let id = c.execute("print('unsigned but served')").await.unwrap();
        assert_eq!(c.reply_to(&id).await.unwrap().content["status"], "ok");
        let out = c.iopub_until_idle(&id).await.unwrap();
        assert!(out
            .iter()
            .any(|m| m.content["text"] == "unsigned but served\n"));
        let id = c
            .request(
                Channel::Control,
                "shutdown_request",
                json!({ "restart": false }),
            )
            .await
            .unwrap();
        c.control_reply_to(&id).await.unwrap();
    });
    let status = kernel.wait().unwrap();
    let mut stderr = String::new();
    kernel
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let _ = std::fs::remove_file(&file);
    assert!(status.success());
    assert!(stderr.contains("messages are NOT signed"), "{stderr}");
}
