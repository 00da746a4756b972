//! `json.encode` / `json.decode` as users of lua-cjson and dkjson expect them.

mod common;

use common::Shell;

#[test]
fn values_round_trip_with_arrays_objects_and_null_kept_apart() {
    let mut sh = Shell::new("inline");
    assert_eq!(
        sh.stdout(
            r#"print(json.encode({a = 1, b = {1, 2, 3}, c = "x", d = json.null, e = {}, f = json.array(), g = 1.5}))"#
        ),
        "{\"a\":1,\"b\":[1,2,3],\"c\":\"x\",\"d\":null,\"e\":{},\"f\":[],\"g\":1.5}\n"
    );
    sh.ok(r#"t = json.decode('{"x": [1, 2.5, null, {}], "y": [], "z": "\\u00e9", "n": 12345678901}')"#);
    assert_eq!(
        sh.stdout(
            "print(math.type(t.x[1]), t.x[2], t.x[3] == json.null, #t.y, t.z, math.type(t.n))"
        ),
        "integer\t2.5\ttrue\t0\té\tinteger\n"
    );
    // What was an array (even empty) or an object comes back as one.
    assert_eq!(
        sh.stdout("print(json.encode(t))"),
        "{\"n\":12345678901,\"x\":[1,2.5,null,{}],\"y\":[],\"z\":\"é\"}\n"
    );
    // Number keys become strings, as in lua-cjson.
    assert_eq!(
        sh.stdout(r#"print(json.encode({[1] = "a", [5] = "b"}))"#),
        "{\"1\":\"a\",\"5\":\"b\"}\n"
    );
    assert_eq!(
        sh.stdout("print(json.encode({1, {a = true}}, {indent = 2}))"),
        "[\n  1,\n  {\n    \"a\": true\n  }\n]\n"
    );
}

#[test]
fn bad_input_is_a_plain_error_that_says_where() {
    let mut sh = Shell::new("inline");
    assert_eq!(
        sh.stdout(r#"print(pcall(json.decode, '{"a": }'))"#),
        "false\tjson.decode: bad JSON at line 1, column 7: expected value\n"
    );
    assert_eq!(
        sh.stdout("local r = {} r.self = r print(pcall(json.encode, r))"),
        "false\tjson.encode: a table that contains itself cannot be JSON\n"
    );
    assert!(sh
        .stdout("print(pcall(json.encode, {f = print}))")
        .starts_with("false\tjson.encode: a function cannot be JSON"));
    // Uncaught, the error carries the cell's line.
    let err = sh.err("x = 1\njson.decode('[1,')");
    assert!(err.message.starts_with("In["), "{}", err.message);
    assert!(
        err.message
            .contains(":2: json.decode: bad JSON at line 1, column 3"),
        "{}",
        err.message
    );
    assert!(!err.message.contains("stack traceback"), "{}", err.message);
}
