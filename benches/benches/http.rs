//! One `http.get` round trip to a local server (keep-alive, a small JSON body) per
//! runner, through the shell's cell — beside the same request made with hyper
//! directly on the `tokio` runner's runtime. `http/tokio::shell_get` over
//! `http/tokio::direct_hyper` is what the shell adds on top of the client: the
//! Lua cell, the awaitable, the connection pool, the body as a Lua string.

mod common;

use std::sync::Arc;

use autoawait_core::{CellId, Registry, RunnerExt};
use autoawait_shell::{Engine, Output, Sink};
use autoawait_test_support::http::HttpServer;
use criterion::{criterion_group, criterion_main, Criterion};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;

/// Drops every output.
struct Discard;

impl Sink for Discard {
    fn emit(&self, _cell: CellId, _output: Output) {}
}

const CELL: &str = "local r = await(http.get(url)) return #await(r:text())";

fn shell_gets(c: &mut Criterion, server: &HttpServer) {
    let mut group = c.benchmark_group("http");
    let plugin = common::twisted_plugin();
    for runner in ["tokio", "smol", "twisted"] {
        let mut engine = Engine::new(Arc::new(Discard)).expect("the engine starts");
        if runner == "twisted" {
            let Some(path) = &plugin else {
                eprintln!("twisted::shell_get: skipped: the twisted plugin did not build");
                continue;
            };
            assert!(engine
                .run_cell(&format!("%load_ext {}", path.display()))
                .is_ok());
        }
        assert!(engine.run_cell(&format!("%autoawait {runner}")).is_ok());
        assert!(engine
            .run_cell(&format!("url = {:?}", server.url("/json")))
            .is_ok());
        let first = engine.run_cell(CELL);
        assert!(first.is_ok(), "{runner}: {:?}", first.error);
        group.bench_function(format!("{runner}::shell_get"), |b| {
            b.iter(|| engine.run_cell(CELL))
        });
    }
    group.finish();
}

/// The same GET with hyper on the `tokio` runner's own runtime, over a kept-alive
/// connection whose I/O is a task of that runtime.
fn direct_hyper(c: &mut Criterion, server: &HttpServer) {
    let runner = Registry::new().get("tokio").expect("tokio is built in");
    let addr = server.addr();
    let host = addr.to_string();
    let mut sender = runner
        .block_on(async move {
            let stream = tokio::net::TcpStream::connect(addr)
                .await
                .expect("connects");
            let io = hyper_util::rt::TokioIo::new(stream);
            let (sender, conn) = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(io)
                .await
                .expect("handshake");
            tokio::task::spawn_local(conn);
            sender
        })
        .expect("the runner runs");
    let mut group = c.benchmark_group("http");
    group.bench_function("tokio::direct_hyper", |b| {
        b.iter(|| {
            let req = hyper::Request::get("/json")
                .header("host", &host)
                .body(Empty::<Bytes>::new())
                .expect("a request");
            let send = sender.send_request(req);
            runner
                .block_on(async move {
                    let body = send.await.expect("a response").into_body();
                    body.collect().await.expect("a body").to_bytes().len()
                })
                .expect("the runner runs")
        })
    });
    group.finish();
    runner.shutdown(std::time::Duration::from_secs(1));
}

fn http(c: &mut Criterion) {
    let server = HttpServer::start();
    direct_hyper(c, &server);
    shell_gets(c, &server);
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = http
}
criterion_main!(benches);
