//! The fuzz targets in the default test run: every regression input replayed, then each target
//! fuzzed in process for a bounded time (`FINAGENT_FUZZ_SECONDS`, 8 by default). Prints the
//! executions per second of each; a panicking input fails the test and is kept as a regression.

use std::time::Duration;

use finagent_fuzz::{fuzz_for, regressions, survives, targets};

#[test]
fn every_regression_input_is_survived() {
    std::panic::set_hook(Box::new(|_| {}));
    let mut failed = Vec::new();
    let mut replayed = 0;
    for target in targets() {
        for (path, input) in regressions(target.name) {
            replayed += 1;
            if !survives(target, &input) {
                failed.push(path.display().to_string());
            }
        }
    }
    let _ = std::panic::take_hook();
    println!("fuzz regressions: {replayed} inputs replayed");
    assert!(failed.is_empty(), "inputs that still fail: {failed:?}");
}

#[test]
fn fuzz_every_target_for_a_bounded_time() {
    let seconds: u64 = std::env::var("FINAGENT_FUZZ_SECONDS").ok().and_then(|value| value.parse().ok()).unwrap_or(8);
    let seed: u64 =
        std::env::var("FINAGENT_FUZZ_SEED").ok().and_then(|value| value.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|since| since.as_nanos() as u64)
                .unwrap_or(1)
        });
    println!("fuzz seed {seed} (FINAGENT_FUZZ_SEED reproduces the run)");
    let mut crashes = Vec::new();
    for target in targets() {
        let report = fuzz_for(target, Duration::from_secs(seconds), seed);
        println!(
            "fuzz {:<9} {:>9} executions in {:>5.1} s: {:>8.0}/s, slowest input {:.1} ms, {} crashes",
            report.target,
            report.executions,
            report.seconds,
            report.per_second(),
            report.slowest_ms,
            report.crashes.len()
        );
        crashes.extend(report.crashes);
        assert!(report.slowest_ms < 10_000.0, "{}: an input took {:.0} ms", report.target, report.slowest_ms);
    }
    assert!(crashes.is_empty(), "panicking inputs, kept as regressions: {crashes:?}");
}
