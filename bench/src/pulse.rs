//! The Pulse server under test: a child process with a temporary data directory, listening on a
//! free loopback port (read from its "Pulse listening on" log line), plus what /proc says about it.
use std::{path::Path, process::Stdio, time::Duration};

use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader},
    process::{Child, Command},
    sync::mpsc,
};

use crate::op::{TestOp, CLIENT_ID, CLIENT_SECRET};

type AnyError = Box<dyn std::error::Error + Send + Sync>;

/// Pulse's session cookie (`pulse_server::SESSION_COOKIE_NAME`).
pub const SESSION_COOKIE: &str = "pulse_session";
pub const ADMIN_USER: &str = "bench-admin";
pub const ADMIN_PASS: &str = "bench-password-0123456789";
const LISTENING: &str = "Pulse listening on http://";

pub struct Pulse {
    child: Child,
    pub pid: u32,
    /// `http://127.0.0.1:<port>`
    pub base: String,
    pub addr: std::net::SocketAddr,
    _data: tempfile::TempDir,
}

impl Pulse {
    /// Starts `bin` with SSO pointed at `op`. Its output goes to `log`; only the binary's own
    /// start-up lines are at info level, everything else at warn, as the benchmark asks.
    pub async fn start(bin: &Path, site_root: &Path, op: &TestOp, log: &Path) -> Result<Pulse, AnyError> {
        let data = tempfile::Builder::new().prefix("pulse-bench-data-").tempdir()?;
        let mut command = Command::new(bin);
        // Nothing from the caller's environment may change what is measured.
        for (name, _) in std::env::vars() {
            if name.starts_with("PULSE_")
                || name.starts_with("OIDC_")
                || name.starts_with("LEPTOS_")
                || name == "RUST_LOG"
            {
                command.env_remove(name);
            }
        }
        command
            .env("PULSE_DATA_DIR", data.path())
            .env("PULSE_LISTEN", "127.0.0.1:0")
            .env("PULSE_AUTH_USER", ADMIN_USER)
            .env("PULSE_AUTH_PASS", ADMIN_PASS)
            .env("LEPTOS_SITE_ROOT", site_root)
            // `pulse` is the binary's own target (the listening line); the crates it is built
            // from would match the `pulse` prefix too, so they are set back to warn.
            .env(
                "RUST_LOG",
                "warn,pulse=info,pulse_server=warn,pulse_core=warn,pulse_app=warn",
            )
            .env("OIDC_ENABLED", "true")
            .env("OIDC_ISSUER_URL", op.issuer())
            .env("OIDC_CLIENT_ID", CLIENT_ID)
            .env("OIDC_CLIENT_SECRET", CLIENT_SECRET)
            .env("OIDC_SCOPES", "openid profile email groups offline_access")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|err| format!("starting {}: {err}", bin.display()))?;
        let pid = child.id().ok_or("pulse exited at once")?;

        let (lines_tx, mut lines_rx) = mpsc::unbounded_channel::<String>();
        let mut file = tokio::fs::File::create(log).await?;
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        if let Some(stdout) = stdout {
            forward(stdout, lines_tx.clone());
        }
        if let Some(stderr) = stderr {
            forward(stderr, lines_tx);
        }
        let (addr_tx, mut addr_rx) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Some(line) = lines_rx.recv().await {
                if let Some(at) = line.find(LISTENING) {
                    let rest = &line[at + LISTENING.len()..];
                    let _ = addr_tx.send(rest.split_whitespace().next().unwrap_or_default().to_owned());
                }
                let _ = file.write_all(line.as_bytes()).await;
                let _ = file.write_all(b"\n").await;
                let _ = file.flush().await;
            }
        });

        let found = tokio::time::timeout(Duration::from_secs(60), addr_rx.recv()).await;
        let addr_text = match found {
            Ok(Some(addr)) => addr,
            _ => {
                let _ = child.start_kill();
                return Err(format!("pulse did not report its address within 60 s; see {}", log.display()).into());
            }
        };
        let addr: std::net::SocketAddr = addr_text
            .parse()
            .map_err(|err| format!("address {addr_text:?}: {err}"))?;
        if !addr.ip().is_loopback() {
            let _ = child.start_kill();
            return Err(format!("pulse listens on {addr}, not on loopback").into());
        }
        Ok(Pulse {
            child,
            pid,
            base: format!("http://{addr}"),
            addr,
            _data: data,
        })
    }

    /// User + system CPU time of the whole process (all threads) so far.
    pub fn cpu_time(&self) -> Duration {
        cpu_time_of(&format!("/proc/{}/stat", self.pid))
    }

    /// Peak resident set size (VmHWM) in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        status_field(self.pid, "VmHWM:")
    }

    pub fn rss_kib(&self) -> Option<u64> {
        status_field(self.pid, "VmRSS:")
    }

    /// SIGTERM (graceful shutdown), then SIGKILL after 10 s.
    pub async fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status();
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.start_kill();
            let _ = self.child.wait().await;
        }
    }
}

fn forward(stream: impl AsyncRead + Unpin + Send + 'static, lines: mpsc::UnboundedSender<String>) {
    tokio::spawn(async move {
        let mut reader = BufReader::new(stream).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
}

fn status_field(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    line[field.len()..].split_whitespace().next()?.parse().ok()
}

/// utime + stime from a /proc/…/stat file, in clock ticks of 10 ms (USER_HZ is 100 on Linux).
pub fn cpu_time_of(stat_path: &str) -> Duration {
    let Ok(stat) = std::fs::read_to_string(stat_path) else {
        return Duration::ZERO;
    };
    // The command name is in parentheses and may contain spaces: count fields after the last ')'.
    let Some(after) = stat.rfind(')').map(|at| &stat[at + 1..]) else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After ')': state is field 3 of stat(5), so utime (14) and stime (15) are at 11 and 12.
    let ticks = |index: usize| fields.get(index).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// The load generator's own CPU time, to show how much of the machine it took.
pub fn own_cpu_time() -> Duration {
    cpu_time_of("/proc/self/stat")
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

pub fn nproc() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}
