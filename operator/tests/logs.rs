//! The operator's plain log, written to a file or a pipe, carries no terminal colour codes.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn plain_logs_into_a_pipe_have_no_ansi_colours() {
    let dir = std::env::temp_dir().join(format!("finagent-logs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("folder");
    // A cluster that refuses connections: the operator starts, logs, and retries.
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster: {server: \"http://127.0.0.1:1\"}\nusers:\n- name: u\n  user: {token: x}\ncontexts:\n- name: t\n  context: {cluster: t, user: u}\ncurrent-context: t\n",
    )
    .expect("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_operator"))
        .args(["--log-format", "plain", "run", "--namespace", "x", "--lease-namespace", "x"])
        .args(["--admin-listen", "127.0.0.1:0"])
        .env("KUBECONFIG", &kubeconfig)
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the operator starts");
    std::thread::sleep(Duration::from_secs(2));
    let _ = child.kill();
    let mut log = String::new();
    child.stderr.take().expect("stderr").read_to_string(&mut log).expect("reads");
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(log.contains("waiting to lead"), "{log}");
    assert!(!log.contains('\u{1b}'), "colour codes in a piped log: {log:?}");
}
