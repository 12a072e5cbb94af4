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

/// Status of a bearer GET.
fn status_of(server: &Server, path: &str, token: &str) -> String {
    let output = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", &format!("{}{path}", server.url)])
        .args(["-H", &format!("authorization: Bearer {token}")])
        .output()
        .expect("curl");
    String::from_utf8(output.stdout).expect("utf-8")
}

/// Without Redis, a logout (and every other revocation) is kept in the embedded store: a restart
/// with the same signing key does not bring the logged-out token back.
#[test]
fn a_token_logged_out_before_a_restart_stays_refused_after_it() {
    let data = std::env::temp_dir().join(finagent_platform::testkit::unique_name("finagent-revoked"));
    let key = [("JWT_SECRET_KEY", "a fixed signing key of at least thirty-two bytes"), ("OCR_WORKERS", "0")];
    let (revoked, kept) = {
        let server = Server::start_on(data.clone(), &key);
        let body = json!({"username": "revoked", "email": "revoked@example.com", "password": "a revoked passphrase"});
        server.post_json("/api/auth/register", &body);
        let sign_in = || -> String {
            let login: Value = serde_json::from_str(
                &server
                    .post_json("/api/auth/login", &json!({"username": "revoked", "password": "a revoked passphrase"})),
            )
            .expect("json");
            login["access_token"].as_str().expect("token").to_owned()
        };
        let (revoked, kept) = (sign_in(), sign_in());
        let output = Command::new("curl")
            .args(["-sf", "-X", "POST", &format!("{}/api/auth/logout", server.url)])
            .args(["-H", &format!("authorization: Bearer {revoked}")])
            .output()
            .expect("curl");
        assert!(output.status.success(), "logout");
        assert_eq!(status_of(&server, "/api/auth/me", &revoked), "401");
        (revoked, kept)
    };
    let server = Server::start_on(data.clone(), &key);
    assert_eq!(status_of(&server, "/api/auth/me", &revoked), "401", "the logout outlived the restart");
    assert_eq!(status_of(&server, "/api/auth/me", &kept), "200", "other sessions are untouched");
    drop(server);
    std::fs::remove_dir_all(&data).ok();
}
