//! Finding, starting and watching the `chat-server` under test.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

type Failure = Box<dyn std::error::Error>;

/// The server binary: the given path, or `chat-server` beside this tool, built when missing.
pub fn binary(given: Option<&str>) -> Result<PathBuf, Failure> {
    if let Some(path) = given {
        return Ok(PathBuf::from(path));
    }
    let here = std::env::current_exe()?;
    let dir = here.parent().ok_or("no directory for this executable")?;
    let path = dir.join("chat-server");
    if !path.exists() {
        let release = dir.ends_with("release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "-p", "chat-http", "--bin", "chat-server"]);
        if release {
            build.arg("--release");
        }
        if !build.status()?.success() {
            return Err("building chat-server failed".into());
        }
    }
    Ok(path)
}

/// A running server; killed when dropped.
pub struct Running {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Running {
    /// Starts `binary` on `database` (with more `flags`) with rate limits off (the load would
    /// trip them).
    pub fn start(binary: &PathBuf, database: &str, flags: &[String]) -> Result<Self, Failure> {
        let mut child = Command::new(binary)
            .args([
                "--bind",
                "127.0.0.1:0",
                "--database",
                database,
                "--log",
                "warn",
            ])
            .args([
                "--auth-per-minute",
                "0",
                "--sends-per-second",
                "0",
                "--failed-logins",
                "0",
            ])
            .args(flags)
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let line = lines
                .next()
                .ok_or("chat-server exited before listening")??;
            if let Some(rest) = line.strip_prefix("chat-server listening on ") {
                break rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
            }
        };
        // Keep draining its output so it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Ok(Self { child, base })
    }

    /// The server's resident memory in KiB, from `/proc`.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
