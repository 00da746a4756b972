//! Cell files in the percent format: `-- %%` starts a cell (as jupytext writes Lua).

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
