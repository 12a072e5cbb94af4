//! The all-in-one mode keeps its queue in memory: receipts accepted before a restart and not yet
//! read are queued again when the server comes back, and get read.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::server::{Server, get};

#[test]
fn receipts_left_unfinished_by_a_stopped_server_are_read_after_a_restart() {
    let data = std::env::temp_dir().join(finagent_platform::testkit::unique_name("finagent-restart"));
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/../ocr-worker/tests/fixtures/receipts/000.jpg");
    // First run: no OCR threads, so the upload stays queued in memory.
    let task = {
        let server = Server::start_on(data.clone(), &[("OCR_WORKERS", "0")]);
        let body = json!({"username": "restart", "email": "restart@example.com", "password": "a restart passphrase"});
        server.post_json("/api/auth/register", &body);
        let login: Value = serde_json::from_str(
            &server.post_json("/api/auth/login", &json!({"username": "restart", "password": "a restart passphrase"})),
        )
        .expect("json");
        let token = login["access_token"].as_str().expect("token").to_owned();
        let output = Command::new("curl")
            .args(["-sf", &format!("{}/api/ocr/process", server.url), "-H", &format!("authorization: Bearer {token}")])
            .args(["-F", &format!("file=@{fixture}")])
            .output()
            .expect("curl");
        let task: Value = serde_json::from_slice(&output.stdout).expect("task");
        assert_eq!(task["status"], "queued");
        (task["task_id"].as_str().expect("id").to_owned(), token)
    };
    // Second run, same data, with OCR: the receipt is read.
    let server = Server::start_on(data.clone(), &[("OCR_WORKERS", "1")]);
    let login: Value = serde_json::from_str(
        &server.post_json("/api/auth/login", &json!({"username": "restart", "password": "a restart passphrase"})),
    )
    .expect("json");
    let token = login["access_token"].as_str().expect("token");
    let started = Instant::now();
    loop {
        let status: Value =
            serde_json::from_str(&get(&server, &format!("/api/ocr/status/{}", task.0), token)).expect("status");
        if status["status"] == "done" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "still {status} after a minute");
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(server);
    std::fs::remove_dir_all(&data).ok();
}
