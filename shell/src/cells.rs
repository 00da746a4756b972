//! What a cell's source is: how it compiles (its final expression shown), whether
//! it is complete yet, and cell files in the percent format (`-- %%` starts a
//! cell, as jupytext writes Lua).

use mlua::{Function, Lua};

/// Splits a cell file into cells: each `-- %%` line starts one (`-- %% [markdown]`
/// cells are skipped). Text before the first marker is a cell too. Cells with only
/// comments are dropped, trailing blank lines trimmed.
///
/// # Examples
///
/// ```
/// let cells = autoawait_shell::parse_percent("-- %%\nx = 1\n\n-- %% second\nx + 1\n");
/// assert_eq!(cells, ["x = 1", "x + 1"]);
/// ```
pub fn parse_percent(text: &str) -> Vec<String> {
    let mut cells = Vec::new();
    let mut current = String::new();
    let mut markdown = false;
    let mut flush = |current: &mut String, markdown: bool| {
        let cell = current.trim_end();
        let code = cell
            .lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--"));
        if !markdown && code {
            cells.push(cell.trim_start_matches('\n').to_owned());
        }
        current.clear();
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("-- %%") {
            flush(&mut current, markdown);
            markdown = rest.trim_start().starts_with("[markdown]")
                || rest.trim_start().starts_with("[md]");
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    flush(&mut current, markdown);
    cells
}

/// The identity function the value of a cell's final expression goes through.
pub(crate) const SHOW: &str = "__autoawait_show";

/// The chunk name of cell `count`: errors read `In[3]:2: ...`.
pub(crate) fn chunk_name(count: u64) -> String {
    format!("=In[{count}]")
}

/// Compiles a cell the way the Lua REPL does: as an expression first (its value is
/// shown), then as statements; a cell whose last lines are an expression after
/// statements shows that expression.
pub(crate) fn compile(lua: &Lua, source: &str, count: u64) -> mlua::Result<Function> {
    let name = chunk_name(count);
    let load = |src: String| lua.load(src).set_name(name.as_str()).into_function();
    // `return f()` would be a tail call, losing the cell's frame from tracebacks: the
    // values go through an identity function instead.
    if looks_like_statement(source) {
        // The hot path (`x = 1`): one compile instead of a failed expression first.
        if let Ok(f) = load(source.to_owned()) {
            return Ok(f);
        }
    }
    let lines: Vec<&str> = source.trim_end().lines().collect();
    if lines.len() > 1 {
        // Statements, then an expression: show it (IPython's rule). Tried before the
        // whole cell as one expression, because Lua reads `f()\n"s"` as `f()("s")`.
        for split in (lines.len().saturating_sub(8).max(1)..lines.len()).rev() {
            let (head, tail) = lines.split_at(split);
            if head.iter().all(|l| l.trim().is_empty()) {
                break;
            }
            let src = format!("{}\nreturn {SHOW}({}\n)", head.join("\n"), tail.join("\n"));
            if let Ok(f) = load(src) {
                return Ok(f);
            }
        }
    }
    if let Ok(f) = load(format!("return {SHOW}({source}\n)")) {
        return Ok(f);
    }
    load(source.to_owned())
}

/// `true` if a one-line cell cannot be an expression: it starts with a statement
/// keyword or assigns at the top level (an `=` outside brackets, strings and comments).
fn looks_like_statement(source: &str) -> bool {
    let src = source.trim();
    if src.contains('\n') {
        return false;
    }
    const KEYWORDS: &[&str] = &[
        "local", "function", "for", "while", "if", "repeat", "do", "return", "goto",
    ];
    let first = src
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .next()
        .unwrap_or("");
    if KEYWORDS.contains(&first) {
        return true;
    }
    let bytes = src.as_bytes();
    let (mut depth, mut i) = (0i32, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'(' | b'{' | b'[' => depth += 1,
            b')' | b'}' | b']' => depth -= 1,
            q @ (b'"' | b'\'') => {
                i += 1;
                while i < bytes.len() && bytes[i] != q {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => return false,
            b'=' if depth == 0 => {
                let prev = if i > 0 { bytes[i - 1] } else { b' ' };
                let next = bytes.get(i + 1).copied().unwrap_or(b' ');
                return next != b'=' && !matches!(prev, b'=' | b'<' | b'>' | b'~');
            }
            _ => {}
        }
        i += 1;
    }
    false
}

/// Whether some source is a complete cell yet (for multi-line input).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completeness {
    /// Run it.
    Complete,
    /// Lua wants more lines (an open `function`, `do`, string, ...).
    Incomplete,
    /// It cannot become valid by adding lines: run it, to see the syntax error.
    Invalid,
}

/// Whether `source` is a complete cell: magics always are (a cell magic once it
/// ends with an empty line); Lua is once it parses, as a chunk or as an expression.
/// The one rule of the REPL's Enter, the kernel's `is_complete_request` and
/// [`Engine::is_complete`](crate::Engine::is_complete).
///
/// # Examples
///
/// ```
/// use autoawait_shell::{completeness, Completeness};
///
/// assert_eq!(completeness("function f()"), Completeness::Incomplete);
/// assert_eq!(completeness("f()\nend"), Completeness::Invalid);
/// assert_eq!(completeness("1 + 1"), Completeness::Complete);
/// assert_eq!(completeness("%autoawait"), Completeness::Complete);
/// ```
pub fn completeness(source: &str) -> Completeness {
    thread_local! {
        /// Parses, never runs: a Lua state of its own, so that any thread may ask.
        static PARSER: Lua = Lua::new();
    }
    let trimmed = source.trim_start();
    if trimmed.starts_with("%%") {
        // A cell magic ends with an empty line.
        return if source.ends_with('\n') {
            Completeness::Complete
        } else {
            Completeness::Incomplete
        };
    }
    let lua_only: String = source
        .lines()
        .map(|l| {
            if l.trim_start().starts_with('%') {
                ""
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    if lua_only.trim().is_empty() {
        return Completeness::Complete;
    }
    PARSER.with(|lua| {
        let parses = |src: &str| lua.load(src).set_name("=cell").into_function();
        match parses(&lua_only) {
            Ok(_) => Completeness::Complete,
            Err(_) if parses(&format!("return {lua_only}")).is_ok() => Completeness::Complete,
            Err(mlua::Error::SyntaxError {
                incomplete_input: true,
                ..
            }) => Completeness::Incomplete,
            Err(_) => Completeness::Invalid,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::looks_like_statement;

    #[test]
    fn statements_are_told_from_expressions() {
        for s in [
            "x = 1",
            "t[1] = 2",
            "s = 'a=b'",
            "a, b = 1, 2",
            "local x",
            "return 1",
        ] {
            assert!(looks_like_statement(s), "{s}");
        }
        for s in [
            "x == 1",
            "{a = 1}",
            "'a=b'",
            "a >= b",
            "a ~= b",
            "x -- = y",
            "functional(1)",
            "f(function() x = 1 end)",
            "x = 1\ny",
        ] {
            assert!(!looks_like_statement(s), "{s}");
        }
    }
}
