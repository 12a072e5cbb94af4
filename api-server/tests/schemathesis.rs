//! Schemathesis (property-based API testing from the OpenAPI document) against the real binary,
//! signed in as an ordinary user: no server errors, and every response matches the document
//! (status codes, content types, headers and body schemas). Logout and password change are left
//! out because they end the session the run uses; the matrix and session tests cover them.

mod support;

use std::process::Command;

use finagent_platform::testkit;
use serde_json::json;
use support::server::Server;

#[test]
fn schemathesis_finds_no_server_errors_and_no_schema_violations() {
    let Some(schemathesis) = testkit::venv_tool("schemathesis") else { return };
    let open = "1000000";
    let server = Server::start(&[
        ("RATE_LIMIT_API_PER_SECOND", open),
        ("RATE_LIMIT_API_BURST", open),
        ("RATE_LIMIT_UPLOAD_PER_SECOND", open),
        ("RATE_LIMIT_UPLOAD_BURST", open),
        ("RATE_LIMIT_LOGIN_PER_MINUTE", open),
    ]);
    let credentials = json!({"username": "fuzzer", "password": "a long fuzzing passphrase"});
    server.post_json(
        "/api/auth/register",
        &json!({"username": "fuzzer", "email": "fuzzer@example.com", "password": "a long fuzzing passphrase"}),
    );
    let login: serde_json::Value =
        serde_json::from_str(&server.post_json("/api/auth/login", &credentials)).expect("json");
    let token = login["access_token"].as_str().expect("token");
    let output = Command::new(schemathesis)
        .args(["run", &format!("{}/openapi.json", server.url)])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance"])
        .args(["--exclude-path", "/api/auth/logout", "--exclude-path", "/api/auth/password"])
        .args(["--max-examples", "40", "--seed", "20261124", "--no-color", "--workers", "2"])
        // Schemathesis keeps a cache of past failures in its working folder; each run starts clean.
        .current_dir(&server.data)
        .output()
        .expect("schemathesis runs");
    let report = String::from_utf8_lossy(&output.stdout);
    println!("{report}");
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains("passed"), "{report}");
}
