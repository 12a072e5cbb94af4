//! The servers that `scripts/test.sh` started for this test run.
//!
//! The harness exports `FINAGENT_TEST_REDIS_URL` and `FINAGENT_TEST_MONGODB_URL`. Outside the
//! harness a test that needs a server it was not given skips with a message — except in CI
//! (`CI=true`) or under the harness (`FINAGENT_TEST_REQUIRE_SERVERS=1`), where a missing server is
//! a failure, never a silent skip.

/// Environment variable holding the Redis URL of the test run.
pub const REDIS_URL_VAR: &str = "FINAGENT_TEST_REDIS_URL";
/// Environment variable holding the MongoDB connection string of the test run.
pub const MONGODB_URL_VAR: &str = "FINAGENT_TEST_MONGODB_URL";

/// Whether a missing server must fail the test rather than skip it.
pub fn servers_required() -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|value| value == "1" || value.eq_ignore_ascii_case("true"));
    set("CI") || set("FINAGENT_TEST_REQUIRE_SERVERS")
}

/// The URL in `var`, or `None` (with a note on stderr) when the test should skip.
///
/// # Panics
/// When the variable is unset and servers are required.
pub fn server_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if servers_required() => {
            panic!("{var} is not set, and servers are required (CI=true): run the tests through scripts/test.sh")
        }
        _ => {
            eprintln!("skipping: {var} is not set (run the tests through scripts/test.sh)");
            None
        }
    }
}

/// The test Redis URL, if this run has one.
pub fn redis_url() -> Option<String> {
    server_url(REDIS_URL_VAR)
}

/// The test MongoDB connection string, if this run has one.
pub fn mongodb_url() -> Option<String> {
    server_url(MONGODB_URL_VAR)
}

/// A name unique to this process and call, for databases, key prefixes and streams in tests that
/// share one server.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or_default();
    format!("{prefix}-{}-{nanos}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Environment variable holding the test virtualenv (test-only Python tools).
pub const VENV_VAR: &str = "FINAGENT_TEST_VENV";

/// The path of a tool in the test virtualenv, if this run has one.
///
/// # Panics
/// When the virtualenv is not given or lacks the tool, and servers are required.
pub fn venv_tool(name: &str) -> Option<std::path::PathBuf> {
    let venv = server_url(VENV_VAR)?;
    existing(std::path::Path::new(&venv).join("bin").join(name))
}

/// `path` when it exists; otherwise `None` with a note on stderr, or a panic when servers are
/// required.
fn existing(path: std::path::PathBuf) -> Option<std::path::PathBuf> {
    if path.exists() {
        return Some(path);
    }
    if servers_required() {
        panic!("{} does not exist: run the tests through scripts/test.sh", path.display());
    }
    eprintln!("skipping: {} does not exist", path.display());
    None
}

/// Environment variable holding the path of the `helm` binary of the test run.
pub const HELM_VAR: &str = "FINAGENT_TEST_HELM";
/// Environment variable holding the path of Prometheus's `promtool` of the test run.
pub const PROMTOOL_VAR: &str = "FINAGENT_TEST_PROMTOOL";

/// The `helm` binary of the test run (installed by `scripts/test.sh`), if this run has one.
///
/// # Panics
/// When it is not given, or not there, and servers are required.
pub fn helm() -> Option<std::path::PathBuf> {
    tool(HELM_VAR)
}

/// Prometheus's `promtool` of the test run (installed by `scripts/test.sh`), if this run has one.
///
/// # Panics
/// When it is not given, or not there, and servers are required.
pub fn promtool() -> Option<std::path::PathBuf> {
    tool(PROMTOOL_VAR)
}

fn tool(var: &str) -> Option<std::path::PathBuf> {
    existing(std::path::PathBuf::from(server_url(var)?))
}

/// A loopback port free at the time of asking.
///
/// # Panics
/// When no port can be bound.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds a loopback port");
    listener.local_addr().expect("a local address").port()
}
