//! One fuzz target over one input read from standard input: what AFL++ runs, in its fork-server
//! mode (`scripts/fuzz.sh`), and a way to replay a crash by hand:
//! `cargo run -p finagent-fuzz --bin fuzz-target -- image < fuzz/regressions/image/crash-…`.
//! `fuzz-target seeds <target> <folder>` writes a target's seed corpus into a folder.

use std::io::Read;
use std::panic::{AssertUnwindSafe, catch_unwind};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("seeds") && args.len() == 3 {
        let folder = std::path::Path::new(&args[2]);
        if let Err(error) = std::fs::create_dir_all(folder) {
            fail(&format!("cannot create {}: {error}", folder.display()));
        }
        for (index, seed) in finagent_fuzz::seeds(&args[1]).iter().enumerate() {
            if let Err(error) = std::fs::write(folder.join(format!("seed-{index:03}")), seed) {
                fail(&format!("cannot write a seed: {error}"));
            }
        }
        return;
    }
    let Some(target) = args.first().and_then(|name| finagent_fuzz::target(name)) else {
        fail(&format!("usage: fuzz-target <{}> < input, or fuzz-target seeds <target> <folder>", names()));
    };
    #[cfg(feature = "afl")]
    start_fork_server_when_warm(target);
    let mut input = Vec::new();
    if let Err(error) = std::io::stdin().read_to_end(&mut input) {
        fail(&format!("failed to read the input: {error}"));
    }
    // A panic aborts: a signal is what AFL++ counts as a crash.
    if catch_unwind(AssertUnwindSafe(|| (target.run)(&input))).is_err() {
        std::process::abort();
    }
}

/// Runs the target once on a small input, so that what it builds on first use (compiled
/// patterns, the brand directory, a runtime) is built before AFL++'s fork server starts: each
/// forked input then pays only for itself. The server starts at once when `AFL_DEFER_FORKSRV` is
/// not set, and this call does nothing outside AFL++.
#[cfg(feature = "afl")]
fn start_fork_server_when_warm(target: finagent_fuzz::Target) {
    #[allow(unsafe_code)]
    unsafe extern "C" {
        fn __afl_manual_init();
    }
    let _ = catch_unwind(AssertUnwindSafe(|| (target.run)(b"TOTAL 12.50\n05.12.2026\n")));
    // SAFETY: AFL++'s runtime, linked into this build, starts its fork server; it takes no
    // arguments and returns in each child and in the server.
    #[allow(unsafe_code)]
    unsafe {
        __afl_manual_init();
    }
}

fn fail(message: &str) -> ! {
    eprintln!("{message}");
    std::process::exit(2);
}

fn names() -> String {
    finagent_fuzz::targets().iter().map(|target| target.name).collect::<Vec<_>>().join(", ")
}
