//! The real `api-server` binary on a free loopback port, all-in-one, stopped when dropped.

use std::net::TcpListener;
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
    pub fn start_on(data: PathBuf, extra_env: &[(&str, &str)]) -> Self {
        let port = TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("address").port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_api-server"));
        command
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("DATA_DIR", &data)
            .env("OCR_WORKERS", "1")
            .env("OMP_THREAD_LIMIT", "1")
            .env("RUST_LOG", "warn")
            .env_remove("REDIS_URL")
            .env_remove("MONGODB_URL")
            .stdout(Stdio::null());
        for (name, value) in extra_env {
            command.env(name, value);
        }
        let mut process = command.spawn().expect("api-server starts");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = process.try_wait() {
                panic!("the server exited before listening ({status}); its log is above");
            }
            assert!(started.elapsed() < Duration::from_secs(30), "the server did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { process, url: format!("http://127.0.0.1:{port}"), data, owns_data: false }
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
