//! Stream output: batched per cell and stream, in order, nothing lost.

mod common;

use common::{run_async, start_kernel, watchdog, Client, KEY};

#[test]
fn ten_thousand_printed_lines_arrive_in_order_in_a_handful_of_messages() {
    watchdog(60, || {
        let k = start_kernel(KEY);
        run_async(async move {
            let mut c = Client::connect(&k.info).await;
            let id = c.execute("printmany 10000").await;
            c.reply_to(&id).await;
            let io = c.iopub_until_idle(&id).await;
            let streams: Vec<_> = io.iter().filter(|m| m.msg_type() == "stream").collect();
            assert!(
                (1..=5).contains(&streams.len()),
                "one message per flush, not one per line: {} messages",
                streams.len()
            );
            let text: String = streams
                .iter()
                .map(|m| m.content["text"].as_str().unwrap())
                .collect();
            let expected: String = (1..=10_000).map(|i| format!("{i}\n")).collect();
            assert_eq!(text, expected, "every line, in order");
        });
    });
}

#[test]
fn stream_text_goes_out_before_other_output_of_its_cell_in_the_order_written() {
    watchdog(30, || {
        let k = start_kernel(KEY);
        run_async(async move {
            let mut c = Client::connect(&k.info).await;
            let id = c.execute("mixed").await;
            c.reply_to(&id).await;
            let io = c.iopub_until_idle(&id).await;
            let shown: Vec<String> = io
                .iter()
                .filter(|m| m.parent_id() == id)
                .filter_map(|m| match m.msg_type() {
                    "stream" => Some(format!(
                        "{}:{}",
                        m.content["name"].as_str().unwrap(),
                        m.content["text"].as_str().unwrap()
                    )),
                    "display_data" => Some("display".into()),
                    _ => None,
                })
                .collect();
            assert_eq!(
                shown,
                [
                    "stdout:before\n",
                    "display",
                    "stderr:warn\n",
                    "stdout:after\n"
                ]
            );
            let last = io.last().unwrap();
            assert_eq!((last.msg_type(), last.state()), ("status", "idle"));
        });
    });
}
