//! What is measured, once for both harnesses: the floors and the per-cell
//! workloads, each a [`Case`] that runs `iters` iterations and says how long they
//! took (criterion's `iter_custom` shape). `cargo bench` hands them to criterion,
//! `autoawait bench` to the [`Sampler`](crate::Sampler).

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::thread;
use std::time::{Duration, Instant};

use autoawait_core::{downcast, Cell, RunError, Runner, RunnerExt};
use futures::io::{AsyncReadExt, AsyncWriteExt};

/// One measurement's code: `run(iters)` does `iters` iterations and returns the
/// time they took, set-up excluded.
pub struct Case {
    /// What runs: a runner's name, or `floor`.
    pub subject: String,
    /// The workload: `ready`, `spin_pingpong`, ...
    pub name: String,
    run: Box<dyn FnMut(u64) -> Duration>,
}

impl Case {
    fn new(subject: &str, name: &str, run: impl FnMut(u64) -> Duration + 'static) -> Self {
        Case {
            subject: subject.to_owned(),
            name: name.to_owned(),
            run: Box::new(run),
        }
    }

    /// A case that times `body` called `iters` times.
    fn timed(subject: &str, name: &str, mut body: impl FnMut() + 'static) -> Self {
        Case::new(subject, name, move |iters| {
            let start = Instant::now();
            for _ in 0..iters {
                body();
            }
            start.elapsed()
        })
    }

    /// `subject::name`, the id both harnesses report.
    pub fn id(&self) -> String {
        format!("{}::{}", self.subject, self.name)
    }

    /// Runs `iters` iterations; returns the time they took.
    pub fn run(&mut self, iters: u64) -> Duration {
        (self.run)(iters)
    }
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.id())
    }
}

/// Returns `Pending` once (after waking itself), then `Ready`: one trip through an
/// executor's wake path.
#[derive(Debug)]
pub struct YieldOnce(pub bool);

impl Future for YieldOnce {
    type Output = u64;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u64> {
        if self.0 {
            return Poll::Ready(black_box(1));
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// The floors, in the order they are measured:
///
/// - `spin_pingpong`: two threads bouncing a counter through atomics, both
///   spinning: the cheapest cross-thread hand-off there is (threaded runners are
///   judged against it);
/// - `park_pingpong`: the same with park/unpark: the cheapest hand-off that sleeps;
/// - `tokio_block_on` (and `_yield`): a reused tokio current_thread runtime's
///   `block_on` on the caller's thread;
/// - `pollster_block_on`: polling with no reactor at all;
/// - `tokio_build_block_on_drop` (and `_yield`): build a current_thread runtime
///   with every driver, `block_on`, drop.
///
/// Each starts what it needs (a peer thread, a runtime) when it runs and stops it
/// before it returns, so no floor competes with what is measured after it.
pub fn floors() -> Vec<Case> {
    vec![
        spin_pingpong("spin_pingpong"),
        Case::new("floor", "park_pingpong", |iters| {
            Peer::start(false).round_trips(iters)
        }),
        Case::new("floor", "tokio_block_on", |iters| {
            let rt = current_thread();
            time(iters, || rt.block_on(async { black_box(1u64) }))
        }),
        Case::new("floor", "tokio_block_on_yield", |iters| {
            let rt = current_thread();
            time(iters, || rt.block_on(YieldOnce(false)))
        }),
        Case::timed("floor", "pollster_block_on", || {
            pollster::block_on(async { black_box(1u64) });
        }),
        Case::timed("floor", "tokio_build_block_on_drop", || {
            build_block_on_drop(async { black_box(1u64) });
        }),
        Case::timed("floor", "tokio_build_block_on_drop_yield", || {
            build_block_on_drop(YieldOnce(false));
        }),
    ]
}

/// The spin floor under another name: measured again at the end of a run, a
/// drift from `spin_pingpong` says the machine was busy (see [`drift`](crate::drift)).
pub fn spin_pingpong(name: &str) -> Case {
    Case::new("floor", name, |iters| Peer::start(true).round_trips(iters))
}

fn time<T>(iters: u64, mut body: impl FnMut() -> T) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        black_box(body());
    }
    start.elapsed()
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("cannot build a tokio runtime")
}

/// What `tokio-fresh` does at least: a runtime with every driver, per cell.
pub fn build_block_on_drop<F: Future>(fut: F) -> F::Output {
    current_thread().block_on(fut)
}

/// A peer thread that answers each ping, spinning or parking; stopped and joined
/// when dropped.
struct Peer {
    ping: Arc<AtomicU64>,
    pong: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    spin: bool,
    thread: Option<thread::JoinHandle<()>>,
}

impl Peer {
    fn start(spin: bool) -> Self {
        let ping = Arc::new(AtomicU64::new(0));
        let pong = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let caller = thread::current();
        let (pi, po, st) = (ping.clone(), pong.clone(), stop.clone());
        let thread = thread::Builder::new()
            .name("bench-peer".into())
            .spawn(move || {
                let mut seen = 0;
                while !st.load(Ordering::Acquire) {
                    let v = pi.load(Ordering::Acquire);
                    if v == seen {
                        if spin {
                            std::hint::spin_loop();
                        } else {
                            thread::park();
                        }
                        continue;
                    }
                    seen = v;
                    po.store(v, Ordering::Release);
                    if !spin {
                        caller.unpark();
                    }
                }
            })
            .expect("cannot spawn the bench-peer thread");
        let peer = Peer {
            ping,
            pong,
            stop,
            spin,
            thread: Some(thread),
        };
        // One untimed trip: the peer is running before the clock starts.
        peer.trips(1);
        peer
    }

    /// `iters` timed round trips.
    fn round_trips(&self, iters: u64) -> Duration {
        let start = Instant::now();
        self.trips(iters);
        start.elapsed()
    }

    fn trips(&self, iters: u64) {
        let peer = self.thread.as_ref().expect("running").thread().clone();
        let base = self.ping.load(Ordering::Relaxed);
        for i in 1..=iters {
            let v = base + i;
            self.ping.store(v, Ordering::Release);
            if self.spin {
                while self.pong.load(Ordering::Acquire) != v {
                    std::hint::spin_loop();
                }
            } else {
                peer.unpark();
                while self.pong.load(Ordering::Acquire) != v {
                    thread::park();
                }
            }
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// What one iteration of a workload does, given the runner.
type Workload = fn(&Arc<dyn Runner>) -> Result<u64, RunError>;

/// The per-cell workloads, as `runner::case`:
/// - `ready` (`async { 1 }`) and `yield_once` ([`YieldOnce`]);
/// - `spawn_join_10`: spawn 10 tasks through the runner and await them all;
/// - `timer_0` and `timer_1ms`: sleep on the runner's own timer;
/// - `tcp_echo`: connect through the runner's reactor to a loopback echo server on
///   a plain thread, send 64 bytes, read them back.
pub const WORKLOADS: &[(&str, Workload)] = &[
    ("ready", |r| r.block_on(async { black_box(1u64) })),
    ("yield_once", |r| r.block_on(YieldOnce(false))),
    ("spawn_join_10", spawn_join_10),
    ("timer_0", |r| sleep_for(r, Duration::ZERO)),
    ("timer_1ms", |r| sleep_for(r, Duration::from_millis(1))),
    ("tcp_echo", tcp_echo),
];

/// A workload `runner` cannot do, and why.
#[derive(Debug)]
pub struct Skipped {
    /// `runner::case`.
    pub id: String,
    /// What the runner said.
    pub why: RunError,
}

/// The workloads `runner` can do, as cases named `subject::case` (each tried
/// twice first); those it cannot do (`sync` cannot wait, glommio's sockets are `!Send`)
/// are returned as [`Skipped`]. `only`, if given, keeps the workloads it names.
pub fn runner_cases(
    subject: &str,
    runner: &Arc<dyn Runner>,
    only: Option<&[&str]>,
) -> (Vec<Case>, Vec<Skipped>) {
    let mut cases = Vec::new();
    let mut skipped = Vec::new();
    for &(name, workload) in WORKLOADS {
        if only.is_some_and(|only| !only.contains(&name)) {
            continue;
        }
        // Twice: a runner that cannot run a second cell (`twisted-per-cell`) says so.
        if let Err(why) = workload(runner).and_then(|_| workload(runner)) {
            skipped.push(Skipped {
                id: format!("{subject}::{name}"),
                why,
            });
            continue;
        }
        let runner = runner.clone();
        cases.push(Case::timed(subject, name, move || {
            workload(&runner).expect("the workload ran twice already");
        }));
    }
    (cases, skipped)
}

/// A cell that spawns 10 tasks on its runner and awaits them all.
fn spawn_join_10(runner: &Arc<dyn Runner>) -> Result<u64, RunError> {
    let r = runner.clone();
    runner.block_on(async move {
        let tasks: Result<Vec<_>, _> = (0..10u64)
            .map(|i| r.spawn(Cell::new(async move { i })))
            .collect();
        let mut sum = 0;
        for task in tasks? {
            sum += downcast::<u64>(task.await?);
        }
        Ok(sum)
    })?
}

/// A cell that sleeps on the runner's own timer.
fn sleep_for(runner: &Arc<dyn Runner>, duration: Duration) -> Result<u64, RunError> {
    let r = runner.clone();
    runner.block_on(async move {
        let services = r.services().ok_or_else(|| no_services(&r))?;
        services.sleep(duration).await;
        Ok(1)
    })?
}

/// A cell that connects to a loopback echo server through the runner's reactor,
/// sends 64 bytes and reads them back.
fn tcp_echo(runner: &Arc<dyn Runner>) -> Result<u64, RunError> {
    let addr = echo_server();
    let r = runner.clone();
    runner.block_on(async move {
        let services = r.services().ok_or_else(|| no_services(&r))?;
        let mut stream = services.connect(addr).await.map_err(RunError::backend)?;
        let mut buf = [7u8; 64];
        stream.write_all(&buf).await.map_err(RunError::backend)?;
        stream
            .read_exact(&mut buf)
            .await
            .map_err(RunError::backend)?;
        Ok(u64::from(buf[63]))
    })?
}

fn no_services(runner: &Arc<dyn Runner>) -> RunError {
    RunError::Unsupported {
        advice: Default::default(),
        runner: runner.info().name.to_string(),
        reason: "it has no services (timer, sockets)".into(),
    }
}

/// A blocking echo server on a plain thread, for the process: no runner's reactor
/// is involved, and it sleeps in `accept` or `read` between uses.
fn echo_server() -> std::net::SocketAddr {
    static ADDR: OnceLock<std::net::SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("cannot bind");
        let addr = listener.local_addr().expect("bound");
        thread::Builder::new()
            .name("bench-echo".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    let Ok(mut stream) = stream else { continue };
                    let _ = stream.set_nodelay(true);
                    let mut buf = [0u8; 64];
                    while std::io::Read::read_exact(&mut stream, &mut buf).is_ok() {
                        if std::io::Write::write_all(&mut stream, &buf).is_err() {
                            break;
                        }
                    }
                }
            })
            .expect("cannot spawn the echo server");
        addr
    })
}

/// The threads of this process (Linux; `None` elsewhere).
pub fn thread_count() -> Option<usize> {
    std::fs::read_dir("/proc/self/task")
        .ok()
        .map(|tasks| tasks.count())
}

/// The threads of this process once the echo server runs: what [`settle`] waits
/// to come back to between runners.
pub fn baseline() -> Option<usize> {
    echo_server();
    thread_count()
}

/// Waits (up to 2 s) until no more than `baseline` threads are left: what a runner
/// measured before has stopped before the next is measured. Returns how many are
/// left over if some still run.
pub fn settle(baseline: usize) -> Result<(), usize> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match thread_count() {
            Some(n) if n > baseline && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(5));
            }
            Some(n) if n > baseline => return Err(n - baseline),
            _ => return Ok(()),
        }
    }
}
