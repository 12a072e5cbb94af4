//! The README's walkthrough, run as written against the real binary in all-in-one mode: embedded
//! store, in-process queue and OCR workers with real Tesseract. Only the binary's path is changed,
//! to the one this test build produced.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

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
    let port = TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("address").port();
    let data = std::env::temp_dir().join(format!("finagent-walkthrough-{}", std::process::id()));
    let api = format!("http://127.0.0.1:{port}");
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_api-server"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("DATA_DIR", &data)
            .env("OCR_WORKERS", "1")
            .env("OMP_THREAD_LIMIT", "1")
            .env("RUST_LOG", "warn")
            .env_remove("REDIS_URL")
            .env_remove("MONGODB_URL")
            .stdout(Stdio::null())
            .spawn()
            .expect("api-server starts"),
    );
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(30), "the server did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
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
    std::fs::remove_dir_all(&data).ok();
}
