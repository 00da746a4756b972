//! `%load_ext`: loads a runner plugin and binds the functions it offers to cells
//! (`twisted.sleep(s)` returns an awaitable; handles are objects with methods).

use std::path::Path;
use std::sync::Arc;

use autoawait_core::{Registry, RunError};
use autoawait_plugin::{Callback, PluginFunction, Value as PValue};
use mlua::{Function, IntoLuaMulti, Lua, MetaMethod, MultiValue, Table, UserData, Value};

use crate::builtins::{AwaitFuture, Awaitable, Convert};
use crate::{Engine, ErrorInfo, ErrorKind};

/// An object of a plugin (a deferred, say): methods are the plugin's functions named
/// `<kind>.<method>`, called with the handle first.
#[derive(Clone)]
struct Handle {
    id: u64,
    kind: String,
    functions: Arc<Vec<PluginFunction>>,
}

impl Handle {
    fn method(&self, name: &str) -> Option<PluginFunction> {
        let full = format!("{}.{name}", self.kind);
        self.functions.iter().find(|f| f.name() == full).cloned()
    }
}

impl UserData for Handle {
    fn add_methods<M: mlua::UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::Index, |lua, this, name: String| {
            let Some(function) = this.method(&name) else {
                return Ok(Value::Nil);
            };
            let functions = this.functions.clone();
            let kind = this.kind.clone();
            let f = lua.create_function(move |lua, args: MultiValue| {
                call(lua, &function, &kind, &functions, args)
            })?;
            Ok(Value::Function(f))
        });
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(format!("<{} #{}>", this.kind, this.id))
        });
    }
}

fn to_plugin(lua: &Lua, value: Value) -> mlua::Result<PValue> {
    Ok(match value {
        Value::Nil => PValue::Nil,
        Value::Boolean(b) => PValue::Bool(b),
        Value::Integer(i) => PValue::Int(i),
        Value::Number(n) => PValue::Float(n),
        Value::String(s) => PValue::Str(s.to_str()?.to_owned()),
        Value::UserData(ud) if ud.is::<Handle>() => PValue::Handle(ud.borrow::<Handle>()?.id),
        Value::Function(f) => {
            let lua = lua.clone();
            // Called back later, on the reactor's thread or the host's loop: its
            // output is still the output of the cell that handed it over.
            let origin = autoawait_core::current_cell();
            PValue::Callback(Callback::new(move || {
                let call = || {
                    let out = f.call::<Value>(()).map_err(|e| RunError::Failed {
                        message: e.to_string(),
                    })?;
                    to_plugin(&lua, out).map_err(|e| RunError::Failed {
                        message: e.to_string(),
                    })
                };
                match origin {
                    Some(origin) => autoawait_core::with_cell(origin, call),
                    None => call(),
                }
            }))
        }
        other => {
            return Err(mlua::Error::RuntimeError(format!(
                "a plugin function cannot take a {}",
                other.type_name()
            )))
        }
    })
}

fn from_plugin(
    lua: &Lua,
    value: PValue,
    kind: &str,
    functions: &Arc<Vec<PluginFunction>>,
) -> mlua::Result<Value> {
    Ok(match value {
        PValue::Nil => Value::Nil,
        PValue::Bool(b) => Value::Boolean(b),
        PValue::Int(i) => Value::Integer(i),
        PValue::Float(f) => Value::Number(f),
        PValue::Str(s) => Value::String(lua.create_string(&s)?),
        PValue::Handle(id) => Value::UserData(lua.create_userdata(Handle {
            id,
            kind: kind.to_owned(),
            functions: functions.clone(),
        })?),
        _ => Value::Nil,
    })
}

/// `await(handle)`: the plugin's `<kind>.wait(handle)`, if it has one.
pub(crate) fn wait_handle(ud: &mlua::AnyUserData) -> Option<mlua::Result<AwaitFuture>> {
    let handle = ud.borrow::<Handle>().ok()?.clone();
    let function = handle.method("wait")?;
    let fut = function.call(vec![PValue::Handle(handle.id)]);
    let (kind, functions) = (handle.kind.clone(), handle.functions.clone());
    Some(Ok(Box::pin(async move {
        let value = fut.await.map_err(|e| crate::errors::external(&e))?;
        Ok(Box::new(move |lua: &Lua| {
            from_plugin(lua, value, &kind, &functions)?.into_lua_multi(lua)
        }) as Convert)
    })))
}

/// Calls a plugin function: an awaitable of its value.
fn call(
    lua: &Lua,
    function: &PluginFunction,
    kind: &str,
    functions: &Arc<Vec<PluginFunction>>,
    args: MultiValue,
) -> mlua::Result<Awaitable> {
    let args = args
        .into_iter()
        .map(|v| to_plugin(lua, v))
        .collect::<mlua::Result<Vec<_>>>()?;
    let fut = function.call(args);
    // A handle a function returns is of the kind named by the function (`twisted.deferred`).
    let kind = kind.to_owned();
    let functions = functions.clone();
    let awaited: AwaitFuture = Box::pin(async move {
        let value = fut.await.map_err(|e| crate::errors::external(&e))?;
        Ok(Box::new(move |lua: &Lua| {
            from_plugin(lua, value, &kind, &functions)?.into_lua_multi(lua)
        }) as Convert)
    });
    Ok(Awaitable::new(
        format!("{}()", function.name()),
        None,
        awaited,
    ))
}

/// The table at dotted `path` under `root`, made (or made callable) as needed.
fn table_at(lua: &Lua, root: &Table, path: &[&str]) -> mlua::Result<Table> {
    let mut table = root.clone();
    for part in path {
        let next = match table.raw_get::<Value>(*part)? {
            Value::Table(t) => t,
            Value::Function(f) => {
                // Both a function and a namespace: a callable table.
                let t = lua.create_table()?;
                let meta = lua.create_table()?;
                meta.set(
                    "__call",
                    lua.create_function(move |_, args: MultiValue| {
                        f.call::<MultiValue>(args.into_iter().skip(1).collect::<MultiValue>())
                    })?,
                )?;
                t.set_metatable(Some(meta))?;
                t
            }
            _ => lua.create_table()?,
        };
        table.raw_set(*part, next.clone())?;
        table = next;
    }
    Ok(table)
}

/// Loads plugin `what` (a path, or a name looked up on the plugin search path) and
/// binds its functions as Lua globals. Returns what to tell the user.
pub(crate) fn load(engine: &Engine, what: &str) -> Result<String, ErrorInfo> {
    let lua = engine.lua();
    let registry = Registry::global();
    let looks_like_path = what.contains(std::path::MAIN_SEPARATOR)
        || what.contains('/')
        || Path::new(what)
            .extension()
            .is_some_and(|e| e == "so" || e == "dylib" || e == "dll");
    let load = if looks_like_path {
        autoawait_plugin::load(registry, what)
    } else {
        autoawait_plugin::load_named(registry, what)
    }
    .map_err(|e| ErrorInfo::from(&e))?;
    let functions = Arc::new(load.plugin.functions().to_vec());
    let globals = lua.globals();
    let failed = |e: mlua::Error| ErrorInfo::new(ErrorKind::PluginError, e.to_string());
    for function in functions.iter() {
        let parts: Vec<&str> = function.name().split('.').collect();
        let Some((last, path)) = parts.split_last() else {
            continue;
        };
        let table = table_at(lua, &globals, path).map_err(failed)?;
        let (f, kind, all) = (
            function.clone(),
            function.name().to_owned(),
            functions.clone(),
        );
        let bound: Function = lua
            .create_function(move |lua, args: MultiValue| call(lua, &f, &kind, &all, args))
            .map_err(failed)?;
        match table.raw_get::<Value>(*last).map_err(failed)? {
            // A namespace already there: make it callable.
            Value::Table(ns) => {
                let meta = lua.create_table().map_err(failed)?;
                let call_bound = bound.clone();
                meta.set(
                    "__call",
                    lua.create_function(move |_, args: MultiValue| {
                        call_bound
                            .call::<MultiValue>(args.into_iter().skip(1).collect::<MultiValue>())
                    })
                    .map_err(failed)?,
                )
                .map_err(failed)?;
                ns.set_metatable(Some(meta)).map_err(failed)?;
            }
            _ => table.raw_set(*last, bound).map_err(failed)?,
        }
        // An extension stays loaded through `%reset`, as in IPython.
        let top = parts[0];
        engine.keep_on_reset(top)?;
    }
    Ok(load.to_string())
}
