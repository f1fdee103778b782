//! Helpers shared by the control crate's end-to-end tests (each test binary includes this
//! module): a child process with its output captured, killed and reaped on drop whatever the
//! test did; the `hft` command; the HTTP client and JSON GET the tests talk to it with.

#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running child: stdout as a channel of lines, stderr accumulated in the background.
pub struct Running {
    pub child: Child,
    pub stdout: mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
    /// Set once stderr reached its end (the process and everything holding the pipe exited).
    stderr_closed: Arc<AtomicBool>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    /// Spawns `cmd` with stdin closed and stdout/stderr captured.
    pub fn spawn(mut cmd: Command) -> Running {
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn");
        let stderr = Arc::new(Mutex::new(String::new()));
        let stderr_closed = Arc::new(AtomicBool::new(false));
        if let Some(mut pipe) = child.stderr.take() {
            let (sink, closed) = (stderr.clone(), stderr_closed.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if let Ok(mut s) = sink.lock() {
                        s.push_str(&String::from_utf8_lossy(&buf[..n]));
                    }
                }
                closed.store(true, Ordering::Release);
            });
        }
        let (tx, rx) = mpsc::channel();
        if let Some(pipe) = child.stdout.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Running { child, stdout: rx, stderr, stderr_closed }
    }

    /// Everything written to stderr so far.
    pub fn stderr_text(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Polls `cond` every 50 ms until it holds; fails the test, with stderr, if it does not
    /// within `within`.
    pub fn wait_until(&self, what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
        let t0 = Instant::now();
        while !cond() {
            assert!(t0.elapsed() < within, "{what}: not within {within:?}; stderr:\n{}", self.stderr_text());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The first stdout line containing `marker`, within `within`.
    pub fn line_with(&self, marker: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(line) = self.stdout.recv_timeout(Duration::from_millis(200))
                && line.contains(marker)
            {
                return line;
            }
        }
        panic!("no stdout line with {marker:?} within {within:?}; stderr:\n{}", self.stderr_text());
    }

    pub fn signal(&self, sig: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) has no memory-safety preconditions; `pid` is our own live child
        // (not yet reaped, so the pid cannot have been reused).
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(rc, 0, "kill({pid}, {sig}) failed");
    }

    /// Waits up to `within` for the process to exit.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let t0 = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // What it wrote just before exiting may still be in the pipe: read to its end
                // (bounded, in case something else still holds it), so `stderr_text` is whole.
                let read_by = Instant::now() + Duration::from_secs(5);
                while !self.stderr_closed.load(Ordering::Acquire) && Instant::now() < read_by {
                    std::thread::sleep(Duration::from_millis(5));
                }
                return status;
            }
            assert!(t0.elapsed() < within, "still running after {within:?}; stderr:\n{}", self.stderr_text());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The `hft` binary run from `dir` with a cleared environment: only what the test sets.
pub fn hft(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hft"));
    cmd.current_dir(dir).env_clear().env("RUST_LOG", "info");
    cmd
}

/// The port of the address after `prefix` in a banner line (`… ws://127.0.0.1:PORT …`).
pub fn port_after(line: &str, prefix: &str) -> u16 {
    let rest = line.split(prefix).nth(1).unwrap_or_else(|| panic!("{prefix:?} not in {line:?}"));
    let authority = rest.split(|c: char| c.is_whitespace() || c == '/').next().unwrap_or("");
    authority.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("no port in {line:?}"))
}

/// An HTTP client that answers error statuses as responses (the tests check them) and gives up
/// after 10 s.
pub fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(10))).build(),
    )
}

/// `GET http://127.0.0.1:{port}{path}`: the status and the JSON body (null when not JSON).
pub fn get(port: u16, path: &str) -> (u16, Value) {
    let mut res =
        agent().get(&format!("http://127.0.0.1:{port}{path}")).call().unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = res.status().as_u16();
    (status, res.body_mut().read_json::<Value>().unwrap_or(Value::Null))
}
