//! The sandbox Poppler runs in.
//!
//! A hostile PDF reaches Poppler's parser and renderer, so Poppler runs as little as possible:
//! - **Limits**, set by `prlimit` (util-linux) before it runs the tool: 1 GiB of address space,
//!   30 s of CPU time, no core dumps, no file written, 64 open files. Without `prlimit` nothing
//!   is rendered ([`SandboxError::NoLimits`]); a PDF is never read without its limits.
//! - **A cleared environment**: only `PATH` and the locale. The worker's datastore URLs and the
//!   all-in-one server's token key stay out of the tool's reach.
//! - **Landlock**, where the kernel has it (5.13 and later; TCP rules from 6.7): the file system
//!   is read-only (`/dev/null` excepted), TCP connections and binds are refused, and signals and
//!   abstract Unix sockets cannot reach outside the sandbox. The thread that starts the tool
//!   confines itself first, and the tool inherits the confinement; the worker's own threads are
//!   untouched. On a kernel without Landlock the limits and the cleared environment still hold,
//!   and [`Spawned::confined`] says so.
//!
//! Why not bubblewrap or a separate user: both need user namespaces or `CAP_SETUID`, which a pod
//! under the restricted Pod Security Standard does not get. Landlock needs no privilege.

use std::process::{Child, Command, Stdio};

use landlock::{
    ABI, Access, AccessFs, AccessNet, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetError, RulesetStatus, Scope,
    path_beneath_rules,
};

/// The program that sets the limits and then runs the tool.
pub const LIMITER: &str = "prlimit";
/// Address space the tool may use, in bytes.
pub const MAX_MEMORY: u64 = 1 << 30;
/// CPU time the tool may use, in seconds (its wall-clock deadline is the caller's).
pub const MAX_CPU_SECONDS: u64 = 30;
/// Files the tool may hold open at once.
pub const MAX_OPEN_FILES: u64 = 64;
/// The only environment the tool gets.
pub const ENVIRONMENT: [(&str, &str); 2] = [("PATH", "/usr/bin:/bin"), ("LC_ALL", "C.UTF-8")];

/// Why a tool could not be started in the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SandboxError {
    /// The limits cannot be set, so nothing runs.
    #[error("{LIMITER} (util-linux) is not available: nothing is rendered without memory and CPU limits")]
    NoLimits,
    /// The process could not be started (out of processes or memory, say).
    #[error("the sandboxed tool could not be started: {0}")]
    Start(String),
}

/// A tool started in the sandbox.
#[derive(Debug)]
pub struct Spawned {
    /// The running tool (its standard streams piped).
    pub child: Child,
    /// Whether Landlock confines it (file system read-only, no TCP); the limits and the cleared
    /// environment hold either way.
    pub confined: bool,
}

/// Starts `program` with `args` in the sandbox, its standard streams piped.
pub fn spawn(program: &str, args: &[&str]) -> Result<Spawned, SandboxError> {
    spawn_with(LIMITER, program, args)
}

fn spawn_with(limiter: &str, program: &str, args: &[&str]) -> Result<Spawned, SandboxError> {
    let mut command = Command::new(limiter);
    command
        .arg(format!("--as={MAX_MEMORY}"))
        .arg(format!("--cpu={MAX_CPU_SECONDS}"))
        .arg("--core=0")
        .arg("--fsize=0")
        .arg(format!("--nofile={MAX_OPEN_FILES}"))
        .arg("--")
        .arg(program)
        .args(args)
        .env_clear()
        .envs(ENVIRONMENT)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Landlock confines the thread that asks and the processes it starts afterwards: a thread of
    // its own confines itself, starts the tool and ends.
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let confined = confine().is_ok_and(|status| status != RulesetStatus::NotEnforced);
                command.spawn().map(|child| Spawned { child, confined }).map_err(|error| match error.kind() {
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => SandboxError::NoLimits,
                    _ => SandboxError::Start(error.to_string()),
                })
            })
            .join()
            .unwrap_or_else(|_| Err(SandboxError::Start("the thread that starts it stopped".into())))
    })
}

/// Confines the calling thread: the file system read-only, no TCP, no signals or abstract
/// sockets outside. Best effort: what the kernel lacks is left out, and the status says how much
/// holds.
fn confine() -> Result<RulesetStatus, RulesetError> {
    let abi = ABI::V6;
    let status = Ruleset::default()
        .handle_access(AccessFs::from_all(abi))?
        .handle_access(AccessNet::from_all(abi))?
        .scope(Scope::from_all(abi))?
        .create()?
        .add_rules(path_beneath_rules(["/"], AccessFs::from_read(abi)))?
        .add_rules(path_beneath_rules(["/dev/null"], AccessFs::ReadFile | AccessFs::WriteFile))?
        .restrict_self()?;
    Ok(status.ruleset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Runs a shell command in the sandbox; returns its output and whether Landlock held it.
    fn run(script: &str) -> (String, bool) {
        let Spawned { mut child, confined } = spawn("sh", &["-c", script]).expect("spawned");
        drop(child.stdin.take());
        let mut output = String::new();
        child.stdout.take().expect("stdout").read_to_string(&mut output).expect("output");
        child.wait().expect("exit");
        (output, confined)
    }

    #[test]
    fn the_tool_gets_only_the_sandboxs_environment() {
        // Cargo gives every test process CARGO_* variables; the tool must see none of them.
        assert!(std::env::vars().any(|(name, _)| name.starts_with("CARGO")));
        let (output, _) = run("env");
        let mut seen: Vec<&str> = output.lines().filter(|line| !line.starts_with("PWD=")).collect();
        seen.sort_unstable();
        assert_eq!(seen, ["LC_ALL=C.UTF-8", "PATH=/usr/bin:/bin"]);
    }

    #[test]
    fn the_tool_runs_under_its_memory_cpu_and_file_limits() {
        let (output, _) = run("ulimit -v; ulimit -t; ulimit -f; ulimit -c; ulimit -n");
        let expected = format!("{}\n{MAX_CPU_SECONDS}\n0\n0\n{MAX_OPEN_FILES}\n", MAX_MEMORY / 1024);
        assert_eq!(output, expected);
    }

    #[test]
    fn without_its_limits_nothing_runs() {
        let refused = spawn_with("/nonexistent/prlimit", "env", &[]);
        assert!(matches!(refused, Err(SandboxError::NoLimits)), "{refused:?}");
    }

    #[test]
    fn the_tool_can_neither_connect_nor_write_files() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("address").port();
        let file = std::env::temp_dir().join(format!("finagent-sandbox-{}", std::process::id()));
        let script = format!(
            "(exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null && echo connected; \
             (echo written > {path}) 2>/dev/null && echo wrote; echo done",
            path = file.display()
        );
        let (output, confined) = spawn("bash", &["-c", &script])
            .map(|Spawned { mut child, confined }| {
                drop(child.stdin.take());
                let mut output = String::new();
                child.stdout.take().expect("stdout").read_to_string(&mut output).expect("output");
                child.wait().expect("exit");
                (output, confined)
            })
            .expect("spawned");
        assert!(confined, "this kernel has Landlock (ABI {:?}); the sandbox must use it", ABI::V6);
        assert_eq!(output, "done\n", "the sandboxed tool connected or wrote a file");
        assert!(listener.accept().is_err(), "no connection reached the listener");
        assert!(!file.exists(), "{} was written", file.display());
    }
}
