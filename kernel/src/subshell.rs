//! [`Subshells`]: kernel subshells (JEP 91), each a shell of its own on its own thread.
//!
//! `create_subshell_request` on control starts one: a thread that serves the
//! `execute_request`s (and other shell requests) whose header carries its
//! `subshell_id`, with a session made by [`Session::subshell`](crate::Session::subshell),
//! concurrently with the main shell. `delete_subshell_request` ends it once the
//! requests already queued for it are done.

use std::sync::mpsc as std_mpsc;
use std::sync::{Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::kernel::Job;
use crate::output::lock;
use crate::wire;

/// A running subshell: its queue and its thread.
pub(crate) struct Shell {
    pub(crate) jobs: std_mpsc::Sender<Job>,
    pub(crate) thread: JoinHandle<()>,
}

/// Starts the thread of subshell `id`.
pub(crate) type Spawn = Box<dyn Fn(&str) -> Result<Shell, String> + Send + Sync>;

/// The subshells of a kernel (see the module docs).
#[derive(Default)]
pub(crate) struct Subshells {
    spawn: OnceLock<Spawn>,
    shells: Mutex<Vec<(String, Shell)>>,
}

impl Subshells {
    /// The session can run subshells (set when the kernel starts serving).
    pub(crate) fn enable(&self, spawn: Spawn) {
        let _ = self.spawn.set(spawn);
    }

    pub(crate) fn supported(&self) -> bool {
        self.spawn.get().is_some()
    }

    /// Starts a subshell; its id.
    pub(crate) fn create(&self) -> Result<String, String> {
        let spawn = self.spawn.get().ok_or_else(|| {
            "this kernel's session does not run subshells (or is not serving yet)".to_owned()
        })?;
        let id = wire::new_id();
        let shell = spawn(&id)?;
        lock(&self.shells).push((id.clone(), shell));
        Ok(id)
    }

    /// Ends subshell `id` after the requests queued for it.
    pub(crate) fn delete(&self, id: &str) -> Result<(), String> {
        let mut shells = lock(&self.shells);
        match shells.iter().position(|(s, _)| s == id) {
            // Dropping its queue's sender ends its loop; the thread goes by itself.
            Some(i) => {
                shells.remove(i);
                Ok(())
            }
            None => Err(self.unknown(&shells, id)),
        }
    }

    fn unknown(&self, shells: &[(String, Shell)], id: &str) -> String {
        let ids: Vec<&str> = shells.iter().map(|(s, _)| s.as_str()).collect();
        if ids.is_empty() {
            format!("no subshell `{id}`: there are none (create_subshell_request makes one)")
        } else {
            format!("no subshell `{id}`; the subshells are {}", ids.join(", "))
        }
    }

    /// The ids, oldest first.
    pub(crate) fn list(&self) -> Vec<String> {
        lock(&self.shells).iter().map(|(s, _)| s.clone()).collect()
    }

    /// Where requests for subshell `id` go.
    pub(crate) fn queue(&self, id: &str) -> Result<std_mpsc::Sender<Job>, String> {
        let shells = lock(&self.shells);
        match shells.iter().find(|(s, _)| s == id) {
            Some((_, shell)) => Ok(shell.jobs.clone()),
            None => Err(self.unknown(&shells, id)),
        }
    }

    /// Ends every subshell and waits up to `grace` for their threads.
    pub(crate) fn stop_all(&self, grace: Duration) {
        let shells = std::mem::take(&mut *lock(&self.shells));
        let threads: Vec<JoinHandle<()>> = shells.into_iter().map(|(_, s)| s.thread).collect();
        let start = Instant::now();
        for t in threads {
            while !t.is_finished() && start.elapsed() < grace {
                std::thread::sleep(Duration::from_millis(5));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}
