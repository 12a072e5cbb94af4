//! The real `api-server` binary on a free loopback port, all-in-one, stopped when dropped.

/// The address of an `api listening http.address=127.0.0.1:PORT` log line.
fn listening_address(line: &str) -> Option<String> {
    if !line.contains("api listening") {
        return None;
    }
    let value = line.split("http.address=").nth(1)?;
    Some(value.split_whitespace().next()?.trim_matches('"').to_owned())
}

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server.
pub struct Server {
    process: Child,
    /// Its base URL.
    pub url: String,
    /// Its data folder.
    pub data: PathBuf,
    /// Whether dropping the server removes the data folder.
    owns_data: bool,
}

impl Server {
    /// Starts `api-server serve` with one in-process OCR thread and extra environment variables.
    pub fn start(extra_env: &[(&str, &str)]) -> Self {
        let data = std::env::temp_dir().join(finagent_platform::testkit::unique_name("finagent-server"));
        let mut server = Self::start_on(data, extra_env);
        server.owns_data = true;
        server
    }

    /// Starts on an existing data folder, which outlives the server (for restarts).
    ///
    /// The server binds port 0 itself and the address it got is read from its `api listening`
    /// log line: a port picked here and bound there could be taken by another test's server in
    /// between, and this test would then talk to that one.
    pub fn start_on(data: PathBuf, extra_env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_api-server"));
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("DATA_DIR", &data)
            .env("OCR_WORKERS", "1")
            .env("OMP_THREAD_LIMIT", "1")
            .env("NO_COLOR", "1")
            .env_remove("REDIS_URL")
            .env_remove("MONGODB_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut log_level = "warn".to_owned();
        for (name, value) in extra_env {
            if *name == "RUST_LOG" {
                log_level = (*value).to_owned();
            } else {
                command.env(name, value);
            }
        }
        command.env("RUST_LOG", format!("{log_level},finagent_api_server::server=info"));
        let mut process = command.spawn().expect("api-server starts");
        let (found, address) = std::sync::mpsc::channel();
        let stderr = process.stderr.take().expect("stderr");
        // Passes the server's log on (a failing test shows it) and reports its address.
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(listening) = listening_address(&line) {
                    let _ = found.send(listening);
                } else {
                    eprintln!("{line}");
                }
            }
        });
        let started = Instant::now();
        let address = loop {
            if let Ok(address) = address.recv_timeout(Duration::from_millis(50)) {
                break address;
            }
            if let Ok(Some(status)) = process.try_wait() {
                panic!("the server exited before listening ({status}); its log is above");
            }
            assert!(started.elapsed() < Duration::from_secs(30), "the server did not listen");
        };
        Self { process, url: format!("http://{address}"), data, owns_data: false }
    }

    /// `curl` a JSON body to a path; returns the response body.
    pub fn post_json(&self, path: &str, body: &serde_json::Value) -> String {
        let output = Command::new("curl")
            .args([
                "-sS",
                "--fail-with-body",
                &format!("{}{path}", self.url),
                "-H",
                "content-type: application/json",
                "-d",
                &body.to_string(),
            ])
            .output()
            .expect("curl runs");
        assert!(
            output.status.success(),
            "POST {path} failed: {} {}",
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8(output.stdout).expect("utf-8")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.process.kill().ok();
        self.process.wait().ok();
        if self.owns_data {
            std::fs::remove_dir_all(&self.data).ok();
        }
    }
}

/// `curl` a GET with a bearer token; returns the body.
pub fn get(server: &Server, path: &str, token: &str) -> String {
    let output = Command::new("curl")
        .args(["-sf", &format!("{}{path}", server.url), "-H", &format!("authorization: Bearer {token}")])
        .output()
        .expect("curl runs");
    String::from_utf8(output.stdout).expect("utf-8")
}
