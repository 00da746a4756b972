//! A local HTTP/1.1 server (hyper on a tokio runtime of its own) for the tests and
//! benches of `http` in cells, plain or TLS with a CA and certificate made on the
//! spot (rcgen). It listens on 127.0.0.1 only and stops when dropped.
//!
//! | path | answer |
//! |---|---|
//! | `/json` | `{"hello":"world","n":[1,2,3]}` as `application/json` |
//! | `/echo` | the request as JSON: method, body, content type, `x-test` header |
//! | `/redirect/N` | a 302 to `/redirect/N-1`, and `/redirect/0` to `/json` |
//! | `/loop` | a 302 to itself |
//! | `/stream` | five lines, `line 1` to `line 5`, 20 ms apart, chunked |
//! | `/slow` | a body after 5 s |
//! | `/status/N` | status N, an empty body |

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_rustls::rustls;

/// The server; dropping it stops it.
pub struct HttpServer {
    addr: SocketAddr,
    ca: Option<PathBuf>,
    connections: Arc<AtomicUsize>,
    rt: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

type Reply = Response<http_body_util::combinators::BoxBody<Bytes, Infallible>>;

impl HttpServer {
    /// A plain http server.
    ///
    /// # Panics
    ///
    /// If it cannot start (no port on 127.0.0.1, no thread).
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// An https server for `localhost` and `127.0.0.1`, its certificate signed by a
    /// CA of its own whose PEM file is [`ca`](Self::ca).
    ///
    /// # Panics
    ///
    /// If it cannot start or the certificates cannot be made.
    pub fn start_tls() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "autoawait-test-ca-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        let (config, ca_pem) = tls_config();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, ca_pem).expect("the CA file is written");
        let mut server = Self::start_with(Some(Arc::new(config)));
        server.ca = Some(ca);
        server
    }

    fn start_with(tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("test-http")
            .enable_all()
            .build()
            .expect("a tokio runtime for the test server");
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("a port on 127.0.0.1");
        let addr = listener.local_addr().expect("bound");
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        rt.spawn(async move {
            let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
            while let Ok((stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::Relaxed);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(handle);
                    let http = hyper::server::conn::http1::Builder::new();
                    let _ = match acceptor {
                        Some(acceptor) => match acceptor.accept(stream).await {
                            Ok(tls) => http.serve_connection(TokioIo::new(tls), service).await,
                            Err(_) => return,
                        },
                        None => http.serve_connection(TokioIo::new(stream), service).await,
                    };
                });
            }
        });
        HttpServer {
            addr,
            ca: None,
            connections,
            rt: Some(rt),
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (or `https://localhost:PORT`) followed by `path`.
    pub fn url(&self, path: &str) -> String {
        match self.ca {
            Some(_) => format!("https://localhost:{}{path}", self.addr.port()),
            None => format!("http://{}{path}", self.addr),
        }
    }

    /// The PEM file of the CA that signed an https server's certificate.
    pub fn ca(&self) -> Option<&std::path::Path> {
        self.ca.as_deref()
    }

    /// How many connections it accepted so far (keep-alive reuses one).
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
        if let Some(dir) = self.ca.as_ref().and_then(|ca| ca.parent()) {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

fn full(body: impl Into<Bytes>) -> http_body_util::combinators::BoxBody<Bytes, Infallible> {
    Full::new(body.into()).boxed()
}

fn reply(status: u16, content_type: &str, body: impl Into<Bytes>) -> Reply {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(full(body))
        .expect("a valid response")
}

fn redirect(to: &str) -> Reply {
    Response::builder()
        .status(StatusCode::FOUND)
        .header("location", to)
        .body(full(""))
        .expect("a valid response")
}

async fn handle(req: Request<Incoming>) -> Result<Reply, Infallible> {
    let path = req.uri().path().to_owned();
    Ok(match path.as_str() {
        "/json" => reply(200, "application/json", r#"{"hello":"world","n":[1,2,3]}"#),
        "/echo" => {
            let method = req.method().to_string();
            let header = |name: &str| {
                req.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned()
            };
            let (content_type, x_test) = (header("content-type"), header("x-test"));
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let echo = format!(
                r#"{{"method":{},"body":{},"content_type":{},"x_test":{}}}"#,
                quote(&method),
                quote(&String::from_utf8_lossy(&body)),
                quote(&content_type),
                quote(&x_test)
            );
            reply(200, "application/json", echo)
        }
        "/loop" => redirect("/loop"),
        "/stream" => Response::builder()
            .header("content-type", "text/plain")
            .body(
                Drip {
                    line: 0,
                    pause: None,
                }
                .boxed(),
            )
            .expect("a valid response"),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            reply(200, "text/plain", "finally")
        }
        p if p.starts_with("/redirect/") => match p["/redirect/".len()..].parse::<u32>() {
            Ok(0) => redirect("/json"),
            Ok(n) => redirect(&format!("/redirect/{}", n - 1)),
            Err(_) => reply(400, "text/plain", "bad count"),
        },
        p if p.starts_with("/status/") => {
            let code = p["/status/".len()..].parse().unwrap_or(500);
            reply(code, "text/plain", "")
        }
        _ => reply(404, "text/plain", "not found"),
    })
}

/// A JSON string literal (enough for the echo's ASCII test data).
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `/stream`'s body: five lines, 20 ms apart.
struct Drip {
    line: u32,
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Body for Drip {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.line == 5 {
            return Poll::Ready(None);
        }
        if let Some(pause) = self.pause.as_mut() {
            if pause.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
        self.line += 1;
        self.pause = Some(Box::pin(tokio::time::sleep(Duration::from_millis(20))));
        let text = format!("line {}\n", self.line);
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(text)))))
    }
}

/// A server configuration for `localhost` and `127.0.0.1`, and the PEM of the CA
/// that signed its certificate.
fn tls_config() -> (rustls::ServerConfig, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "autoawait test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("a key"))
        .expect("the CA certificate");
    let leaf_key = KeyPair::generate().expect("a key");
    let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("leaf params")
        .signed_by(&leaf_key, &ca)
        .expect("the server certificate");
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .expect("the server's certificate and key");
    (config, ca.pem())
}
