//! `tcp.connect(addr)` and `tcp.listen(addr)`, on the active runner's sockets.

use std::future::poll_fn;
use std::net::{SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use autoawait_core::{ByteStream, Listener};
use futures_io::{AsyncRead, AsyncWrite};
use mlua::{IntoLuaMulti, Lua, MultiValue, UserData, UserDataMethods, Value};

use super::{lock, lua_err, runner_with_sockets, services, AwaitFuture, Awaitable, Convert};
use crate::engine::Shared;

/// A byte stream from `tcp.connect` or `listener:accept()`.
struct StreamUd {
    slot: Arc<Mutex<Option<Box<dyn ByteStream>>>>,
    peer: String,
}

/// Lends the stream out of its slot for one operation; gives it back when dropped.
struct Lease {
    slot: Arc<Mutex<Option<Box<dyn ByteStream>>>>,
    stream: Option<Box<dyn ByteStream>>,
}

impl Lease {
    fn take(slot: &Arc<Mutex<Option<Box<dyn ByteStream>>>>) -> mlua::Result<Lease> {
        let stream = lock(slot)
            .take()
            .ok_or_else(|| lua_err("the stream is closed, or busy with another read or write"))?;
        Ok(Lease {
            slot: slot.clone(),
            stream: Some(stream),
        })
    }

    fn stream(&mut self) -> Pin<&mut Box<dyn ByteStream>> {
        Pin::new(self.stream.as_mut().expect("leased"))
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        *lock(&self.slot) = self.stream.take();
    }
}

impl UserData for StreamUd {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("read", |_, this, max: Option<usize>| {
            let mut lease = Lease::take(&this.slot)?;
            let max = max.unwrap_or(65536).max(1);
            let fut: AwaitFuture = Box::pin(async move {
                let mut buf = vec![0; max];
                let n = poll_fn(|cx| lease.stream().poll_read(cx, &mut buf))
                    .await
                    .map_err(io_err)?;
                buf.truncate(n);
                Ok(Box::new(move |lua: &Lua| {
                    if n == 0 {
                        Ok(MultiValue::from_vec(vec![Value::Nil]))
                    } else {
                        lua.create_string(&buf)?.into_lua_multi(lua)
                    }
                }) as Convert)
            });
            Ok(Awaitable::new("stream:read()", None, fut))
        });
        methods.add_method("write", |_, this, data: mlua::LuaString| {
            let mut lease = Lease::take(&this.slot)?;
            let data = data.as_bytes().to_vec();
            let fut: AwaitFuture = Box::pin(async move {
                let mut written = 0;
                while written < data.len() {
                    let n = poll_fn(|cx| lease.stream().poll_write(cx, &data[written..]))
                        .await
                        .map_err(io_err)?;
                    if n == 0 {
                        return Err(lua_err("the connection was closed while writing"));
                    }
                    written += n;
                }
                poll_fn(|cx| lease.stream().poll_flush(cx))
                    .await
                    .map_err(io_err)?;
                Ok(Box::new(move |lua: &Lua| written.into_lua_multi(lua)) as Convert)
            });
            Ok(Awaitable::new("stream:write()", None, fut))
        });
        methods.add_method("close", |_, this, ()| {
            drop(lock(&this.slot).take());
            Ok(())
        });
        methods.add_method("peer", |_, this, ()| Ok(this.peer.clone()));
        methods.add_meta_method("__tostring", |_, this, ()| {
            Ok(format!("<tcp stream to {}>", this.peer))
        });
    }
}

/// A listening socket from `tcp.listen`.
struct ListenerUd(Arc<dyn Listener>);

impl UserData for ListenerUd {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("accept", |_, this, ()| {
            let accept = this.0.accept();
            let fut: AwaitFuture = Box::pin(async move {
                let (stream, peer) = accept.await.map_err(io_err)?;
                Ok(Box::new(move |lua: &Lua| {
                    let peer = peer.to_string();
                    let ud = lua.create_userdata(StreamUd {
                        slot: Arc::new(Mutex::new(Some(stream))),
                        peer: peer.clone(),
                    })?;
                    (ud, peer).into_lua_multi(lua)
                }) as Convert)
            });
            Ok(Awaitable::new("listener:accept()", None, fut))
        });
        methods.add_method("addr", |_, this, ()| {
            this.0.local_addr().map(|a| a.to_string()).map_err(io_err)
        });
        methods.add_meta_method("__tostring", |_, this, ()| {
            let addr = this
                .0
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_default();
            Ok(format!("<tcp listener on {addr}>"))
        });
    }
}

fn io_err(err: std::io::Error) -> mlua::Error {
    lua_err(err.to_string())
}

fn parse_addr(addr: &str) -> mlua::Result<SocketAddr> {
    addr.to_socket_addrs()
        .map_err(|e| lua_err(format!("bad address `{addr}`: {e} (use host:port)")))?
        .next()
        .ok_or_else(|| lua_err(format!("address `{addr}` resolves to nothing")))
}

/// Installs the `tcp` module.
pub(super) fn install(lua: &Lua, shared: &Arc<Shared>) -> mlua::Result<()> {
    let tcp = lua.create_table()?;
    let s = shared.clone();
    tcp.set(
        "connect",
        lua.create_function(move |_, addr: String| {
            let target = parse_addr(&addr)?;
            let runner = runner_with_sockets(&s)?;
            let connect = services(&runner).connect(target);
            let fut: AwaitFuture = Box::pin(async move {
                let stream = connect.await.map_err(io_err)?;
                Ok(Box::new(move |lua: &Lua| {
                    let slot = Arc::new(Mutex::new(Some(stream)));
                    lua.create_userdata(StreamUd { slot, peer: addr })?
                        .into_lua_multi(lua)
                }) as Convert)
            });
            Ok(Awaitable::on(
                format!("tcp.connect({target})"),
                &runner,
                &s,
                fut,
            ))
        })?,
    )?;
    let s = shared.clone();
    tcp.set(
        "listen",
        lua.create_function(move |_, addr: String| {
            let target = parse_addr(&addr)?;
            let runner = runner_with_sockets(&s)?;
            let listen = services(&runner).listen(target);
            let fut: AwaitFuture = Box::pin(async move {
                let listener: Arc<dyn Listener> = Arc::from(listen.await.map_err(io_err)?);
                Ok(Box::new(move |lua: &Lua| {
                    lua.create_userdata(ListenerUd(listener))?
                        .into_lua_multi(lua)
                }) as Convert)
            });
            Ok(Awaitable::on(
                format!("tcp.listen({target})"),
                &runner,
                &s,
                fut,
            ))
        })?,
    )?;
    lua.globals().set("tcp", tcp)
}
