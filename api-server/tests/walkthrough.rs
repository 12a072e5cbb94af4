//! The README's walkthrough, run as written against the real binary in all-in-one mode: embedded
//! store, in-process queue and OCR workers with real Tesseract. Only the binary's path is changed,
//! to the one this test build produced.

mod support;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::server::Server;

fn walkthrough_script() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).expect("README");
    let start = readme.find("<!-- walkthrough:start -->").expect("walkthrough start marker");
    let end = readme.find("<!-- walkthrough:end -->").expect("walkthrough end marker");
    let block = &readme[start..end];
    let code = block.split("```sh\n").nth(1).and_then(|rest| rest.split("```").next()).expect("a sh block");
    code.replace("target/release/api-server", env!("CARGO_BIN_EXE_api-server"))
}

#[test]
fn walkthrough_from_the_readme_reads_a_receipt_end_to_end() {
    let server = Server::start(&[]);
    let (api, data) = (server.url.clone(), server.data.clone());
    let mut walk = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &walkthrough_script()])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .env("API", &api)
        .env("DATA_DIR", &data)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash runs the walkthrough");
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = walk.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the walkthrough took more than three minutes");
        std::thread::sleep(Duration::from_millis(100));
    };
    let (mut output, mut errors) = (String::new(), String::new());
    walk.stdout.take().expect("stdout").read_to_string(&mut output).expect("read");
    walk.stderr.take().expect("stderr").read_to_string(&mut errors).expect("read");
    assert!(status.success(), "the walkthrough failed ({status}):\n{output}\n{errors}");
    let lines: Vec<&str> = output.lines().collect();
    assert!(lines.iter().any(|line| line.starts_with("created administrator admin")), "{output}");
    let result: serde_json::Value =
        serde_json::from_str(lines.iter().find(|line| line.contains("\"merchant\"")).expect("result line"))
            .expect("json");
    assert_eq!(result["total"], "9.00", "{output}");
    assert_eq!(result["date"], "2018-12-25", "{output}");
    let insights: serde_json::Value =
        serde_json::from_str(lines.iter().find(|line| line.contains("by_month")).expect("insights line"))
            .expect("json");
    assert_eq!(insights["by_month"][0]["total"], "9.00", "{output}");
}
