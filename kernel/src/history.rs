//! The input history of this kernel session, for `history_request` (tail, range, search).

use serde_json::{json, Value};

/// The session number this kernel reports (one history session per kernel process).
const SESSION: u64 = 1;

#[derive(Debug, Default)]
pub(crate) struct History {
    /// `(line, input, output text/plain)`; line = execution count.
    entries: Vec<(u64, String, Option<String>)>,
}

impl History {
    pub(crate) fn push(&mut self, line: u64, input: &str, output: Option<String>) {
        self.entries.push((line, input.to_owned(), output));
    }

    /// Answers a `history_request`'s content with the `history` list.
    pub(crate) fn query(&self, content: &Value) -> Value {
        let output = content["output"].as_bool().unwrap_or(false);
        let entry = |e: &(u64, String, Option<String>)| {
            if output {
                json!([SESSION, e.0, [e.1, e.2.clone()]])
            } else {
                json!([SESSION, e.0, e.1])
            }
        };
        let n = content["n"].as_u64().map(|n| n as usize);
        let picked: Vec<&(u64, String, Option<String>)> =
            match content["hist_access_type"].as_str().unwrap_or("tail") {
                "range" => {
                    let session = content["session"].as_i64().unwrap_or(0);
                    if session != 0 && session != SESSION as i64 {
                        Vec::new()
                    } else {
                        let start = content["start"].as_u64().unwrap_or(0);
                        let stop = content["stop"].as_u64();
                        self.entries
                            .iter()
                            .filter(|e| e.0 >= start && stop.is_none_or(|s| e.0 < s))
                            .collect()
                    }
                }
                "search" => {
                    let pattern = content["pattern"].as_str().unwrap_or("*");
                    let unique = content["unique"].as_bool().unwrap_or(false);
                    let mut hits: Vec<&(u64, String, Option<String>)> = Vec::new();
                    for e in self.entries.iter().rev() {
                        if !glob(pattern, &e.1) {
                            continue;
                        }
                        if unique && hits.iter().any(|h| h.1 == e.1) {
                            continue;
                        }
                        hits.push(e);
                    }
                    if let Some(n) = n {
                        hits.truncate(n);
                    }
                    hits.reverse();
                    hits
                }
                _ => {
                    let n = n.unwrap_or(10).min(self.entries.len());
                    self.entries[self.entries.len() - n..].iter().collect()
                }
            };
        Value::Array(picked.into_iter().map(entry).collect())
    }
}

/// `*` and `?` globbing (IPython's history search syntax), whole-string match.
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> History {
        let mut h = History::default();
        h.push(1, "x = 1", None);
        h.push(2, "print(x)", None);
        h.push(3, "x + 1", Some("2".into()));
        h.push(4, "print(x)", None);
        h
    }

    #[test]
    fn tail_range_search() {
        let h = sample();
        let tail = h.query(&json!({"hist_access_type": "tail", "n": 2}));
        assert_eq!(tail, json!([[1, 3, "x + 1"], [1, 4, "print(x)"]]));
        let range =
            h.query(&json!({"hist_access_type": "range", "session": 0, "start": 2, "stop": 3}));
        assert_eq!(range, json!([[1, 2, "print(x)"]]));
        let with_out =
            h.query(&json!({"hist_access_type": "range", "start": 3, "stop": 4, "output": true}));
        assert_eq!(with_out, json!([[1, 3, ["x + 1", "2"]]]));
        let search =
            h.query(&json!({"hist_access_type": "search", "pattern": "print*", "unique": true}));
        assert_eq!(search, json!([[1, 4, "print(x)"]]));
        let all = h.query(&json!({"hist_access_type": "search", "pattern": "*x*"}));
        assert_eq!(all.as_array().unwrap().len(), 4);
    }

    #[test]
    fn globbing() {
        assert!(glob("a*c", "abbbc"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "abbc"));
        assert!(glob("*", ""));
    }
}
