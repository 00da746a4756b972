//! Values look as Lua 5.4 writes them: `print` and `Out[n]` use `tostring`'s
//! formatting of numbers and respect `__tostring`; tables pretty-print, bounded.

mod common;

use common::Shell;

/// Numbers that tell Lua's `%.14g` from Rust's formatting.
const NUMBERS: &str = "{3.0, -0.0, 0.1, 2^63, 1e300, 1e-5, 1/3, 123456.789, 1e14, 99999999999999.0, \
                       2^53, -2.5e-10, 1/0, -1/0, 7, -42, math.maxinteger, math.mininteger, 10/2, 7//2}";

#[test]
fn print_and_out_write_numbers_as_lua_tostring_does() {
    let mut sh = Shell::new("inline");
    sh.ok(&format!("xs = {NUMBERS}"));
    // Lua's own tostring, computed by the same Lua.
    let expected = sh.stdout("for _, x in ipairs(xs) do io.write(tostring(x), '\\n') end");
    assert_eq!(
        sh.stdout("for _, x in ipairs(xs) do print(x) end"),
        expected
    );
    let lines: Vec<&str> = expected.lines().collect();
    assert_eq!(
        &lines[..5],
        ["3.0", "-0.0", "0.1", "9.2233720368548e+18", "1e+300"]
    );
    for (i, want) in lines.iter().enumerate() {
        assert_eq!(sh.out(&format!("xs[{}]", i + 1)).as_deref(), Some(*want));
    }
}

#[test]
fn tostring_metamethods_and_tables_show_as_lua_users_expect() {
    let mut sh = Shell::new("inline");
    sh.ok("P = setmetatable({}, {__tostring = function() return '<point 1,2>' end})");
    assert_eq!(sh.stdout("print(P)"), "<point 1,2>\n");
    assert_eq!(sh.out("P").as_deref(), Some("<point 1,2>"));
    assert_eq!(
        sh.out("{P, 'x'}").as_deref(),
        Some("{ <point 1,2>, \"x\" }")
    );
    // A cycle is marked, not followed.
    assert_eq!(
        sh.out("c = {1, 2, name = 'x'} c.self = c return c")
            .as_deref(),
        Some("{ 1, 2, name = \"x\", self = <cycle> }")
    );
    // print shows a table as Lua does: its address.
    assert!(sh.stdout("print(c)").starts_with("table: 0x"));
    // Long tables: one entry per line, or short entries filling lines; bounded.
    let big = sh
        .out("t = {} for i = 1, 150 do t[i] = i end return t")
        .unwrap();
    assert!(big.starts_with("{\n  1, 2, 3,"), "{big}");
    assert!(big.ends_with("100, ... (50 more),\n}"), "{big}");
    assert!(big.lines().all(|l| l.len() <= 80), "{big}");
    let nested = sh
        .out("return {config = {host = 'localhost', port = 8080, tags = {'a', 'b'}, deep = {a = {b = {c = {}}}}}}")
        .unwrap();
    assert_eq!(
        nested,
        "{\n  config = {\n    deep = { a = { b = {...} } },\n    host = \"localhost\",\n    port = 8080,\n    tags = { \"a\", \"b\" },\n  },\n}"
    );
}
