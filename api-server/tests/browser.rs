//! The web app in a real browser: Debian's `chromium`, headless, driven by Playwright
//! (`playwright-core` from npm, no browser download) against the real `api-server` binary in
//! all-in-one mode, with real Tesseract reading the receipt. Each test runs one scenario of
//! `e2e/browser/run.mjs`; every page a scenario visits is checked with axe-core and for content
//! security policy violations. On failure, screenshots are kept in `target/browser-artifacts/`.
//!
//! `scripts/test.sh` installs chromium and the npm packages, and sets
//! `FINAGENT_TEST_REQUIRE_BROWSER`, under which a missing browser fails these tests instead of
//! skipping them.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use support::server::Server;

/// One browser at a time: the machine has two cores, and OCR shares them.
static BROWSER: Mutex<()> = Mutex::new(());

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../e2e/browser")
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// Whether the browser and the npm packages are here; without them the test skips, unless the
/// test script demands them.
fn available() -> bool {
    let missing: Vec<String> = [
        (chromium(), "chromium (apt-get install chromium)"),
        (browser_dir().join("node_modules/playwright-core"), "playwright-core (npm ci in e2e/browser)"),
        (browser_dir().join("node_modules/axe-core"), "axe-core (npm ci in e2e/browser)"),
    ]
    .into_iter()
    .filter(|(path, _)| !path.exists())
    .map(|(_, what)| what.to_owned())
    .collect();
    if missing.is_empty() {
        return true;
    }
    let message = format!("browser tests need {}", missing.join(", "));
    assert!(std::env::var_os("FINAGENT_TEST_REQUIRE_BROWSER").is_none(), "{message}");
    eprintln!("skipping: {message}");
    false
}

fn scenario(name: &str) {
    scenario_with(name, &[]);
}

/// A scenario against a server with more settings.
fn scenario_with(name: &str, settings: &[(&str, &str)]) {
    if !available() {
        return;
    }
    let _one_at_a_time = BROWSER.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut environment = vec![("DEMO_USERS", "true"), ("RUST_LOG", "warn")];
    environment.extend_from_slice(settings);
    let server = Server::start(&environment);
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/browser-artifacts");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ocr-worker/tests/fixtures/receipts");
    let output = Command::new("node")
        .current_dir(browser_dir())
        .arg("run.mjs")
        .arg(name)
        .args(["--base", &server.url])
        .arg("--artifacts")
        .arg(&artifacts)
        .arg("--fixtures")
        .arg(&fixtures)
        .env("CHROMIUM", chromium())
        .output()
        .expect("node runs");
    print!("{}", String::from_utf8_lossy(&output.stdout));
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "browser scenario {name} failed; screenshots in {}", artifacts.display());
}

#[test]
fn browser_a_new_user_uploads_reviews_corrects_and_sees_insights_and_csv() {
    scenario("journey");
}

#[test]
fn browser_api_keys_are_shown_once_work_and_stop_when_revoked() {
    scenario("apiKeys");
}

#[test]
fn browser_a_password_change_keeps_the_page_signed_in_and_stops_the_old_password() {
    scenario("passwordChange");
}

#[test]
fn browser_an_invite_admits_one_account_when_registration_is_by_invitation() {
    scenario_with("invites", &[("REGISTRATION", "invite")]);
}

#[test]
fn browser_a_page_loading_late_never_replaces_the_page_navigated_to() {
    scenario("slowPage");
}

#[test]
fn browser_a_disabled_user_is_signed_out_on_the_next_page_load() {
    scenario("adminDisables");
}

#[test]
fn browser_an_ended_session_signs_in_again_without_losing_what_was_typed() {
    scenario("sessionExpiry");
}

#[test]
fn browser_strict_csp_httponly_cookies_csrf_and_keyboard_sign_in() {
    scenario("policies");
}

#[test]
fn browser_every_page_fits_a_phone_and_passes_axe_core() {
    scenario("phone");
}

#[test]
fn browser_first_load_weight_and_time_to_a_usable_upload_page() {
    scenario("weight");
}
