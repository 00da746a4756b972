//! How a value looks as a cell's `Out[n]` and in `display`: numbers exactly as
//! Lua's `tostring` writes them, strings quoted, values with `__tostring` through
//! it, tables as constructors — pretty-printed over several lines when long, with
//! depth and length bounded and cycles marked.

use std::fmt::Write as _;

use mlua::{MultiValue, Table, Value};

/// Tables nested deeper than this show as `{...}`.
const MAX_DEPTH: usize = 4;
/// A table shows at most this many entries, then how many it left out.
const MAX_ITEMS: usize = 100;
/// A table longer than this on one line is shown one entry per line.
const WIDTH: usize = 80;

/// A float as Lua 5.4 writes it (`LUAI_NUMFFORMAT` `%.14g`, plus `.0` when it
/// looks like an integer): `3.0`, `0.1`, `9.2233720368548e+18`, `1e+300`, `inf`.
pub(crate) fn lua_float(n: f64) -> String {
    if n.is_nan() {
        return if n.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    if n.is_infinite() {
        return if n < 0.0 { "-inf" } else { "inf" }.into();
    }
    let text = g14(n);
    if text.contains(['.', 'e', 'n', 'i']) {
        text
    } else {
        text + ".0"
    }
}

/// C's `%.14g`.
fn g14(n: f64) -> String {
    const P: i32 = 14;
    if n == 0.0 {
        return if n.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // The exponent after rounding to P significant digits decides the style.
    let sci = format!("{:.*e}", (P - 1) as usize, n);
    let (mantissa, exp) = sci.split_once('e').expect("{:e} writes an exponent");
    let exp: i32 = exp.parse().expect("an integer exponent");
    if !(-4..P).contains(&exp) {
        let mantissa = trim_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (P - 1 - exp).max(0) as usize;
        trim_zeros(&format!("{n:.decimals$}")).to_owned()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// The values a cell returned, comma-separated.
pub(crate) fn show_values(values: &MultiValue) -> String {
    values.iter().map(show_value).collect::<Vec<_>>().join(", ")
}

/// One value.
pub(crate) fn show_value(value: &Value) -> String {
    show(value, 0, &mut Vec::new())
}

/// Whether a metatable gives its values a look of their own.
fn has_tostring(meta: Option<Table>) -> bool {
    meta.is_some_and(|m| {
        m.contains_key("__tostring").unwrap_or(false) || m.contains_key("__name").unwrap_or(false)
    })
}

fn show(value: &Value, depth: usize, seen: &mut Vec<usize>) -> String {
    match value {
        Value::Nil => "nil".into(),
        Value::Boolean(b) => b.to_string(),
        Value::Integer(i) => i.to_string(),
        Value::Number(n) => lua_float(*n),
        Value::String(s) => format!("{:?}", s.to_string_lossy()),
        Value::Table(t) => {
            // `__tostring` (or `__name`) says how it looks, as for `tostring`.
            if has_tostring(t.metatable()) {
                if let Ok(text) = value.to_string() {
                    return text;
                }
            }
            let id = t.to_pointer() as usize;
            if seen.contains(&id) {
                return "<cycle>".into();
            }
            if depth >= MAX_DEPTH {
                return "{...}".into();
            }
            seen.push(id);
            let items = entries(t, depth, seen);
            seen.pop();
            layout(&items, depth)
        }
        // Userdata through its `__tostring`, functions and threads by address.
        other => other
            .to_string()
            .unwrap_or_else(|_| format!("{}: {:?}", other.type_name(), other.to_pointer())),
    }
}

/// A table's entries as `value` (its sequence) and `key = value` (the rest, sorted),
/// at most [`MAX_ITEMS`].
fn entries(t: &Table, depth: usize, seen: &mut Vec<usize>) -> Vec<String> {
    let len = t.raw_len();
    let mut items: Vec<String> = (1..=len.min(MAX_ITEMS))
        .map(|i| {
            show(
                &t.raw_get::<Value>(i).unwrap_or(Value::Nil),
                depth + 1,
                seen,
            )
        })
        .collect();
    let mut keyed = Vec::new();
    let mut total = len;
    for (k, v) in t.clone().pairs::<Value, Value>().flatten() {
        if matches!(k, Value::Integer(i) if i >= 1 && (i as usize) <= len) {
            continue;
        }
        total += 1;
        if items.len() + keyed.len() >= MAX_ITEMS {
            continue;
        }
        let key = match &k {
            Value::String(s) if is_name(&s.to_string_lossy()) => s.to_string_lossy(),
            other => format!("[{}]", show(other, depth + 1, seen)),
        };
        keyed.push(format!("{key} = {}", show(&v, depth + 1, seen)));
    }
    keyed.sort();
    items.extend(keyed);
    if total > items.len() {
        items.push(format!("... ({} more)", total - items.len()));
    }
    items
}

/// `{ a, b }` on one line if it fits, else one entry per line, indented by depth.
fn layout(items: &[String], depth: usize) -> String {
    if items.is_empty() {
        return "{}".into();
    }
    let line = format!("{{ {} }}", items.join(", "));
    if line.len() + 2 * depth <= WIDTH && !line.contains('\n') {
        return line;
    }
    let pad = "  ".repeat(depth + 1);
    let mut out = String::from("{\n");
    if items.iter().all(|i| i.len() <= 20 && !i.contains('\n')) {
        // Short entries (a sequence of numbers, say) fill the lines.
        let mut line = pad.clone();
        for item in items {
            if line.len() > pad.len() && line.len() + item.len() + 1 > WIDTH {
                let _ = writeln!(out, "{}", line.trim_end());
                line.clone_from(&pad);
            }
            let _ = write!(line, "{item}, ");
        }
        let _ = writeln!(out, "{}", line.trim_end());
    } else {
        for item in items {
            let _ = writeln!(out, "{pad}{item},");
        }
    }
    out.push_str(&"  ".repeat(depth));
    out.push('}');
    out
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::lua_float;

    #[test]
    fn floats_as_lua_writes_them() {
        for (n, text) in [
            (3.0, "3.0"),
            (-0.0, "-0.0"),
            (0.1, "0.1"),
            (2f64.powi(63), "9.2233720368548e+18"),
            (1e300, "1e+300"),
            (1e-5, "1e-05"),
            (123456.789, "123456.789"),
            (1e14, "1e+14"),
            (99999999999999.0, "99999999999999.0"),
            (f64::INFINITY, "inf"),
        ] {
            assert_eq!(lua_float(n), text, "{n}");
        }
    }
}
