//! A runaway cell is summarised, not silently dropped (own process: the limit is
//! read from the environment when the kernel starts).

mod common;

use common::{run_async, start_kernel, watchdog, Client, KEY};

#[test]
fn output_beyond_the_rate_is_summarised_with_a_notice_and_its_last_lines() {
    // This test binary has no other test: nothing else reads the environment.
    std::env::set_var("AUTOAWAIT_IOPUB_RATE_LIMIT", "2000");
    watchdog(60, || {
        let k = start_kernel(KEY);
        run_async(async move {
            let mut c = Client::connect(&k.info).await;
            let id = c.execute("printmany 20000").await;
            c.reply_to(&id).await;
            let io = c.iopub_until_idle(&id).await;
            let text: String = io
                .iter()
                .filter(|m| m.msg_type() == "stream")
                .map(|m| m.content["text"].as_str().unwrap().to_owned())
                .collect();
            assert!(text.starts_with("1\n2\n3\n"), "the start is shown");
            assert!(
                text.len() < 20_000,
                "the rate caps what is sent: {}",
                text.len()
            );
            let notice = text
                .split("[autoawait: ")
                .nth(1)
                .expect("a notice says what was held back");
            assert!(notice.contains("not shown"), "{notice}");
            assert!(notice.contains("AUTOAWAIT_IOPUB_RATE_LIMIT"), "{notice}");
            assert!(
                notice.ends_with("19999\n20000\n"),
                "the last lines are shown: {notice}"
            );
        });
    });
}
