//! `http.get(url [, opts])`, `http.post(url, body [, opts])` and
//! `http.request{method=, url=, headers=, body=, json=, timeout=, redirects=, ca=}`
//! (`timeout` in seconds, 30 by default; `redirects` followed, 10 by default, 0 to
//! get the redirect itself; `ca` a PEM file of authorities to trust besides the
//! webpki roots):
//! awaitables of a response, on the active runner's own sockets.
//!
//! A response has `.status`, `.ok`, `.headers` (lower-case names), `.url` (after
//! redirects), and reads its body with `await(resp:text())`, `await(resp:json())`,
//! or piece by piece with `for line in resp:lines() do ... end` and
//! `for chunk in resp:chunks() do ... end` (each step waits for the network).

mod client;
mod io;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use autoawait_core::Runner;
use bytes::Bytes;
use hyper::{Method, Uri};
use mlua::{Lua, MultiValue, Table, UserData, UserDataFields, UserDataMethods, Value};

use super::{lock, lua_err, runner_with_sockets, AwaitFuture, Awaitable, Convert};
use crate::engine::Shared;
use client::{Body, Request, Response};

/// How long a request may take, unless `timeout=` says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How many redirects are followed, unless `redirects=` says otherwise.
const DEFAULT_REDIRECTS: usize = 10;

/// Reads a request from `url` and the options table (`http.request` passes one
/// table with `url` in it).
fn request(
    lua: &Lua,
    method: Method,
    url: &str,
    body: Option<Bytes>,
    opts: Option<&Table>,
) -> mlua::Result<Request> {
    let url: Uri = url
        .parse()
        .map_err(|e| lua_err(format!("bad URL `{url}`: {e}")))?;
    client::target(&url).map_err(lua_err)?;
    let mut req = Request {
        method,
        url,
        headers: Vec::new(),
        body: body.unwrap_or_default(),
        timeout: DEFAULT_TIMEOUT,
        redirects: DEFAULT_REDIRECTS,
        ca: None,
    };
    let Some(opts) = opts else {
        return Ok(req);
    };
    if let Some(headers) = opts.get::<Option<Table>>("headers")? {
        for pair in headers.pairs::<String, String>() {
            let (k, v) = pair.map_err(|_| lua_err("http: headers = {name = \"value\", ...}"))?;
            req.headers.push((k, v));
        }
    }
    if let Some(body) = opts.get::<Option<mlua::LuaString>>("body")? {
        req.body = Bytes::copy_from_slice(&body.as_bytes());
    }
    let json: Value = opts.get("json")?;
    if !json.is_nil() {
        req.body = Bytes::from(super::json::encode(lua, json, None)?);
        if !req
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            req.headers
                .push(("content-type".into(), "application/json".into()));
        }
    }
    if let Some(secs) = opts.get::<Option<f64>>("timeout")? {
        req.timeout = super::seconds(secs)?;
    }
    if let Some(n) = opts.get::<Option<usize>>("redirects")? {
        req.redirects = n;
    }
    req.ca = opts.get::<Option<String>>("ca")?.map(PathBuf::from);
    Ok(req)
}

/// The awaitable of a request through the active runner.
fn send(shared: &Arc<Shared>, req: Request) -> mlua::Result<Awaitable> {
    let runner = runner_with_sockets(shared)?;
    let what = format!("http {} {}", req.method, req.url);
    let on = runner.clone();
    let fut: AwaitFuture = Box::pin(async move {
        let resp = client::fetch(on.clone(), req).await.map_err(lua_err)?;
        Ok(Box::new(move |lua: &Lua| {
            let ud = lua.create_userdata(ResponseUd::new(resp, on))?;
            Ok(MultiValue::from_vec(vec![Value::UserData(ud)]))
        }) as Convert)
    });
    Ok(Awaitable::on(what, &runner, shared, fut))
}

/// A response as a cell holds it.
struct ResponseUd {
    status: u16,
    headers: Vec<(String, String)>,
    url: String,
    /// Lent out while a read is in flight.
    body: Arc<Mutex<Option<Body>>>,
    runner: Arc<dyn Runner>,
}

impl ResponseUd {
    fn new(resp: Response, runner: Arc<dyn Runner>) -> Self {
        ResponseUd {
            status: resp.status,
            headers: resp.headers,
            url: resp.url,
            body: Arc::new(Mutex::new(Some(resp.body))),
            runner,
        }
    }

    /// The body, taken for one read; `put_back` returns it.
    fn take_body(slot: &Arc<Mutex<Option<Body>>>) -> mlua::Result<Body> {
        lock(slot).take().ok_or_else(|| {
            lua_err("the response body is being read elsewhere (one reader at a time)")
        })
    }

    /// An awaitable of the whole rest of the body, turned into Lua by `convert`.
    fn read_all(
        &self,
        shared: &Arc<Shared>,
        what: &str,
        convert: fn(&Lua, Vec<u8>) -> mlua::Result<Value>,
    ) -> mlua::Result<Awaitable> {
        let slot = self.body.clone();
        let mut body = Self::take_body(&slot)?;
        let fut: AwaitFuture = Box::pin(async move {
            let read = body.all().await;
            *lock(&slot) = Some(body);
            let bytes = read.map_err(lua_err)?;
            Ok(
                Box::new(move |lua: &Lua| Ok(MultiValue::from_vec(vec![convert(lua, bytes)?])))
                    as Convert,
            )
        });
        Ok(Awaitable::on(
            format!("{what} of {}", self.url),
            &self.runner,
            shared,
            fut,
        ))
    }
}

/// The next chunk of a body held in `slot`, for the iterators.
async fn next_chunk(slot: &Arc<Mutex<Option<Body>>>) -> mlua::Result<Option<Bytes>> {
    let mut body = ResponseUd::take_body(slot)?;
    let chunk = body.chunk().await;
    *lock(slot) = Some(body);
    chunk.map_err(lua_err)
}

/// Installs the `http` module; each Response needs the engine's state for the
/// awaitables it makes.
pub(super) fn install(lua: &Lua, shared: &Arc<Shared>) -> mlua::Result<()> {
    let http = lua.create_table()?;
    let s = shared.clone();
    http.set(
        "get",
        lua.create_function(move |lua, (url, opts): (String, Option<Table>)| {
            send(&s, request(lua, Method::GET, &url, None, opts.as_ref())?)
        })?,
    )?;
    let s = shared.clone();
    http.set(
        "post",
        lua.create_function(
            move |lua, (url, body, opts): (String, Option<mlua::LuaString>, Option<Table>)| {
                let body = body.map(|b| Bytes::copy_from_slice(&b.as_bytes()));
                send(&s, request(lua, Method::POST, &url, body, opts.as_ref())?)
            },
        )?,
    )?;
    let s = shared.clone();
    http.set(
        "request",
        lua.create_function(move |lua, opts: Table| {
            let url: String = opts
                .get::<Option<String>>("url")?
                .ok_or_else(|| lua_err("http.request{...} needs url = \"http://...\""))?;
            let method = opts
                .get::<Option<String>>("method")?
                .unwrap_or_else(|| "GET".into());
            let method = Method::from_bytes(method.to_uppercase().as_bytes())
                .map_err(|_| lua_err(format!("http.request: bad method `{method}`")))?;
            send(&s, request(lua, method, &url, None, Some(&opts))?)
        })?,
    )?;
    lua.set_app_data(HttpShared(shared.clone()));
    lua.globals().set("http", http)
}

/// The engine's state, for the methods of a Response (which get only the Lua state).
struct HttpShared(Arc<Shared>);

fn shared_of(lua: &Lua) -> mlua::Result<Arc<Shared>> {
    lua.app_data_ref::<HttpShared>()
        .map(|s| s.0.clone())
        .ok_or_else(|| lua_err("http is not installed"))
}

impl UserData for ResponseUd {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("status", |_, this| Ok(this.status));
        fields.add_field_method_get("ok", |_, this| Ok((200..300).contains(&this.status)));
        fields.add_field_method_get("url", |_, this| Ok(this.url.clone()));
        fields.add_field_method_get("headers", |lua, this| {
            let t = lua.create_table()?;
            for (k, v) in &this.headers {
                let joined = match t.get::<Option<String>>(k.as_str())? {
                    Some(before) => format!("{before}, {v}"),
                    None => v.clone(),
                };
                t.set(k.as_str(), joined)?;
            }
            Ok(t)
        });
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("text", |lua, this, ()| {
            this.read_all(&shared_of(lua)?, "resp:text()", |lua, bytes| {
                lua.create_string(bytes).map(Value::String)
            })
        });
        methods.add_method("json", |lua, this, ()| {
            this.read_all(&shared_of(lua)?, "resp:json()", |lua, bytes| {
                super::json::decode(lua, lua.create_string(bytes)?)
            })
        });
        methods.add_method("chunks", |lua, this, ()| {
            let slot = this.body.clone();
            lua.create_async_function(move |lua, ()| {
                let slot = slot.clone();
                async move {
                    match next_chunk(&slot).await? {
                        Some(chunk) => lua.create_string(chunk).map(Value::String),
                        None => Ok(Value::Nil),
                    }
                }
            })
        });
        methods.add_method("lines", |lua, this, ()| {
            let slot = this.body.clone();
            let pending = Arc::new(Mutex::new((Vec::<u8>::new(), false)));
            lua.create_async_function(move |lua, ()| {
                let (slot, pending) = (slot.clone(), pending.clone());
                async move {
                    loop {
                        {
                            let mut p = lock(&pending);
                            if let Some(i) = p.0.iter().position(|&b| b == b'\n') {
                                let mut line: Vec<u8> = p.0.drain(..=i).collect();
                                line.pop();
                                if line.last() == Some(&b'\r') {
                                    line.pop();
                                }
                                return lua.create_string(line).map(Value::String);
                            }
                            if p.1 {
                                if p.0.is_empty() {
                                    return Ok(Value::Nil);
                                }
                                let line = std::mem::take(&mut p.0);
                                return lua.create_string(line).map(Value::String);
                            }
                        }
                        match next_chunk(&slot).await? {
                            Some(chunk) => lock(&pending).0.extend_from_slice(&chunk),
                            None => lock(&pending).1 = true,
                        }
                    }
                }
            })
        });
        methods.add_meta_method("__tostring", |_, this, ()| {
            Ok(format!("<http response {} from {}>", this.status, this.url))
        });
    }
}
