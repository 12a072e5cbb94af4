//! Servers the tests run beside the cluster: a health endpoint with a switchable answer, and Redis.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::*;

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("binds").local_addr().expect("address").port()
}

/// A real HTTP server on loopback answering the API's health check: 200 until a test makes it
/// fail (`set_status(503)`), as the pods of a broken version would.
#[derive(Debug)]
pub struct HealthServer {
    pub port: u16,
    status: std::sync::Arc<std::sync::atomic::AtomicU16>,
}

impl HealthServer {
    pub fn start() -> Self {
        Self::answering(200)
    }

    /// A server answering `status` from the start.
    pub fn answering(status: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
        let port = listener.local_addr().expect("address").port();
        let answer = std::sync::Arc::new(std::sync::atomic::AtomicU16::new(status));
        let shared = answer.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut buffer = [0u8; 2048];
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = stream.read(&mut buffer);
                let response = match shared.load(std::sync::atomic::Ordering::SeqCst) {
                    200 => "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\nready".to_owned(),
                    code => format!("HTTP/1.1 {code} Failing\r\nContent-Type: text/plain\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot ready"),
                };
                let _ = stream.write_all(response.as_bytes());
            }
        });
        Self { port, status: answer }
    }

    /// What the health check answers from now on.
    pub fn set_status(&self, status: u16) {
        self.status.store(status, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A real Redis server on loopback, stopped on drop.
#[derive(Debug)]
pub struct RedisServer {
    pub port: u16,
    password: Option<String>,
    child: Option<Child>,
}

impl RedisServer {
    pub fn start(port: u16, password: Option<&str>) -> Self {
        let mut command = Command::new("redis-server");
        command.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
        if let Some(password) = password {
            command.args(["--requirepass", password]);
        }
        let child = command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("redis-server starts");
        let server = Self { port, password: password.map(str::to_owned), child: Some(child) };
        wait_for(Duration::from_secs(10), "redis to answer", || (server.cli(&["PING"]).trim() == "PONG").then_some(()));
        server
    }

    /// Runs `redis-cli` against it and returns what it printed.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut command = Command::new("redis-cli");
        command.args(["-p", &self.port.to_string(), "--no-auth-warning"]);
        if let Some(password) = &self.password {
            command.args(["-a", password]);
        }
        let output = command.args(args).output().expect("redis-cli runs");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes (`STOP`) or thaws (`CONT`) the server: connections stay open, nothing is answered.
    pub fn freeze(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id();
        assert!(Command::new("kill").args([&format!("-{signal}"), &pid.to_string()]).status().expect("kill").success());
    }

    /// Whether a client's command sits unread in one of the server's sockets (`/proc/net/tcp`: an
    /// established connection on the server's port with bytes in its receive queue).
    pub fn has_unread_request(&self) -> bool {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        let port = format!("{:04X}", self.port);
        table.lines().skip(1).any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state), Some(queues)) = (fields.get(1), fields.get(3), fields.get(4)) else {
                return false;
            };
            let receive = queues.split(':').nth(1).and_then(|hex| u64::from_str_radix(hex, 16).ok()).unwrap_or(0);
            local.ends_with(&format!(":{port}")) && *state == "01" && receive > 0
        })
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
