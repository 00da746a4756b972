//! [`Capture`]: file descriptors 1 and 2 become pipes read by the kernel, so what C
//! libraries, `io.stdout:write` and child processes write reaches the cell.
//!
//! Each descriptor is replaced by the write end of a pipe; a thread per pipe
//! (`autoawait-kernel-fd1`, `-fd2`) reads it and sends the text as `stdout` or
//! `stderr` of the latest cell (a pipe cannot tell which task wrote). The kernel's
//! own log goes to a copy of the original stderr, which a Jupyter server keeps in
//! its log. At the end of each request [`Capture::drain`] waits until the pipes are
//! empty and their text is handed on, so that output of `os.execute("echo hi")`
//! arrives before the request's `idle`.

use std::fs::File;
use std::io::{PipeReader, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags};

use crate::connection::KernelError;
use crate::outbox::Stream;
use crate::KernelOutput;

/// The longest a request's end waits for the pipes to empty.
const DRAIN_LIMIT: Duration = Duration::from_secs(1);

/// Where the kernel logs once fd 2 is captured: the original stderr.
static LOG: OnceLock<File> = OnceLock::new();

/// The original stderr, if fd 2 is captured.
pub(crate) fn log_file() -> Option<&'static File> {
    LOG.get()
}

/// One captured descriptor: the read end (to ask how much it holds) and whether
/// its reader is handing text on.
struct Pipe {
    read: PipeReader,
    busy: Arc<AtomicBool>,
}

impl Pipe {
    /// Empty, and nothing read from it is still on its way.
    fn is_drained(&self) -> bool {
        // The reader marks itself busy before it reads: a pipe found empty whose
        // reader is not busy has had all its text handed on.
        let empty = rustix::io::ioctl_fionread(self.read.as_fd()).map_or(true, |n| n == 0);
        empty && !self.busy.load(Ordering::SeqCst)
    }
}

/// File descriptors 1 and 2, captured (see the module docs).
pub(crate) struct Capture {
    pipes: Vec<Pipe>,
}

fn failed(what: &str, e: impl std::fmt::Display) -> KernelError {
    KernelError::Io(format!("cannot capture stdout and stderr: {what}: {e}"))
}

impl Capture {
    /// Replaces fds 1 and 2 by pipes whose text goes to `out`.
    pub(crate) fn start(out: &KernelOutput) -> Result<Capture, KernelError> {
        let original: OwnedFd = std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| failed("dup(2)", e))?;
        let mut pipes = Vec::new();
        for stream in [Stream::Stdout, Stream::Stderr] {
            let (read, write) = std::io::pipe().map_err(|e| failed("pipe()", e))?;
            let reader = read.try_clone().map_err(|e| failed("dup(pipe)", e))?;
            let busy = Arc::new(AtomicBool::new(false));
            let (fd, name) = match stream {
                Stream::Stdout => (1, "autoawait-kernel-fd1"),
                Stream::Stderr => (2, "autoawait-kernel-fd2"),
            };
            let thread_busy = busy.clone();
            let thread_out = out.clone();
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || read_pipe(reader, &thread_busy, &thread_out, stream))
                .map_err(|e| failed("cannot spawn the reader thread", e))?;
            if stream == Stream::Stderr {
                let _ = LOG.set(File::from(
                    original.try_clone().map_err(|e| failed("dup(2)", e))?,
                ));
            }
            let swapped = match stream {
                Stream::Stdout => rustix::stdio::dup2_stdout(&write),
                Stream::Stderr => rustix::stdio::dup2_stderr(&write),
            };
            swapped.map_err(|e| failed(&format!("dup2(pipe, {fd})"), e))?;
            pipes.push(Pipe { read, busy });
        }
        Ok(Capture { pipes })
    }

    /// Waits (at most [`DRAIN_LIMIT`]) until what was written to fds 1 and 2 so far
    /// has been handed to the outbox. Two `ioctl`s when nothing is pending.
    pub(crate) fn drain(&self) {
        let start = Instant::now();
        while !self.pipes.iter().all(Pipe::is_drained) {
            if start.elapsed() > DRAIN_LIMIT {
                crate::kernel::log(format_args!(
                    "stdout/stderr of the process still had text after {DRAIN_LIMIT:?}; it follows later"
                ));
                return;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

/// The reader thread: text from the pipe to the latest cell, UTF-8 sequences kept
/// whole across reads.
fn read_pipe(mut pipe: PipeReader, busy: &AtomicBool, out: &KernelOutput, stream: Stream) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let mut fds = [PollFd::new(&pipe, PollFlags::IN)];
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                crate::kernel::log(format_args!("captured {stream:?} cannot be polled: {e}"));
                return;
            }
        }
        busy.store(true, Ordering::SeqCst);
        let n = match pipe.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                busy.store(false, Ordering::SeqCst);
                continue;
            }
            Err(e) => {
                crate::kernel::log(format_args!("captured {stream:?} cannot be read: {e}"));
                return;
            }
        };
        pending.extend_from_slice(&buf[..n]);
        let text = take_text(&mut pending);
        if !text.is_empty() {
            out.stream(None, stream, &text);
        }
        busy.store(false, Ordering::SeqCst);
    }
}

/// The text in `bytes` up to an incomplete UTF-8 sequence at its end (kept for the
/// next read); invalid bytes become U+FFFD.
fn take_text(bytes: &mut Vec<u8>) -> String {
    let keep = match std::str::from_utf8(bytes) {
        Ok(_) => 0,
        Err(e) if e.error_len().is_none() => bytes.len() - e.valid_up_to(),
        Err(_) => {
            // Invalid in the middle: find an incomplete tail, if any.
            let tail = bytes.len().saturating_sub(3);
            (tail..bytes.len())
                .find(|&i| {
                    std::str::from_utf8(&bytes[i..])
                        .err()
                        .is_some_and(|e| e.valid_up_to() == 0 && e.error_len().is_none())
                })
                .map_or(0, |i| bytes.len() - i)
        }
    };
    let rest = bytes.split_off(bytes.len() - keep);
    let text = String::from_utf8_lossy(bytes).into_owned();
    *bytes = rest;
    text
}

#[cfg(test)]
mod tests {
    use super::take_text;

    #[test]
    fn utf8_split_across_reads_is_kept_whole() {
        let word = "héllo".as_bytes();
        let mut pending = word[..2].to_vec();
        assert_eq!(take_text(&mut pending), "h");
        pending.extend_from_slice(&word[2..]);
        assert_eq!(take_text(&mut pending), "éllo");
        assert!(pending.is_empty());
        let mut bad = vec![b'a', 0xff, b'b'];
        assert_eq!(take_text(&mut bad), "a\u{fffd}b");
    }
}
