//! The HTTP/1.1 client under `http.get` and friends: hyper's client connection
//! over the active runner's own sockets (its `Services`), rustls for https, a
//! keep-alive pool per runner and host, redirects, one deadline per request.
//!
//! No background task drives a connection: whoever waits on it (the request, then
//! each read of the body) polls it, so it works on every runner, the ones whose
//! tasks pause between cells included.

use std::future::{poll_fn, Future};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::Poll;
use std::time::{Duration, Instant};

use autoawait_core::{Runner, Strategy};
use bytes::Bytes;
use futures_rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};
use futures_rustls::rustls::{self, ClientConfig, RootCertStore};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper::{Method, StatusCode, Uri};

use super::io::Io;

/// What a request failed on, said for a user: where, and why.
pub(crate) type HttpError = String;

/// A request as the Lua side describes it.
pub(crate) struct Request {
    pub(crate) method: Method,
    pub(crate) url: Uri,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Bytes,
    pub(crate) timeout: Duration,
    /// How many redirects to follow before giving up.
    pub(crate) redirects: usize,
    /// A PEM file of extra certificate authorities to trust (a test server's).
    pub(crate) ca: Option<PathBuf>,
}

/// A response whose body has not been read yet.
pub(crate) struct Response {
    pub(crate) status: u16,
    /// Lower-case names, in the order the server sent them.
    pub(crate) headers: Vec<(String, String)>,
    /// The URL that answered (after redirects).
    pub(crate) url: String,
    pub(crate) body: Body,
}

/// One connection: hyper's request half and the connection future that does its I/O.
struct Conn {
    sender: SendRequest<Full<Bytes>>,
    driver: Pin<Box<Connection<Io, Full<Bytes>>>>,
    /// The connection future finished: the server closed it.
    closed: bool,
}

/// Where a connection may be reused: the same runner (its reactor owns the
/// socket), scheme, authority and trusted authorities.
#[derive(Clone)]
struct Key {
    runner: Weak<dyn Runner>,
    scheme: String,
    authority: String,
    ca: Option<PathBuf>,
}

impl Key {
    fn matches(&self, other: &Key) -> bool {
        self.runner.ptr_eq(&other.runner)
            && self.scheme == other.scheme
            && self.authority == other.authority
            && self.ca == other.ca
    }
}

/// Idle keep-alive connections, dropped after a while.
static POOL: Mutex<Vec<(Key, Conn, Instant)>> = Mutex::new(Vec::new());
const IDLE: Duration = Duration::from_secs(60);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn checkout(key: &Key) -> Option<Conn> {
    let mut pool = lock(&POOL);
    pool.retain(|(k, c, since)| {
        k.runner.strong_count() > 0 && !c.sender.is_closed() && since.elapsed() < IDLE
    });
    let i = pool.iter().position(|(k, _, _)| k.matches(key))?;
    Some(pool.swap_remove(i).1)
}

fn checkin(key: Key, conn: Conn) {
    if !conn.closed && !conn.sender.is_closed() {
        lock(&POOL).push((key, conn, Instant::now()));
    }
}

/// When a request must be done by: one timer of its runner's own loop (not a
/// thread hop), armed the first time the request waits and kept for the rest of
/// it, its body included.
pub(crate) struct Deadline {
    at: Instant,
    runner: Arc<dyn Runner>,
    timer: Option<autoawait_core::BoxFuture<'static, ()>>,
}

impl Deadline {
    fn new(runner: &Arc<dyn Runner>, after: Duration) -> Self {
        Deadline {
            at: Instant::now() + after,
            runner: runner.clone(),
            timer: None,
        }
    }

    /// Whether the deadline has passed (arming the timer if need be).
    fn poll_passed(&mut self, cx: &mut std::task::Context<'_>) -> bool {
        let (at, runner) = (self.at, &self.runner);
        let timer = self.timer.get_or_insert_with(|| {
            let left = at.saturating_duration_since(Instant::now());
            match runner.services() {
                Some(services) => services.sleep(left),
                None => Box::pin(autoawait_core::sleep(left)),
            }
        });
        timer.as_mut().poll(cx).is_ready()
    }
}

/// A response body, read chunk by chunk; its connection goes back to the pool
/// once the body has been read to the end.
pub(crate) struct Body {
    incoming: Incoming,
    conn: Option<Conn>,
    key: Option<Key>,
    deadline: Deadline,
    what: String,
}

impl Body {
    /// The next chunk of the body, or `None` at its end.
    pub(crate) async fn chunk(&mut self) -> Result<Option<Bytes>, HttpError> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(None);
        };
        loop {
            let frame = drive(conn, self.incoming.frame(), &mut self.deadline, &self.what).await?;
            match frame {
                None => break,
                Some(Err(e)) => return Err(format!("{}: reading the body failed: {e}", self.what)),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        if !data.is_empty() {
                            return Ok(Some(data));
                        }
                    }
                }
            }
        }
        if let (Some(conn), Some(key)) = (self.conn.take(), self.key.take()) {
            checkin(key, conn);
        }
        Ok(None)
    }

    /// The rest of the body.
    pub(crate) async fn all(&mut self) -> Result<Vec<u8>, HttpError> {
        let mut out = Vec::new();
        while let Some(chunk) = self.chunk().await? {
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }
}

/// Polls `work` and the connection's I/O together until `work` is done, the
/// connection fails, or `deadline` passes.
async fn drive<T>(
    conn: &mut Conn,
    work: impl Future<Output = T>,
    deadline: &mut Deadline,
    what: &str,
) -> Result<T, HttpError> {
    let mut work = pin!(work);
    poll_fn(|cx| {
        if let Poll::Ready(out) = work.as_mut().poll(cx) {
            return Poll::Ready(Ok(out));
        }
        if !conn.closed {
            match conn.driver.as_mut().poll(cx) {
                Poll::Ready(Ok(())) => {
                    conn.closed = true;
                    // What the server sent before closing may finish the work.
                    if let Poll::Ready(out) = work.as_mut().poll(cx) {
                        return Poll::Ready(Ok(out));
                    }
                }
                Poll::Ready(Err(e)) => {
                    conn.closed = true;
                    return Poll::Ready(Err(format!("{what}: the connection failed: {e}")));
                }
                Poll::Pending => {}
            }
        }
        if deadline.poll_passed(cx) {
            return Poll::Ready(Err(format!("{what}: timed out (no answer in time)")));
        }
        Poll::Pending
    })
    .await
}

/// The scheme, host and port of `url`, if it is an http or https URL.
pub(crate) fn target(url: &Uri) -> Result<(bool, String, u16), HttpError> {
    let tls = match url.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        Some(other) => {
            return Err(format!(
                "bad URL `{url}`: the scheme is `{other}`; only http:// and https:// work"
            ))
        }
        None => return Err(format!("bad URL `{url}`: it needs http:// or https://")),
    };
    let host = url
        .host()
        .ok_or_else(|| format!("bad URL `{url}`: it has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = url.port_u16().unwrap_or(if tls { 443 } else { 80 });
    Ok((tls, host, port))
}

/// An io error as a user reads it: `connection refused`, not `os error 111`.
fn io_text(e: &std::io::Error) -> String {
    if e.raw_os_error().is_some() {
        e.kind().to_string()
    } else {
        e.to_string()
    }
}

async fn connect(
    runner: &Arc<dyn Runner>,
    url: &Uri,
    ca: Option<&Path>,
) -> Result<Conn, HttpError> {
    let (tls, host, port) = target(url)?;
    let addr: SocketAddr = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("cannot resolve {host}: no address"))?;
    let services = runner
        .services()
        .ok_or_else(|| format!("runner `{}` has no sockets", runner.info().name))?;
    let stream = services
        .connect(addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {}", io_text(&e)))?;
    let stream: Box<dyn autoawait_core::ByteStream> = if tls {
        let name =
            ServerName::try_from(host.clone()).map_err(|e| format!("bad URL `{url}`: {e}"))?;
        let connector = futures_rustls::TlsConnector::from(tls_config(ca)?);
        let stream = connector
            .connect(name, stream)
            .await
            .map_err(|e| format!("TLS with {host}:{port} failed: {e}"))?;
        Box::new(stream)
    } else {
        stream
    };
    let (sender, driver) = http1::handshake(Io::new(stream))
        .await
        .map_err(|e| format!("HTTP with {host}:{port} failed: {e}"))?;
    Ok(Conn {
        sender,
        driver: Box::pin(driver),
        closed: false,
    })
}

/// The client configuration: the webpki roots, and the authorities in `ca`.
fn tls_config(ca: Option<&Path>) -> Result<Arc<ClientConfig>, HttpError> {
    static DEFAULT: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    static WITH_CA: Mutex<Vec<(PathBuf, Arc<ClientConfig>)>> = Mutex::new(Vec::new());
    let build = |extra: Vec<CertificateDer<'static>>| -> Result<Arc<ClientConfig>, HttpError> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for cert in extra {
            roots
                .add(cert)
                .map_err(|e| format!("cannot trust that certificate: {e}"))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    };
    let Some(path) = ca else {
        if let Some(config) = DEFAULT.get() {
            return Ok(config.clone());
        }
        let config = build(Vec::new())?;
        return Ok(DEFAULT.get_or_init(|| config).clone());
    };
    if let Some((_, config)) = lock(&WITH_CA).iter().find(|(p, _)| p == path) {
        return Ok(config.clone());
    }
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read the certificates in {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    let config = build(certs)?;
    lock(&WITH_CA).push((path.to_owned(), config.clone()));
    Ok(config)
}

/// Where a redirect's `Location` points, from `base`.
fn resolve(base: &Uri, location: &str) -> Result<Uri, HttpError> {
    let bad = |e: hyper::http::uri::InvalidUri| format!("bad redirect to `{location}`: {e}");
    if location.contains("://") {
        return location.parse().map_err(bad);
    }
    let origin = format!(
        "{}://{}",
        base.scheme_str().unwrap_or("http"),
        base.authority().map_or("", |a| a.as_str())
    );
    let path = if location.starts_with('/') {
        location.to_owned()
    } else {
        let dir = base.path().rsplit_once('/').map_or("", |(d, _)| d);
        format!("{dir}/{location}")
    };
    format!("{origin}{path}").parse().map_err(bad)
}

/// Sends `req` through `runner`'s sockets, following redirects; returns once the
/// response's headers are in (its body is read later, under the same deadline).
pub(crate) async fn fetch(
    runner: Arc<dyn Runner>,
    mut req: Request,
) -> Result<Response, HttpError> {
    let mut deadline = Deadline::new(&runner, req.timeout);
    let poolable = runner.info().strategy != Strategy::Fresh;
    let mut redirects = 0;
    loop {
        let what = format!("{} {}", req.method, req.url);
        let key = Key {
            runner: Arc::downgrade(&runner),
            scheme: req.url.scheme_str().unwrap_or("http").to_owned(),
            authority: req
                .url
                .authority()
                .map(|a| a.to_string())
                .unwrap_or_default(),
            ca: req.ca.clone(),
        };
        let mut reused = poolable.then(|| checkout(&key)).flatten();
        let (conn, resp) = loop {
            let fresh = reused.is_none();
            let mut conn = match reused.take() {
                Some(conn) => conn,
                None => drive_connect(&runner, &req, &mut deadline, &what).await?,
            };
            let sent = conn.sender.send_request(hyper_request(&req)?);
            match drive(&mut conn, sent, &mut deadline, &what).await? {
                Ok(resp) => break (conn, resp),
                // The server closed an idle connection: once more on a new one.
                Err(_) if !fresh && req.method.is_idempotent() => continue,
                Err(e) => return Err(format!("{what}: {e}")),
            }
        };
        let status = resp.status();
        let location = resp
            .headers()
            .get(hyper::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned);
        if let (true, Some(location)) = (status.is_redirection() && req.redirects > 0, location) {
            if redirects == req.redirects {
                return Err(format!("{what}: more than {} redirects", req.redirects));
            }
            redirects += 1;
            let next = resolve(&req.url, &location)?;
            if next.authority() != req.url.authority() {
                req.headers
                    .retain(|(k, _)| !k.eq_ignore_ascii_case("authorization"));
            }
            if matches!(
                status,
                StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND | StatusCode::SEE_OTHER
            ) && req.method != Method::HEAD
            {
                req.method = Method::GET;
                req.body = Bytes::new();
            }
            req.url = next;
            // The redirect's own body is not read: its connection is not reused.
            drop(conn);
            continue;
        }
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        return Ok(Response {
            status: status.as_u16(),
            headers,
            url: req.url.to_string(),
            body: Body {
                incoming: resp.into_body(),
                conn: Some(conn),
                key: poolable.then_some(key),
                deadline,
                what,
            },
        });
    }
}

/// [`connect`] under the request's deadline.
async fn drive_connect(
    runner: &Arc<dyn Runner>,
    req: &Request,
    deadline: &mut Deadline,
    what: &str,
) -> Result<Conn, HttpError> {
    let mut connecting = pin!(connect(runner, &req.url, req.ca.as_deref()));
    poll_fn(|cx| {
        if let Poll::Ready(conn) = connecting.as_mut().poll(cx) {
            return Poll::Ready(conn);
        }
        if deadline.poll_passed(cx) {
            return Poll::Ready(Err(format!("{what}: timed out connecting")));
        }
        Poll::Pending
    })
    .await
}

fn hyper_request(req: &Request) -> Result<hyper::Request<Full<Bytes>>, HttpError> {
    let path = req.url.path_and_query().map_or("/", |p| p.as_str());
    let host = req.url.authority().map_or("", |a| a.as_str());
    let mut builder = hyper::Request::builder()
        .method(req.method.clone())
        .uri(path)
        .header(hyper::header::HOST, host);
    let has = |name: &str| {
        req.headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(name))
    };
    if !has("user-agent") {
        builder = builder.header(
            hyper::header::USER_AGENT,
            concat!("autoawait/", env!("CARGO_PKG_VERSION")),
        );
    }
    if !has("accept") {
        builder = builder.header(hyper::header::ACCEPT, "*/*");
    }
    for (k, v) in &req.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    builder
        .body(Full::new(req.body.clone()))
        .map_err(|e| format!("{} {}: bad request: {e}", req.method, req.url))
}
