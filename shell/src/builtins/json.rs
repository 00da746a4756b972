//! `json.encode(v [, opts])`, `json.decode(s)`, `json.null`, `json.array(t)`:
//! serde_json on the Rust side (decoding through mlua's serde support), as users of
//! lua-cjson and dkjson expect: JSON null is `json.null` (not nil, which would drop
//! the key), arrays decode to sequences that encode back as arrays (even empty),
//! object keys come out sorted.

use mlua::{Lua, LuaSerdeExt, Table, Value};

use super::lua_err;

/// Nesting deeper than this is refused (as lua-cjson does), so a runaway
/// structure is an error, not a stack overflow.
const MAX_DEPTH: usize = 128;

/// A Lua value as JSON: `nil` and `json.null` are null; a table marked with
/// `json.array` or holding exactly the keys 1..n (n > 0) is an array; any other
/// table, the empty one included, is an object whose number keys become strings,
/// as in lua-cjson. Cycles, functions and non-UTF-8 strings are errors.
fn to_json(
    value: &Value,
    seen: &mut Vec<usize>,
    array_mt: &Table,
) -> Result<serde_json::Value, String> {
    use serde_json::Value as J;
    Ok(match value {
        Value::Nil => J::Null,
        Value::LightUserData(ud) if ud.0.is_null() => J::Null,
        Value::Boolean(b) => J::Bool(*b),
        Value::Integer(i) => J::from(*i),
        Value::Number(n) => serde_json::Number::from_f64(*n)
            .map(J::Number)
            .ok_or_else(|| format!("{n} is not a JSON number"))?,
        Value::String(s) => J::String(
            s.to_str()
                .map_err(|_| "a string that is not UTF-8 cannot be JSON".to_owned())?
                .to_owned(),
        ),
        Value::Table(t) => {
            let id = t.to_pointer() as usize;
            if seen.contains(&id) {
                return Err("a table that contains itself cannot be JSON".into());
            }
            if seen.len() >= MAX_DEPTH {
                return Err(format!(
                    "tables nested deeper than {MAX_DEPTH} cannot be JSON"
                ));
            }
            seen.push(id);
            let len = t.raw_len();
            let marked = t.metatable().is_some_and(|mt| mt == *array_mt);
            let pairs: Vec<(Value, Value)> = t
                .pairs()
                .collect::<mlua::Result<_>>()
                .map_err(|e| e.to_string())?;
            if marked || (len > 0 && pairs.len() == len) {
                let mut items = Vec::with_capacity(len);
                for i in 1..=len {
                    items.push(to_json(
                        &t.raw_get(i).map_err(|e| e.to_string())?,
                        seen,
                        array_mt,
                    )?);
                }
                seen.pop();
                J::Array(items)
            } else {
                let mut map = serde_json::Map::new();
                for (k, v) in pairs {
                    let key = match &k {
                        Value::String(s) => s
                            .to_str()
                            .map_err(|_| "a key that is not UTF-8 cannot be JSON".to_owned())?
                            .to_owned(),
                        Value::Integer(i) => i.to_string(),
                        Value::Number(n) => n.to_string(),
                        other => return Err(format!("a {} key cannot be JSON", other.type_name())),
                    };
                    map.insert(key, to_json(&v, seen, array_mt)?);
                }
                seen.pop();
                J::Object(map)
            }
        }
        other => {
            return Err(format!(
                "a {} cannot be JSON (only nil/json.null, booleans, numbers, strings and tables)",
                other.type_name()
            ))
        }
    })
}

/// `json.encode(v [, {indent = n}])`.
pub(crate) fn encode(lua: &Lua, value: Value, opts: Option<Table>) -> mlua::Result<String> {
    let json = to_json(&value, &mut Vec::new(), &lua.array_metatable())
        .map_err(|e| lua_err(format!("json.encode: {e}")))?;
    let indent = match &opts {
        Some(opts) => opts.get::<Option<usize>>("indent")?,
        None => None,
    };
    let text = match indent {
        None => serde_json::to_string(&json),
        Some(n) => {
            let pad = " ".repeat(n);
            let mut out = Vec::new();
            let formatter = serde_json::ser::PrettyFormatter::with_indent(pad.as_bytes());
            let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
            serde::Serialize::serialize(&json, &mut ser)
                .map(|()| String::from_utf8(out).expect("serde_json writes UTF-8"))
        }
    };
    text.map_err(|e| lua_err(format!("json.encode: {e}")))
}

/// `json.decode(s)`.
pub(crate) fn decode(lua: &Lua, text: mlua::LuaString) -> mlua::Result<Value> {
    let json: serde_json::Value = serde_json::from_slice(&text.as_bytes()).map_err(|e| {
        lua_err(format!(
            "json.decode: bad JSON at line {}, column {}: {}",
            e.line(),
            e.column(),
            what(&e)
        ))
    })?;
    lua.to_value(&json)
}

/// serde_json's message without its own "at line L column C" (we say it first).
fn what(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// Installs the `json` module.
pub(super) fn install(lua: &Lua) -> mlua::Result<()> {
    let json = lua.create_table()?;
    json.set(
        "encode",
        lua.create_function(|lua, (v, opts): (Value, Option<Table>)| encode(lua, v, opts))?,
    )?;
    json.set(
        "decode",
        lua.create_function(|lua, s: mlua::LuaString| decode(lua, s))?,
    )?;
    json.set("null", lua.null())?;
    let array = lua.array_metatable();
    json.set(
        "array",
        lua.create_function(move |lua, t: Option<Table>| {
            let t = match t {
                Some(t) => t,
                None => lua.create_table()?,
            };
            t.set_metatable(Some(array.clone()))?;
            Ok(t)
        })?,
    )?;
    lua.globals().set("json", json)
}
