//! `http` in cells against a real local server (127.0.0.1), on the runner's own
//! sockets: under tokio, smol and the twisted plugin, https with a test CA.

mod common;

use std::time::{Duration, Instant};

use autoawait_test_support::http::HttpServer;
use common::{watchdog, Shell};

/// A shell on `runner` whose global `base` is `server`'s URL.
fn shell_on(runner: &str, server: &HttpServer) -> Shell {
    let mut sh = Shell::new(runner);
    sh.ok(&format!("base = {:?}", server.url("")));
    sh
}

/// Each runner the requests go through, built-in ones and the loaded plugin's,
/// with `base` set to `server`'s URL.
fn shells(server: &HttpServer) -> Vec<Shell> {
    let plugin =
        common::twisted_dir().join(autoawait_test_support::dylib_name("autoawait_twisted"));
    let mut shells = Vec::new();
    for runner in ["tokio", "smol", "twisted"] {
        let mut sh = Shell::new("inline");
        if runner == "twisted" {
            sh.ok(&format!("%load_ext {}", plugin.display()));
        }
        sh.ok(&format!("%autoawait {runner}"));
        sh.ok(&format!("base = {:?}", server.url("")));
        shells.push(sh);
    }
    shells
}

#[test]
fn get_post_json_and_headers_on_every_runner() {
    watchdog(60, || {
        let server = HttpServer::start();
        for mut sh in shells(&server) {
            assert_eq!(
                sh.stdout(
                    "r = await(http.get(base .. '/json'))\n\
                     t = await(r:json())\n\
                     print(r.status, r.ok, r.headers['content-type'], t.hello, #t.n, r.url == base .. '/json')"
                ),
                "200\ttrue\tapplication/json\tworld\t3\ttrue\n"
            );
            // JSON out and in, with a header of our own.
            assert_eq!(
                sh.stdout(
                    "r = await(http.post(base .. '/echo', nil, {json = {a = 1}, headers = {['x-test'] = 'yes'}}))\n\
                     e = await(r:json())\n\
                     print(e.method, e.body, e.content_type, e.x_test)"
                ),
                "POST\t{\"a\":1}\tapplication/json\tyes\n"
            );
            assert_eq!(
                sh.stdout(
                    "r = await(http.request{method = 'put', url = base .. '/echo', body = 'raw'})\n\
                     print(await(r:json()).method, await(http.post(base .. '/echo', 'b')).status)"
                ),
                "PUT\t200\n"
            );
            assert_eq!(
                sh.stdout("print(await(http.get(base .. '/status/404')).status)"),
                "404\n"
            );
        }
    });
}

#[test]
fn redirects_are_followed_up_to_a_limit() {
    watchdog(60, || {
        let server = HttpServer::start();
        let mut sh = shell_on("tokio", &server);
        assert_eq!(
            sh.stdout("r = await(http.get(base .. '/redirect/3')) print(r.status, r.url == base .. '/json')"),
            "200\ttrue\n"
        );
        assert_eq!(
            sh.stdout("r = await(http.get(base .. '/redirect/3', {redirects = 0})) print(r.status, r.headers.location)"),
            "302\t/redirect/2\n"
        );
        let err = sh.err("await(http.get(base .. '/loop'))");
        assert!(
            err.message.contains("more than 10 redirects"),
            "{}",
            err.message
        );
    });
}

#[test]
fn a_streamed_body_arrives_line_by_line_as_it_is_sent() {
    watchdog(60, || {
        let server = HttpServer::start();
        for mut sh in shells(&server) {
            assert_eq!(
                sh.stdout(
                    "for line in await(http.get(base .. '/stream')):lines() do print(line) end"
                ),
                "line 1\nline 2\nline 3\nline 4\nline 5\n"
            );
            assert_eq!(
                sh.stdout(
                    "n, all = 0, '' for c in await(http.get(base .. '/stream')):chunks() do n = n + 1 all = all .. c end\n\
                     print(n >= 2, #all)"
                ),
                "true\t35\n"
            );
        }
    });
}

#[test]
fn failures_are_catchable_errors_that_say_what_and_where() {
    watchdog(60, || {
        let server = HttpServer::start();
        let mut sh = shell_on("tokio", &server);
        assert_eq!(
            sh.stdout("print(pcall(await, http.get('http://127.0.0.1:1/')))"),
            "false\tcannot connect to 127.0.0.1:1: connection refused\n"
        );
        let bad = sh.stdout("print(pcall(http.get, 'ftp://example.com/'))");
        assert!(
            bad.starts_with("false\tbad URL `ftp://example.com/`"),
            "{bad}"
        );
        assert!(bad.contains("only http:// and https://"), "{bad}");
        let started = Instant::now();
        let slow = sh.stdout("print(pcall(await, http.get(base .. '/slow', {timeout = 0.3})))");
        assert!(
            slow.starts_with("false\tGET ") && slow.contains("timed out"),
            "{slow}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        // The shell goes on, and so does the client.
        assert_eq!(
            sh.stdout("print(await(http.get(base .. '/json')).status)"),
            "200\n"
        );
    });
}

#[test]
fn connections_are_kept_alive_per_runner_and_host() {
    watchdog(60, || {
        let server = HttpServer::start();
        let mut sh = shell_on("tokio", &server);
        for _ in 0..3 {
            sh.ok("r = await(http.get(base .. '/json')) await(r:text())");
        }
        assert_eq!(server.connections(), 1, "three requests, one connection");
        // A fresh runner's sockets die with its cell: no connection is kept.
        sh.ok("%autoawait tokio-fresh");
        for _ in 0..2 {
            sh.ok("r = await(http.get(base .. '/json')) await(r:text())");
        }
        assert_eq!(server.connections(), 3);
    });
}

#[test]
fn https_with_a_trusted_test_ca_and_a_clear_error_without() {
    watchdog(60, || {
        let server = HttpServer::start_tls();
        let ca = server.ca().unwrap().display().to_string();
        for mut sh in shells(&server) {
            sh.ok(&format!("url, ca = {:?}, {ca:?}", server.url("/json")));
            assert_eq!(
                sh.stdout("print(await(await(http.get(url, {ca = ca})):json()).hello)"),
                "world\n"
            );
            let err = sh.stdout("print(pcall(await, http.get(url)))");
            assert!(err.starts_with("false\tTLS with localhost:"), "{err}");
            assert!(err.contains("certificate"), "{err}");
        }
    });
}
