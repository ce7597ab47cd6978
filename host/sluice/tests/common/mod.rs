//! What the `sluice` binary's integration tests share: a host child process.

#![allow(dead_code, reason = "each test file uses a part")]

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sluice_tests::KillOnDrop;

/// A host child process and the lines of its stderr.
pub struct Host {
    pub child: KillOnDrop,
    pub lines: std::sync::mpsc::Receiver<String>,
    pub log: Vec<String>,
}

impl Host {
    /// Start `sluice --cache-dir <dir>/cache up --data-dir <dir>/data --nats <url> <extra>`
    /// and wait for it to come up.
    pub fn start(dir: &Path, nats: &str, extra: &[&std::ffi::OsStr]) -> Self {
        let mut args = extra.to_vec();
        args.extend([std::ffi::OsStr::new("--nats"), nats.as_ref()]);
        Self::spawn(dir, &args)
    }

    /// Start `sluice --cache-dir <dir>/cache up --data-dir <dir>/data --listen 127.0.0.1:0
    /// <args>` and wait for it to come up.
    pub fn spawn(dir: &Path, args: &[&std::ffi::OsStr]) -> Self {
        let mut child = KillOnDrop(
            Command::new(env!("CARGO_BIN_EXE_sluice"))
                .arg("--cache-dir")
                .arg(dir.join("cache"))
                .arg("up")
                .args(args)
                .arg("--data-dir")
                .arg(dir.join("data"))
                .args(["--listen", "127.0.0.1:0"])
                .stderr(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        let mut host = Self {
            child,
            lines,
            log: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        while !host.log.iter().any(|l| l.contains("sluice is up")) {
            assert!(
                Instant::now() < deadline,
                "host did not come up: {:#?}",
                host.log
            );
            if let Ok(line) = host.lines.recv_timeout(Duration::from_millis(100)) {
                host.log.push(line);
            }
        }
        host
    }

    /// The API's address, as the host printed it (`api on http://ADDR/v1 ...`).
    pub fn api_addr(&self) -> String {
        let line = self
            .log
            .iter()
            .find(|l| l.contains("api on http://"))
            .unwrap_or_else(|| panic!("no API line: {:#?}", self.log));
        let rest = &line[line.find("http://").unwrap() + 7..];
        rest[..rest.find("/v1").unwrap()].to_owned()
    }

    /// SIGTERM, and wait for a clean exit that drained the outbox.
    pub fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        self.log.extend(self.lines.try_iter());
        assert!(exit.success(), "host exited with {exit}: {:#?}", self.log);
        assert!(
            self.log.iter().any(|l| l.contains("outbox drained")),
            "{:#?}",
            self.log
        );
    }
}
