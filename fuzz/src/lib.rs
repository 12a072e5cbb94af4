//! Fuzz targets over the parsers that read untrusted input, and a small in-process driver.
//!
//! Each [`Target`] takes arbitrary bytes and must neither panic nor hang, whatever they are:
//! - `image`: image and PDF inspection (`platform::image_input::inspect`, the PDF structure checks);
//! - `multipart`: the upload's multipart reading (`api_server::ocr::read_file`);
//! - `text`: every text parser of extraction (amounts, dates, locale, merchant rules, totals, the
//!   whole extraction of a page);
//! - `job`: the job protocol decoder (`OcrJob::decode`, `DeadLetter::decode`).
//!
//! Two ways to run them:
//! - in process, by the test suite ([`fuzz_for`]): random mutations of the seed corpus for a bounded
//!   time, without coverage feedback, fast enough to run on every change;
//! - under AFL++ (`scripts/fuzz.sh`), with coverage feedback from SanitizerCoverage, for as long as
//!   a nightly run allows; it reports executions per second and the edges covered.
//!
//! An input that panics is written to `fuzz/regressions/<target>/`, where the test suite replays
//! every file on each run.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A fuzz target: a name, and a function over arbitrary bytes that must not panic or hang.
#[derive(Clone, Copy)]
pub struct Target {
    /// Its name (`image`, `multipart`, `parsers`, `extraction`, `job`).
    pub name: &'static str,
    /// Runs one input.
    pub run: fn(&[u8]),
}

impl std::fmt::Debug for Target {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Target").field("name", &self.name).finish_non_exhaustive()
    }
}

/// Every target.
pub fn targets() -> Vec<Target> {
    let all = vec![
        Target { name: "image", run: image },
        Target { name: "parsers", run: parsers },
        Target { name: "extraction", run: extraction },
        Target { name: "job", run: job },
    ];
    #[cfg(feature = "multipart")]
    let all = [all, vec![Target { name: "multipart", run: multipart }]].concat();
    all
}

/// A target by name.
pub fn target(name: &str) -> Option<Target> {
    targets().into_iter().find(|target| target.name == name)
}

/// Image and PDF inspection, under the limits uploads get.
fn image(data: &[u8]) {
    let limits = finagent_platform::image_input::ImageLimits::default();
    let _ = finagent_platform::image_input::inspect(data, &limits);
}

/// The job protocol: a job and a dead letter, from the same bytes as UTF-8.
fn job(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(job) = finagent_core::job::OcrJob::decode(&text) {
        // What decodes must encode and decode to itself.
        assert_eq!(finagent_core::job::OcrJob::decode(&job.encode()).ok(), Some(job));
    }
    let _ = finagent_core::job::DeadLetter::decode(&text);
}

/// The row parsers of extraction (amounts, dates, the locale and its number formats), on the bytes
/// as lines of text: fast, so that most of the time goes to their corner cases.
fn parsers(data: &[u8]) {
    use finagent_extract::{amount, date, locale};
    let text = String::from_utf8_lossy(data);
    let rows: Vec<String> = text.lines().take(64).map(str::to_owned).collect();
    for row in &rows {
        let _ = amount::amounts_in(row);
        let _ = amount::parse_amount(row);
        let _ = amount::rightmost_priced(row);
        let _ = date::dates_in(row, false);
        let _ = date::dates_in(row, true);
    }
    let hint = locale::LocaleHint { country: None, currency: None };
    let found = locale::infer(&rows, &hint);
    for row in &rows {
        let _ = locale::normalize_amounts(row, &found);
    }
}

/// The whole extraction of a page (merchant rules and the brand directory, totals, items,
/// payment), on the bytes as its lines.
fn extraction(data: &[u8]) {
    use finagent_extract::{merchant, totals};
    let text = String::from_utf8_lossy(data);
    let rows: Vec<String> = text.lines().take(64).map(str::to_owned).collect();
    let gazetteer = merchant::Gazetteer::default();
    let _ = merchant::merchant(&rows, &gazetteer);
    let _ = totals::money_fields(&rows, None);
    let _ = totals::payment_method(&rows);
    let page = finagent_extract::layout::Page::from_text(&rows.join("\n"));
    let _ = finagent_extract::extract(&page, &gazetteer);
}

/// The boundary the multipart target's requests declare.
pub const BOUNDARY: &str = "fuzzboundary";

/// The upload's multipart reading, on the bytes as a request body.
#[cfg(feature = "multipart")]
fn multipart(data: &[u8]) {
    use axum::extract::{FromRequest, Multipart};
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime =
            tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime");
    }
    let request = axum::http::Request::post("/api/ocr/process")
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(axum::body::Body::from(data.to_vec()))
        .expect("a request");
    RUNTIME.with(|runtime| {
        runtime.block_on(async {
            if let Ok(mut form) = Multipart::from_request(request, &()).await {
                let _ = finagent_api_server::ocr::read_file(&mut form, 64 * 1024, 0).await;
            }
        });
    });
}

/// A multipart body with one `file` part holding `content`, as the seed of the multipart target.
pub fn multipart_body(content: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"r.png\"\r\nContent-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// The repository's root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The seed corpus of a target: the files under `fuzz/corpus/<target>/`, the project's own
/// fixtures where they fit (receipt photos for `image`), and inputs made here (a text PDF, a
/// multipart form around a small image, a job).
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    // The two text targets share the receipts typed for them.
    let folder = if matches!(target, "parsers" | "extraction") { "text" } else { target };
    let mut seeds = read_folder(&root().join("fuzz/corpus").join(folder));
    match target {
        "image" => {
            seeds.push(finagent_platform::pdf_input::samples::text_pdf(&["ALDI GmbH", "TOTAL 12,50 EUR"]));
            seeds.extend(
                read_folder(&root().join("ocr-worker/tests/fixtures/receipts"))
                    .into_iter()
                    .filter(|bytes| bytes.starts_with(&[0xFF, 0xD8])),
            );
        }
        "multipart" => {
            for inner in read_folder(&root().join("fuzz/corpus/image")) {
                seeds.push(multipart_body(&inner));
            }
            seeds.push(multipart_body(b"\x89PNG\r\n\x1a\n"));
        }
        "job" => {
            let job = finagent_core::job::OcrJob::new(
                finagent_core::ReceiptId::new(),
                finagent_core::UserId::new(),
                finagent_core::BlobKey::new("receipts/seed.png"),
                chrono::Utc::now(),
            );
            seeds.push(job.encode().into_bytes());
        }
        _ => {}
    }
    seeds.retain(|seed| !seed.is_empty());
    if seeds.is_empty() {
        seeds.push(b"0".to_vec());
    }
    seeds
}

/// The files of a folder (none when it does not exist), with their bytes, by name.
fn files(folder: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(folder)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.is_file())
        .collect();
    paths.sort();
    paths.into_iter().filter_map(|path| std::fs::read(&path).ok().map(|bytes| (path, bytes))).collect()
}

fn read_folder(folder: &Path) -> Vec<Vec<u8>> {
    files(folder).into_iter().map(|(_, bytes)| bytes).filter(|bytes| !bytes.is_empty()).collect()
}

/// The regression inputs of a target: every input that once failed, replayed on each test run.
pub fn regressions(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    files(&root().join("fuzz/regressions").join(target))
}

/// xorshift64*: deterministic, so a run is reproduced from its seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (0 is replaced).
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `bound` (0 when `bound` is 0).
    pub fn below(&mut self, bound: usize) -> usize {
        if bound == 0 { 0 } else { (self.next_u64() % bound as u64) as usize }
    }
}

/// Tokens worth inserting: the structure the parsers look for.
const TOKENS: &[&[u8]] = &[
    b"%PDF-1.7\n",
    b"obj",
    b"endobj",
    b"stream\n",
    b"endstream",
    b"/ObjStm",
    b"/Obj#53tm",
    b"/FlateDecode",
    b"/Length 99999999",
    b"xref",
    b"trailer",
    b"<<",
    b">>",
    b"\x89PNG\r\n\x1a\n",
    b"IHDR",
    b"\xff\xd8\xff\xe0",
    b"\xff\xc0",
    b"RIFF",
    b"WEBP",
    b"TOTAL",
    b"SUBTOTAL",
    b"GST",
    b"MwSt",
    b"RM",
    b"EUR",
    b"R$",
    b"S$",
    b"Rp",
    b"1.234,56",
    b"1,23,456.00",
    b"12/31/2029",
    b"31.12.2029",
    b"2029-12-31",
    b"GmbH",
    b"Sdn Bhd",
    b"\r\n",
    b"\n",
    b"--",
    b"Content-Disposition: form-data; name=\"file\"",
    b"filename=\"",
    b"{\"v\":1",
    b"\"receipt_id\":",
    b"\"attempt\":",
    b"\xef\xbf\xbd",
    b"\xe2\x80\xaf",
    b"'",
];

/// One random mutation of `input`, sometimes spliced with another corpus entry.
pub fn mutate(rng: &mut Rng, input: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut data = input.to_vec();
    for _ in 0..=rng.below(4) {
        let len = data.len();
        match rng.below(9) {
            0 if len > 0 => {
                let at = rng.below(len);
                data[at] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let at = rng.below(len);
                data[at] = [0, 0xFF, 0x7F, 0x80, b'0', b'9', b'.', b',', b' '][rng.below(9)];
            }
            2 if len > 0 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.below(64)).min(len);
                data.drain(at..end);
            }
            3 => {
                let at = rng.below(len + 1);
                let token = TOKENS[rng.below(TOKENS.len())];
                data.splice(at..at, token.iter().copied());
            }
            4 if len > 0 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.below(256)).min(len);
                let chunk = data[at..end].to_vec();
                let to = rng.below(len + 1);
                data.splice(to..to, chunk);
            }
            5 if !corpus.is_empty() => {
                let other = &corpus[rng.below(corpus.len())];
                if !other.is_empty() {
                    let from = rng.below(other.len());
                    let take = (other.len() - from).min(1 + rng.below(512));
                    let at = rng.below(len + 1);
                    data.truncate(at);
                    data.extend_from_slice(&other[from..from + take]);
                }
            }
            6 if len > 4 => {
                // A 32-bit field of a header made large, zero or negative.
                let at = rng.below(len - 3);
                let value: u32 = [0, 1, 0x7FFF_FFFF, 0xFFFF_FFFF, 65_536, 100_000][rng.below(6)];
                data[at..at + 4].copy_from_slice(&value.to_be_bytes());
            }
            7 if len > 0 => data.truncate(rng.below(len)),
            _ => {
                let at = rng.below(len + 1);
                let count = 1 + rng.below(8);
                data.splice(at..at, std::iter::repeat_n(b"0123456789 .,:/-\n"[rng.below(17)], count));
            }
        }
    }
    data.truncate(2 * 1024 * 1024);
    data
}

/// What a bounded run found.
#[derive(Debug)]
pub struct Report {
    pub target: &'static str,
    /// Inputs run.
    pub executions: u64,
    /// Seconds spent.
    pub seconds: f64,
    /// The slowest input, in milliseconds.
    pub slowest_ms: f64,
    /// Inputs that panicked, written to `fuzz/regressions/<target>/`.
    pub crashes: Vec<PathBuf>,
}

impl Report {
    /// Executions per second.
    pub fn per_second(&self) -> f64 {
        self.executions as f64 / self.seconds.max(1e-9)
    }
}

/// Runs one input, catching a panic. The panic hook stays quiet while fuzzing.
pub fn survives(target: Target, input: &[u8]) -> bool {
    catch_unwind(AssertUnwindSafe(|| (target.run)(input))).is_ok()
}

/// Fuzzes `target` in process for `budget`: every seed first, then random mutations of the corpus
/// (inputs that ran slowest are kept as further seeds). Panicking inputs are written to the
/// regression folder and listed in the report.
pub fn fuzz_for(target: Target, budget: Duration, seed: u64) -> Report {
    let mut corpus = seeds(target.name);
    let mut rng = Rng::new(seed);
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let started = Instant::now();
    let (mut executions, mut slowest) = (0u64, Duration::ZERO);
    let mut crashes = Vec::new();
    let mut index = 0usize;
    while started.elapsed() < budget || index < corpus.len().min(64) {
        let input = if index < corpus.len().min(64) {
            corpus[index].clone()
        } else {
            let base = corpus[rng.below(corpus.len())].clone();
            mutate(&mut rng, &base, &corpus)
        };
        index += 1;
        let one = Instant::now();
        let survived = survives(target, &input);
        let took = one.elapsed();
        executions += 1;
        if took > slowest {
            slowest = took;
            if corpus.len() < 512 {
                corpus.push(input.clone());
            }
        }
        if !survived {
            crashes.push(save_regression(target.name, &input));
        }
    }
    std::panic::set_hook(hook);
    Report {
        target: target.name,
        executions,
        seconds: started.elapsed().as_secs_f64(),
        slowest_ms: slowest.as_secs_f64() * 1000.0,
        crashes,
    }
}

/// Writes a failing input where the test suite replays it; returns its path.
pub fn save_regression(target: &str, input: &[u8]) -> PathBuf {
    let folder = root().join("fuzz/regressions").join(target);
    let _ = std::fs::create_dir_all(&folder);
    let name = format!("crash-{:016x}", fnv1a(input));
    let path = folder.join(name);
    let _ = std::fs::write(&path, input);
    path
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_are_reproducible_from_the_seed_and_bounded() {
        let corpus = vec![b"TOTAL 12.50".to_vec(), b"%PDF-1.7\n1 0 obj".to_vec()];
        let run = |seed| {
            let mut rng = Rng::new(seed);
            (0..200).map(|_| mutate(&mut rng, &corpus[0], &corpus)).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        assert!(run(9).iter().all(|input| input.len() <= 2 * 1024 * 1024));
    }

    #[test]
    fn a_panicking_input_is_caught_and_named() {
        fn fragile(data: &[u8]) {
            assert!(!data.starts_with(b"boom"), "boom");
        }
        let target = Target { name: "selftest", run: fragile };
        std::panic::set_hook(Box::new(|_| {}));
        assert!(survives(target, b"fine"));
        assert!(!survives(target, b"boom!"));
        let _ = std::panic::take_hook();
    }
}
