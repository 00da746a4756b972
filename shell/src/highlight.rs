//! Lua syntax colours for the REPL's line (ANSI), and the bracket matching the one
//! under or before the cursor.

const KEYWORD: &str = "\x1b[1;32m";
const STRING: &str = "\x1b[33m";
const NUMBER: &str = "\x1b[36m";
const COMMENT: &str = "\x1b[2m";
const MAGIC: &str = "\x1b[35m";
const BRACKET: &str = "\x1b[1;4m";
const RESET: &str = "\x1b[0m";

const KEYWORDS: &[&str] = &[
    "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
    "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
];

/// `line` with colours, the cursor being at byte `pos`.
pub(crate) fn lua(line: &str, pos: usize) -> String {
    let pair = matching_bracket(line, pos);
    let bytes = line.as_bytes();
    let mut out = String::with_capacity(line.len() * 2);
    let mut i = 0;
    let paint = |out: &mut String, colour: &str, text: &str| {
        out.push_str(colour);
        out.push_str(text);
        out.push_str(RESET);
    };
    if line.trim_start().starts_with('%') {
        paint(&mut out, MAGIC, line);
        return out;
    }
    while i < line.len() {
        let c = bytes[i];
        let rest = &line[i..];
        if rest.starts_with("--") {
            paint(&mut out, COMMENT, rest);
            break;
        }
        if c == b'"' || c == b'\'' {
            let mut j = i + 1;
            while j < line.len() && bytes[j] != c {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(line.len());
            paint(&mut out, STRING, &line[i..end]);
            i = end;
            continue;
        }
        if c.is_ascii_digit() {
            let end = rest
                .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '.'))
                .map_or(line.len(), |n| i + n);
            paint(&mut out, NUMBER, &line[i..end]);
            i = end;
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            let end = rest
                .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                .map_or(line.len(), |n| i + n);
            let word = &line[i..end];
            if KEYWORDS.contains(&word) {
                paint(&mut out, KEYWORD, word);
            } else {
                out.push_str(word);
            }
            i = end;
            continue;
        }
        let ch = rest.chars().next().expect("not at the end");
        if pair.is_some_and(|(a, b)| a == i || b == i) {
            paint(&mut out, BRACKET, &rest[..ch.len_utf8()]);
        } else {
            out.push(ch);
        }
        i += ch.len_utf8();
    }
    out
}

/// The byte offsets of the bracket at (or just before) `pos` and its match.
fn matching_bracket(line: &str, pos: usize) -> Option<(usize, usize)> {
    let bytes = line.as_bytes();
    let at = [pos, pos.wrapping_sub(1)]
        .into_iter()
        .find(|&p| p < bytes.len() && b"()[]{}".contains(&bytes[p]))?;
    let (open, close, forward) = match bytes[at] {
        b'(' => (b'(', b')', true),
        b'[' => (b'[', b']', true),
        b'{' => (b'{', b'}', true),
        b')' => (b'(', b')', false),
        b']' => (b'[', b']', false),
        _ => (b'{', b'}', false),
    };
    let mut depth = 0i32;
    let indices: Box<dyn Iterator<Item = usize>> = if forward {
        Box::new(at..bytes.len())
    } else {
        Box::new((0..=at).rev())
    };
    for i in indices {
        if bytes[i] == open {
            depth += if forward { 1 } else { -1 };
        } else if bytes[i] == close {
            depth += if forward { -1 } else { 1 };
        }
        if depth == 0 {
            return Some((at, i));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_strings_numbers_and_the_matching_bracket() {
        let out = lua("local s = \"x\" -- c", 0);
        assert!(
            out.starts_with(&format!("{KEYWORD}local{RESET}")),
            "{out:?}"
        );
        assert!(out.contains(&format!("{STRING}\"x\"{RESET}")), "{out:?}");
        assert!(out.contains(&format!("{COMMENT}-- c{RESET}")), "{out:?}");
        assert!(lua("x = 42", 0).contains(&format!("{NUMBER}42{RESET}")));
        assert_eq!(matching_bracket("f(a[1])", 1), Some((1, 6)));
        assert_eq!(matching_bracket("f(a[1])", 7), Some((6, 1)));
        assert_eq!(matching_bracket("f(a", 1), None);
        // Without colour the text is unchanged.
        let plain = lua("print(1)", 0).replace('\x1b', "");
        assert!(plain.contains("print"));
    }
}
