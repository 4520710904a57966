//! A real `kezek serve` process for the `load` and `rss` commands: the binary found,
//! started on a data folder, its address read from what it prints, its memory read from
//! `/proc`, API tokens made with `kezek admin`, and killed.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::distr::{Alphanumeric, SampleString};

/// Lines of the server's output kept for error messages.
const LOG_LINES: usize = 200;

/// Finds the `kezek` binary: `explicit` (a `--kezek` option), else `$KEZEK_BIN`, else
/// beside the running executable (`target/release/kezek` when this command runs from
/// `target/release/`), else `$CARGO_TARGET_DIR/release/kezek`, else
/// `target/release/kezek` under the current folder.
pub fn locate_kezek(explicit: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(format!("--kezek: no file at {}", p.display()))
        };
    }
    if let Some(p) = std::env::var_os("KEZEK_BIN") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("KEZEK_BIN: no file at {}", p.display()))
        };
    }
    let name = format!("kezek{}", std::env::consts::EXE_SUFFIX);
    let mut tried = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        tried.push(dir.join(&name));
    }
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        tried.push(PathBuf::from(t).join("release").join(&name));
    }
    tried.push(PathBuf::from("target").join("release").join(&name));
    if let Some(p) = tried.iter().find(|p| p.is_file()) {
        return Ok(p.clone());
    }
    Err(format!(
        "no kezek binary: build it first with `cargo build --release -p kezek-admin`, or name it \
         with --kezek PATH or KEZEK_BIN (looked at: {})",
        tried
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// Runs `kezek --data DATA ARGS...` to the end, `stdin` on its standard input; its
/// standard output, or an error naming the command, its exit code and standard error.
pub fn kezek_cli(
    bin: &Path,
    data: &Path,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<String, String> {
    let what = format!("kezek {}", args.join(" "));
    let mut child = Command::new(bin)
        .arg("--data")
        .arg(data)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{what}: cannot start {}: {e}", bin.display()))?;
    if let Some(mut input) = child.stdin.take() {
        if let Some(text) = stdin {
            input
                .write_all(text.as_bytes())
                .map_err(|e| format!("{what}: cannot write its input: {e}"))?;
        }
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{what}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Adds a console account `name` with `role` (a random password) and returns a new API
/// token for it. `kezek admin` does not open the sled store, so this works while the
/// server runs.
pub fn add_token(bin: &Path, data: &Path, name: &str, role: &str) -> Result<String, String> {
    let password = Alphanumeric.sample_string(&mut rand::rng(), 24);
    kezek_cli(
        bin,
        data,
        &["admin", "add-user", name, "--role", role],
        Some(&format!("{password}\n")),
    )?;
    let token = kezek_cli(bin, data, &["admin", "token", name], None)?;
    if token.is_empty() || token.contains(char::is_whitespace) {
        return Err(format!(
            "kezek admin token {name} printed no token: '{token}'"
        ));
    }
    Ok(token)
}

/// Resident memory of a process, from `/proc/PID/status`.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss_kib: u64,
    /// `VmHWM`: the peak resident size so far.
    pub hwm_kib: u64,
}

impl Memory {
    pub fn rss_mib(&self) -> f64 {
        self.rss_kib as f64 / 1024.0
    }
    pub fn hwm_mib(&self) -> f64 {
        self.hwm_kib as f64 / 1024.0
    }
}

/// Reads `VmRSS` and `VmHWM` of a process (Linux).
pub fn memory_of(pid: u32) -> Result<Memory, String> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let field = |name: &str| -> Result<u64, String> {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().strip_suffix("kB"))
            .and_then(|n| n.trim().parse().ok())
            .ok_or_else(|| format!("{path}: no {name} line in kB"))
    };
    Ok(Memory {
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:")?,
    })
}

/// A running `kezek serve`. Dropping it kills the process.
pub struct Server {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<VecDeque<String>>>,
    started_in: Duration,
}

fn keep_lines(
    from: impl Read + Send + 'static,
    log: Arc<Mutex<VecDeque<String>>>,
    tell: Option<mpsc::Sender<String>>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            if let Some(t) = &tell {
                let _ = t.send(line.clone());
            }
            if let Ok(mut l) = log.lock() {
                if l.len() == LOG_LINES {
                    l.pop_front();
                }
                l.push_back(line);
            }
        }
    });
}

/// The address in `Kezek console listening on http://ADDR/ (API under /api/)`.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = line.split_once("listening on http://")?.1;
    rest.split('/').next()?.parse().ok()
}

impl Server {
    /// Starts `kezek --data DATA serve --listen 127.0.0.1:0` with `envs` added to its
    /// environment and waits (at most `limit`) for the address it prints. A new data
    /// folder gets the demo city (`KEZEK_DEMO_SCALE=small` for the small one).
    pub fn start(
        bin: &Path,
        data: &Path,
        envs: &[(&str, &str)],
        limit: Duration,
    ) -> Result<Server, String> {
        let started = Instant::now();
        let mut child = Command::new(bin)
            .arg("--data")
            .arg(data)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {} serve: {e}", bin.display()))?;
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, rx) = mpsc::channel();
        if let Some(out) = child.stdout.take() {
            keep_lines(out, log.clone(), Some(tx));
        }
        if let Some(err) = child.stderr.take() {
            keep_lines(err, log.clone(), None);
        }
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
            started_in: Duration::ZERO,
        };
        loop {
            let left = limit.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(format!(
                    "kezek serve printed no address within {} s; its output:\n{}",
                    limit.as_secs(),
                    server.log_tail()
                ));
            }
            match rx.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(line) => {
                    if let Some(addr) = listening_addr(&line) {
                        server.addr = addr;
                        server.started_in = started.elapsed();
                        return Ok(server);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // Standard output closed: the process is ending; let it finish.
                    std::thread::sleep(Duration::from_millis(100));
                    let status = server.child.try_wait().ok().flatten();
                    return Err(format!(
                        "kezek serve ended before listening ({}); its output:\n{}",
                        status.map_or("still running".to_string(), |s| s.to_string()),
                        server.log_tail()
                    ));
                }
            }
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// From the start of the process to the printed address (store opened or created).
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// `VmRSS` and `VmHWM` of the server now; an error if it has ended.
    pub fn memory(&mut self) -> Result<Memory, String> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Err(format!(
                "kezek serve has ended ({status}); its output:\n{}",
                self.log_tail()
            ));
        }
        memory_of(self.pid())
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The last lines the server printed.
    pub fn log_tail(&self) -> String {
        self.log
            .lock()
            .map(|l| l.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }

    /// Kills the server at once (SIGKILL: no graceful shutdown, no snapshot on exit) and
    /// waits for it: whatever it acknowledged must already be on disk.
    pub fn kill(mut self) -> Result<(), String> {
        self.child
            .kill()
            .and_then(|_| self.child.wait().map(|_| ()))
            .map_err(|e| format!("cannot kill kezek serve: {e}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_printed_address() {
        assert_eq!(
            listening_addr("Kezek console listening on http://127.0.0.1:41234/ (API under /api/)"),
            Some(SocketAddr::from(([127, 0, 0, 1], 41234)))
        );
        assert_eq!(listening_addr("demo city built in 1.2 s"), None);
    }

    #[test]
    fn reads_its_own_memory() {
        let m = memory_of(std::process::id()).expect("own /proc status");
        assert!(m.rss_kib > 0 && m.hwm_kib >= m.rss_kib);
    }
}
