//! A real `redis-server` for tests: a child process on a free loopback port, killed on drop.
//! Without the binary the test is skipped with a printed reason, except in CI (`CI` set, as
//! `.ci/run` does), where a missing Redis fails the test. Test support only (unit and
//! integration tests share it), hence the panics.

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::Duration,
};

/// A running `redis-server`.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    /// `redis://127.0.0.1:<port>`.
    pub url: String,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(port: &str) -> std::io::Result<Child> {
    Command::new("redis-server")
        .args(["--port", port, "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}

impl RedisServer {
    /// Starts one, or returns `None` after printing `SKIPPED:` when the binary is missing
    /// outside CI. Panics in CI without the binary, and when the server does not come up.
    pub async fn start(test: &str) -> Option<RedisServer> {
        let port = match TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
            Ok(addr) => addr.port(),
            Err(e) => panic!("{test}: no free loopback port: {e}"),
        };
        let spawned = spawn(&port.to_string());
        let child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "{test}: redis-server is not installed, and CI requires it (apt-get install redis-server)"
                );
                println!(
                    "SKIPPED: {test}: redis-server is not installed (apt-get install redis-server)"
                );
                return None;
            }
            Err(e) => panic!("{test}: cannot start redis-server: {e}"),
        };
        let server = RedisServer {
            child,
            url: format!("redis://127.0.0.1:{port}"),
        };
        server.wait_ready().await;
        Some(server)
    }

    /// Polls PING, at most 200 times, 25 ms apart.
    async fn wait_ready(&self) {
        let Ok(client) = redis::Client::open(self.url.as_str()) else {
            panic!("{} is not a valid redis URL", self.url);
        };
        for _ in 0..200 {
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await {
                let pong: redis::RedisResult<String> =
                    redis::cmd("PING").query_async(&mut conn).await;
                if pong.is_ok() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("redis-server on {} did not answer PING", self.url);
    }

    /// Stops the server (to test behaviour while Redis is down).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts a fresh (empty) server on the same port after [`kill`](Self::kill), as a
    /// Redis coming back after an outage.
    pub async fn restart(&mut self) {
        self.kill();
        let port = self.url.rsplit(':').next().unwrap_or_default().to_owned();
        self.child = match spawn(&port) {
            Ok(child) => child,
            Err(e) => panic!("cannot restart redis-server: {e}"),
        };
        self.wait_ready().await;
    }
}
