//! The reactor itself (each test runs a private reactor on its own thread). The
//! runners and functions are tested through the plugin ABI in core/tests/plugin.rs.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use autoawait_twisted::reactor::{self, Deferred, Phase, Reactor, TcpListener, TcpStream};

/// A private reactor running on a thread named `twisted-test`.
fn running() -> &'static Reactor {
    let reactor = Reactor::leaked().unwrap();
    thread::Builder::new()
        .name("twisted-test".into())
        .spawn(move || reactor.run(true).unwrap())
        .unwrap();
    reactor
}

fn recv<T>(rx: &mpsc::Receiver<T>) -> T {
    rx.recv_timeout(Duration::from_secs(20))
        .expect("nothing within 20 s (deadlock?)")
}

#[test]
fn timers_fire_in_deadline_order_on_the_reactor_thread() {
    let reactor = running();
    let (tx, rx) = mpsc::channel();
    for (delay, label) in [(30, "c"), (10, "a"), (20, "b"), (20, "b2")] {
        let tx = tx.clone();
        reactor.call_later(Duration::from_millis(delay), move || {
            let on = thread::current().name().map(str::to_owned);
            tx.send((label, on)).unwrap();
        });
    }
    let order: Vec<_> = (0..4).map(|_| recv(&rx)).collect();
    let labels: Vec<&str> = order.iter().map(|(l, _)| *l).collect();
    assert_eq!(
        labels,
        ["a", "b", "b2", "c"],
        "deadline order, ties in call order"
    );
    assert!(order
        .iter()
        .all(|(_, on)| on.as_deref() == Some("twisted-test")));
    reactor.stop();
}

#[test]
fn a_call_from_another_thread_wakes_an_idle_reactor() {
    let reactor = running();
    // Let the loop go idle with a far timer, then schedule from here.
    reactor.call_later(Duration::from_secs(3600), || {});
    thread::sleep(Duration::from_millis(20));
    let (tx, rx) = mpsc::channel();
    reactor.call_soon(move || tx.send(()).unwrap());
    recv(&rx);
    reactor.stop();
}

#[test]
fn a_panicking_callback_does_not_stop_the_reactor() {
    let reactor = running();
    reactor.call_soon(|| panic!("callback failed"));
    let (tx, rx) = mpsc::channel();
    reactor.call_later(Duration::from_millis(5), move || tx.send(7).unwrap());
    assert_eq!(recv(&rx), 7);
    reactor.stop();
}

#[test]
fn the_reactor_is_not_restartable() {
    let reactor = Reactor::leaked().unwrap();
    assert_eq!(reactor.phase(), Phase::NotStarted);
    reactor.call_soon(move || reactor.stop());
    reactor.run(false).unwrap();
    assert_eq!(reactor.phase(), Phase::Stopped);
    assert_eq!(reactor.run(false), Err(Phase::Stopped));
    assert_eq!(reactor.claim(true), Err(Phase::Stopped));
}

#[test]
fn tasks_and_sleep_and_deferreds() {
    let reactor = running();
    let d: Deferred<i32> = Deferred::new();
    let (tx, rx) = mpsc::channel();
    let waiting = d.clone();
    reactor.spawn(async move {
        reactor::sleep(reactor, Duration::from_millis(5))
            .await
            .unwrap();
        tx.send(waiting.await).unwrap();
    });
    d.callback(42).unwrap();
    assert!(d.callback(1).is_err(), "fires once");
    assert_eq!(recv(&rx), Ok(42));

    let e: Deferred<i32> = Deferred::new();
    let (tx, rx) = mpsc::channel();
    let waiting = e.clone();
    reactor.spawn(async move { tx.send(waiting.await).unwrap() });
    e.errback("failed").unwrap();
    assert_eq!(recv(&rx), Err("failed".to_owned()));
    reactor.stop();
}

#[test]
fn loopback_tcp_echo() {
    let reactor = running();
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let listener = TcpListener::bind(reactor, addr).unwrap();
    let addr = listener.local_addr().unwrap();
    reactor.spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        loop {
            let n = conn.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            conn.write_all(&buf[..n]).await.unwrap();
        }
    });
    let got = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let sink = got.clone();
    reactor.spawn(async move {
        let mut stream = TcpStream::connect(reactor, addr).await.unwrap();
        let message = vec![7u8; 32 * 1024];
        stream.write_all(&message).await.unwrap();
        let mut buf = [0u8; 4096];
        while sink.lock().unwrap().len() < message.len() {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed early");
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
        tx.send(()).unwrap();
    });
    recv(&rx);
    assert_eq!(*got.lock().unwrap(), vec![7u8; 32 * 1024]);
    reactor.stop();
}
