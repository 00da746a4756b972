//! What a front end offers while the user types, the same in the REPL and the
//! kernel: completion (globals, fields, string methods, magics, runner names after
//! `%autoawait`), help on a name (`name?`, the kernel's inspect), and the words
//! that end a session (`exit`, `quit`).

use autoawait_core::Registry;
use mlua::{Lua, Table, Value};

use crate::{BUILTINS, MAGICS};

/// `exit` or `quit` alone (IPython's autocall), with or without `()`.
pub(crate) fn is_exit(code: &str) -> bool {
    matches!(code.trim(), "exit" | "quit" | "exit()" | "quit()")
}

/// `name?`, `name??` or `?name` (IPython's help): the name.
pub(crate) fn help_query(code: &str) -> Option<&str> {
    let code = code.trim();
    let name = code
        .strip_suffix("??")
        .or_else(|| code.strip_suffix('?'))
        .or_else(|| code.strip_prefix('?'))?
        .trim();
    let is_name = |c: char| c.is_alphanumeric() || matches!(c, '_' | '.' | ':' | '%');
    (!name.is_empty() && name.chars().all(is_name)).then_some(name)
}

/// The dotted name around byte `cursor` (`string.up|` gives `string.up`).
pub(crate) fn word_at(code: &str, cursor: usize) -> (usize, usize) {
    let is_name = |c: char| c.is_alphanumeric() || matches!(c, '_' | '.' | ':' | '%');
    let start = code[..cursor]
        .rfind(|c: char| !is_name(c))
        .map_or(0, |i| i + 1);
    let end = code[cursor..]
        .find(|c: char| !is_name(c))
        .map_or(code.len(), |i| cursor + i);
    (start, end)
}

/// The value of a dotted global name (`string.upper`), if it exists.
pub(crate) fn resolve(lua: &Lua, path: &str) -> Option<Value> {
    let mut value = Value::Table(lua.globals());
    for part in path.split(['.', ':']) {
        let Value::Table(t) = value else { return None };
        value = t.get::<Value>(part).ok()?;
    }
    Some(value)
}

/// Where the word being completed starts, and what it may become: globals and
/// fields (`string.fo` → `string.format`), methods of a string (`s:up` →
/// `s:upper`), magics (`%auto`), runner names after `%autoawait `.
pub(crate) fn complete(lua: &Lua, code: &str, cursor: usize) -> (usize, Vec<String>) {
    let line_start = code[..cursor].rfind('\n').map_or(0, |i| i + 1);
    if let Some(arg) = code[line_start..cursor]
        .trim_start()
        .strip_prefix("%autoawait ")
    {
        let start = cursor - arg.len();
        let mut names: Vec<String> = Registry::global()
            .names()
            .into_iter()
            .chain(["on", "off", "--list"].map(String::from))
            .filter(|n| n.starts_with(arg))
            .collect();
        names.sort();
        return (start, names);
    }
    let (start, _) = word_at(code, cursor);
    let word = &code[start..cursor];
    let mut matches = Vec::new();
    if let Some(magic) = word.strip_prefix('%') {
        let cell = magic.starts_with('%');
        let magic = magic.trim_start_matches('%');
        matches = MAGICS
            .iter()
            .filter(|m| m.name.starts_with(magic))
            .map(|m| format!("{}{}", if cell { "%%" } else { "%" }, m.name))
            .collect();
    } else {
        let (base, sep, prefix) = match word.rfind(['.', ':']) {
            Some(i) => (&word[..i], &word[i..=i], &word[i + 1..]),
            None => ("", "", word),
        };
        let table = if base.is_empty() {
            Some(lua.globals())
        } else {
            match resolve(lua, base) {
                Some(Value::Table(t)) => Some(t),
                // `s:up`: a string's methods are the string library's.
                Some(Value::String(_)) if sep == ":" => lua.globals().get::<Table>("string").ok(),
                _ => None,
            }
        };
        if let Some(t) = table {
            collect_keys(&t, prefix, &mut |key| {
                matches.push(format!("{base}{sep}{key}"))
            });
        }
        if base.is_empty() {
            for keyword in LUA_KEYWORDS.iter().filter(|k| k.starts_with(prefix)) {
                matches.push((*keyword).to_owned());
            }
        }
        matches.sort();
        matches.dedup();
    }
    (start, matches)
}

const LUA_KEYWORDS: &[&str] = &[
    "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
    "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
];

fn collect_keys(t: &Table, prefix: &str, push: &mut dyn FnMut(String)) {
    for (k, _) in t.clone().pairs::<Value, Value>().flatten() {
        if let Value::String(s) = k {
            let key = s.to_string_lossy();
            if key.starts_with(prefix) && !key.starts_with("__") {
                push(key.to_string());
            }
        }
    }
}

/// Help on `name`: a builtin's or magic's usage, else what the global is.
pub(crate) fn help(lua: &Lua, name: &str) -> Option<String> {
    if let Some((_, usage, help)) = BUILTINS.iter().find(|(n, _, _)| *n == name) {
        return Some(format!("{usage}\n  {help}"));
    }
    if let Some(m) = MAGICS
        .iter()
        .find(|m| name.trim_start_matches('%') == m.name && name.starts_with('%'))
    {
        return Some(format!("{}\n  {}", m.usage, m.help));
    }
    let value = resolve(lua, name)?;
    Some(match &value {
        Value::Function(f) => {
            let info = f.info();
            match info.what {
                "C" => format!("{name}: a built-in function"),
                _ => format!(
                    "{name}: a Lua function defined at {}:{}",
                    info.short_src.as_deref().unwrap_or("?"),
                    info.line_defined.unwrap_or(0)
                ),
            }
        }
        Value::Nil => return None,
        other => format!("{name}: {}", other.type_name()),
    })
}
