//! A soak run: 20,000 cells through `autoawait kernel` (prints, spawned tasks,
//! errors, interrupts, runner switches, subshells). After warm-up, its RSS grows
//! by at most 10 MB and its thread count comes back to its baseline.

mod kernel_support;

use std::time::{Duration, Instant};

use autoawait_kernel::{Channel, Client, KernelError};
use kernel_support::{block_on, connection, spawn_kernel, status_field};
use serde_json::json;

const CELLS: usize = 20_000;
const RUNNERS: &[&str] = &["smol", "tokio-host", "inline", "tokio"];

/// Runs cell `code` to its idle; the reply's status.
async fn run(c: &mut Client, code: &str) -> Result<String, KernelError> {
    let id = c.execute(code).await?;
    let reply = c.reply_to(&id).await?;
    c.iopub_until_idle(&id).await?;
    Ok(reply.content["status"].as_str().unwrap_or("").to_owned())
}

/// Cell `i` of the mix.
async fn cell(c: &mut Client, i: usize) -> Result<(), KernelError> {
    match i % 100 {
        0 => {
            // An interrupt of an awaiting cell.
            let id = c.execute("await(sleep(10))").await?;
            loop {
                let m = c.iopub().await?;
                if m.msg_type() == "execute_input" && m.parent_id() == id {
                    break;
                }
            }
            let ctl = c
                .request(Channel::Control, "interrupt_request", json!({}))
                .await?;
            c.control_reply_to(&ctl).await?;
            let reply = c.reply_to(&id).await?;
            assert_eq!(reply.content["ename"], "KeyboardInterrupt");
            c.iopub_until_idle(&id).await?;
        }
        50 => {
            let runner = RUNNERS[(i / 100) % RUNNERS.len()];
            assert_eq!(run(c, &format!("%autoawait {runner}")).await?, "ok");
        }
        75 => {
            // A subshell made and deleted.
            let ctl = c
                .request(Channel::Control, "create_subshell_request", json!({}))
                .await?;
            let created = c.control_reply_to(&ctl).await?;
            let sid = created.content["subshell_id"].as_str().unwrap().to_owned();
            let ctl = c
                .request(
                    Channel::Control,
                    "delete_subshell_request",
                    json!({ "subshell_id": sid }),
                )
                .await?;
            c.control_reply_to(&ctl).await?;
        }
        n if n % 10 == 3 => assert_eq!(run(c, "error('soak')").await?, "error"),
        n if n % 10 == 5 => {
            let status = run(c, "spawn(function() print('task') end)").await?;
            assert_eq!(status, "ok");
        }
        n if n % 10 == 7 => {
            assert_eq!(
                run(
                    c,
                    "io.write('fd\\n'); t = {} for k = 1, 20 do t[k] = k end; return #t"
                )
                .await?,
                "ok"
            )
        }
        _ => assert_eq!(run(c, &format!("print('line {i}'); x = {i}")).await?, "ok"),
    }
    Ok(())
}

fn threads_settle(pid: u32, baseline: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = status_field(pid, "Threads").unwrap();
        if now <= baseline || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn twenty_thousand_cells_leave_memory_and_threads_where_they_were() {
    let (info, file) = connection("soak", "soak");
    let mut kernel = spawn_kernel(&file);
    let pid = kernel.id();
    let outcome = std::thread::spawn(move || {
        block_on(async {
            let mut c = Client::connect(&info).await?;
            // Warm-up: every kind of cell, every runner the run switches to.
            for i in 0..1_000 {
                cell(&mut c, i).await?;
            }
            assert_eq!(run(&mut c, "%autoawait tokio").await?, "ok");
            tokio::time::sleep(Duration::from_millis(300)).await;
            let rss = status_field(pid, "VmRSS").unwrap();
            let threads = threads_settle(pid, u64::MAX);
            let started = Instant::now();
            for i in 0..CELLS {
                cell(&mut c, i).await?;
            }
            assert_eq!(run(&mut c, "%autoawait tokio").await?, "ok");
            let elapsed = started.elapsed();
            tokio::time::sleep(Duration::from_millis(300)).await;
            let rss_after = status_field(pid, "VmRSS").unwrap();
            let threads_after = threads_settle(pid, threads);
            let id = c
                .request(Channel::Control, "shutdown_request", json!({}))
                .await?;
            c.control_reply_to(&id).await?;
            Ok::<_, KernelError>((rss, rss_after, threads, threads_after, elapsed))
        })
    })
    .join();
    let status = kernel.wait();
    let _ = std::fs::remove_file(&file);
    let (rss, rss_after, threads, threads_after, elapsed) = outcome
        .expect("the soak client does not panic")
        .expect("the kernel answers every cell");
    eprintln!(
        "soak: {CELLS} cells in {elapsed:?}; RSS {rss} kB -> {rss_after} kB; threads {threads} -> {threads_after}"
    );
    assert!(status.unwrap().success(), "the kernel exits cleanly");
    assert!(
        rss_after <= rss + 10 * 1024,
        "RSS grew by {} kB over {CELLS} cells",
        rss_after - rss
    );
    assert_eq!(
        threads_after, threads,
        "the thread count returns to its baseline"
    );
}
