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
    /// Where a managed nats-server writes its pid.
    nats_pid_file: std::path::PathBuf,
}

impl Drop for Host {
    /// A host dropped without `stop` (a failed assertion) is SIGKILLed, which cannot stop
    /// its managed nats-server: stop that first, by the pid in its pid file, once its
    /// command line shows it is that server, so a failing test leaves no broker behind.
    fn drop(&mut self) {
        let Ok(pid) = std::fs::read_to_string(&self.nats_pid_file) else {
            return;
        };
        let pid = pid.trim();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let store = self.nats_pid_file.parent().unwrap_or(Path::new("/"));
        let ours = String::from_utf8_lossy(&cmdline).contains("nats-server")
            && String::from_utf8_lossy(&cmdline).contains(&*store.to_string_lossy());
        if ours {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
    }
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
            nats_pid_file: dir.join("data/nats/nats-server.pid"),
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

impl Host {
    /// The managed nats-server's URL, as the host printed it.
    pub fn nats_url(&self) -> String {
        let line = self
            .log
            .iter()
            .find(|l| l.contains("nats-server (managed) on "))
            .unwrap_or_else(|| panic!("no managed nats-server: {:#?}", self.log));
        line.split_whitespace()
            .find(|w| w.starts_with("nats://"))
            .unwrap()
            .trim_end_matches(',')
            .to_owned()
    }
}

/// The API of a host in `<dir>/data`, with its admin token.
pub struct Api {
    pub base: String,
    pub token: String,
    pub http: reqwest::Client,
}

impl Api {
    pub fn of(host: &Host, dir: &Path) -> Self {
        let token = std::fs::read_to_string(dir.join("data/admin.token")).unwrap();
        Self {
            base: format!("http://{}", host.api_addr()),
            token: token.trim().to_owned(),
            http: reqwest::Client::new(),
        }
    }

    /// The same API with another token.
    pub fn with_token(&self, token: &str) -> Self {
        Self {
            base: self.base.clone(),
            token: token.to_owned(),
            http: reqwest::Client::new(),
        }
    }

    pub fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    /// `method path` with an optional JSON body: the status and the JSON answer (`null`
    /// when there is none).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let mut r = self.req(method, path);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    pub async fn get(&self, path: &str) -> (reqwest::StatusCode, serde_json::Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    /// Upload `bytes` as the next version of stage `name`.
    pub async fn upload(
        &self,
        name: &str,
        bytes: Vec<u8>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let r = self
            .req(reqwest::Method::PUT, &format!("/v1/stages/{name}"))
            .header("content-type", "application/wasm")
            .body(bytes)
            .send()
            .await
            .unwrap();
        (r.status(), r.json().await.unwrap())
    }

    /// Upload the guest component at `path` as stage `name`, which must succeed.
    pub async fn deploy(&self, name: &str, path: &str) -> serde_json::Value {
        let (status, v) = self.upload(name, sluice_test_artifacts::read(path)).await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{v}");
        v
    }

    pub async fn invoke(
        &self,
        target: &str,
        key: Option<&str>,
        body: serde_json::Value,
    ) -> reqwest::Response {
        let mut r = self
            .req(
                reqwest::Method::POST,
                &format!("/v1/stages/{target}/invoke"),
            )
            .json(&body);
        if let Some(k) = key {
            r = r.header("idempotency-key", k);
        }
        r.send().await.unwrap()
    }
}
