//! The REPL through a pseudo-terminal (util-linux `script`): Ctrl-C at the prompt
//! drops the line, Ctrl-C cancels the running cell promptly, the next cell works,
//! Ctrl-D exits cleanly; on a real terminal, Tab completes, continuation lines
//! show `   ...: `, `name?` gives help and `exit` leaves.

mod common;

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::has;

struct Pty {
    child: Child,
    input: ChildStdin,
    screen: Arc<Mutex<String>>,
}

impl Pty {
    /// Starts the REPL under `script` on a terminal of type `term`.
    ///
    /// # Panics
    ///
    /// If util-linux `script` is not installed: these tests need a terminal.
    fn start(runner: &str, term: &str) -> Pty {
        // `script` runs the command through `$SHELL` (dash when unset, as in
        // CI). `exec` makes the REPL the only process on the terminal, so
        // Ctrl-C reaches it alone and its exit status is the session's.
        let cmd = format!(
            "exec '{}' --runner {runner}",
            env!("CARGO_BIN_EXE_autoawait")
        );
        let mut child = Command::new("script")
            .args(["-q", "-e", "-f", "-c", &cmd, "/dev/null"])
            .env("TERM", term)
            .env("HOME", std::env::temp_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("util-linux `script` runs the REPL on a pseudo-terminal: install it");
        let input = child.stdin.take().unwrap();
        let mut output = child.stdout.take().unwrap();
        let screen = Arc::new(Mutex::new(String::new()));
        let sink = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = output.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Pty {
            child,
            input,
            screen,
        }
    }

    fn send(&mut self, bytes: &str) {
        self.input.write_all(bytes.as_bytes()).unwrap();
        self.input.flush().unwrap();
    }

    /// What the terminal showed, without its control sequences.
    fn plain(&self) -> String {
        let screen = self.screen.lock().unwrap();
        let mut out = String::new();
        let mut chars = screen.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\x1b' && chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else if c != '\r' {
                out.push(c);
            }
        }
        out
    }

    /// Waits until the screen shows `text`; fails after `secs`.
    fn expect(&self, text: &str, secs: u64) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(secs) {
            if self.screen.lock().unwrap().contains(text) || self.plain().contains(text) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "{text:?} did not show within {secs} s; the screen:\n{}",
            self.screen.lock().unwrap()
        );
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn ctrl_c_drops_the_line_or_cancels_the_cell_and_the_repl_goes_on() {
    for runner in ["inline", "tokio"] {
        if !has(runner) {
            continue;
        }
        let mut pty = Pty::start(runner, "dumb");
        pty.expect("In [1]: ", 20);
        // Ctrl-C at the prompt drops the line typed so far and says so.
        pty.send("error('this line must not run')\x03");
        pty.expect("KeyboardInterrupt", 5);
        // The terminal echoes what is typed: wait for text only the running
        // cell prints, so Ctrl-C reaches the cell and not the line editor.
        pty.send("print('slee' .. 'ping'); await(sleep(30))\n");
        pty.expect("sleeping", 20);
        std::thread::sleep(Duration::from_millis(200));
        let sent = Instant::now();
        pty.send("\x03");
        pty.expect("Cancelled: the cell was cancelled", 5);
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "the prompt came back late"
        );
        pty.expect("In [2]: ", 5);
        pty.send("1 + 1\n");
        pty.expect("Out[2]: 2", 10);
        // A multi-line cell: complete once Lua can parse it.
        pty.send("function f()\nreturn 3\nend\n");
        pty.expect("In [4]: ", 10);
        pty.send("f()\n");
        pty.expect("Out[4]: 3", 10);
        pty.send("\x04");
        exits(&mut pty, &format!("Ctrl-D under {runner}"));
    }
}

/// Waits for the REPL to exit with success.
fn exits(pty: &mut Pty, what: &str) {
    let start = Instant::now();
    loop {
        if let Some(status) = pty.child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status} after {what}");
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{what} did not exit"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn tab_completes_continuation_lines_help_and_exit_on_a_terminal() {
    let mut pty = Pty::start("inline", "xterm");
    pty.expect("In [1]: ", 20);
    pty.send("string.fo\t");
    pty.expect("In [1]: string.format", 5);
    pty.send("('%d', 7)\n");
    pty.expect("Out[1]: \"7\"", 10);
    // Runner names after %autoawait.
    pty.send("%autoawait tokio-per-c\t");
    pty.expect("%autoawait tokio-per-cell", 5);
    pty.send("\n");
    pty.expect("set to use `tokio-per-cell`", 10);
    // An unfinished cell continues on `   ...: ` lines.
    pty.send("for i = 1, 2 do\n");
    pty.expect("   ...: ", 5);
    // Line by line, as typed: the editor reads each line when it asks for it.
    pty.send("print('line', i)\n");
    std::thread::sleep(Duration::from_millis(300));
    pty.send("end\n");
    pty.expect("line\t2", 10);
    pty.send("await?\n");
    pty.expect("wait for an awaitable", 5);
    pty.send("exit\n");
    exits(&mut pty, "exit");
}
