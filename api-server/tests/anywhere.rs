//! Receipts from anywhere, end to end through the real all-in-one binary: PDF receipts (a text
//! layer, a scan, a bomb), receipts in other languages and countries, the account's locale
//! preference as a prior, and the merchant memory learned from a correction.
//!
//! The PDFs are written by `lopdf` in the test; scans are rendered by Poppler's `pdftoppm` and
//! read by Tesseract, as in production.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use finagent_platform::pdf_input::samples;
use serde_json::{Value, json};
use support::server::Server;

fn curl(arguments: &[&str]) -> (u16, Value) {
    let output = Command::new("curl").args(["-s", "-w", "\n%{http_code}"]).args(arguments).output().expect("curl");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or((&text, "0"));
    (status.trim().parse().unwrap_or(0), serde_json::from_str(body).unwrap_or(Value::String(body.to_owned())))
}

struct Client<'a> {
    server: &'a Server,
    bearer: String,
}

impl<'a> Client<'a> {
    fn new(server: &'a Server, name: &str) -> Self {
        let password = "a passphrase from anywhere";
        server.post_json(
            "/api/auth/register",
            &json!({"username": name, "email": format!("{name}@example.com"), "password": password}),
        );
        let login: Value = serde_json::from_str(
            &server.post_json("/api/auth/login", &json!({"username": name, "password": password})),
        )
        .expect("json");
        Self { server, bearer: format!("authorization: Bearer {}", login["access_token"].as_str().expect("token")) }
    }

    /// Uploads a file; returns the status and body.
    fn upload(&self, bytes: &[u8], name: &str, media_type: &str) -> (u16, Value) {
        let path = std::env::temp_dir().join(finagent_platform::testkit::unique_name("upload")).with_extension(name);
        std::fs::write(&path, bytes).expect("write");
        let form = format!("file=@{};type={media_type}", path.display());
        let reply = curl(&[&format!("{}/api/ocr/process", self.server.url), "-H", &self.bearer, "-F", &form]);
        std::fs::remove_file(&path).ok();
        reply
    }

    fn get(&self, path: &str) -> Value {
        curl(&[&format!("{}{path}", self.server.url), "-H", &self.bearer]).1
    }

    /// The raw body of a GET that must succeed.
    fn bytes(&self, path: &str) -> Vec<u8> {
        let output = std::process::Command::new("curl")
            .args(["-sS", "--fail-with-body", &format!("{}{path}", self.server.url), "-H", &self.bearer])
            .output()
            .expect("curl");
        assert!(output.status.success(), "GET {path}: {}", String::from_utf8_lossy(&output.stdout));
        output.stdout
    }

    fn send(&self, method: &str, path: &str, body: &Value) -> (u16, Value) {
        curl(&[
            "-X",
            method,
            &format!("{}{path}", self.server.url),
            "-H",
            &self.bearer,
            "-H",
            "content-type: application/json",
            "-d",
            &body.to_string(),
        ])
    }

    /// Uploads and waits for the receipt to be read; returns the receipt.
    fn read(&self, bytes: &[u8], name: &str, media_type: &str) -> Value {
        let (status, task) = self.upload(bytes, name, media_type);
        assert_eq!(status, 202, "{task}");
        let id = task["task_id"].as_str().expect("task id").to_owned();
        let started = Instant::now();
        loop {
            let receipt = self.get(&format!("/api/receipts/{id}"));
            match receipt["status"].as_str() {
                Some("done") => return receipt,
                Some("failed") => panic!("the receipt failed: {receipt}"),
                _ => {}
            }
            assert!(started.elapsed() < Duration::from_secs(120), "not read after 2 minutes: {receipt}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

const US_RECEIPT: [&str; 12] = [
    "CORNER BISTRO",
    "2710 Colby Ave",
    "Everett, WA 98201",
    "(425) 252-2123",
    "Server: Dana   Table 12",
    "05/11/18  12:31 PM",
    "1 Salmon Roll       12.50",
    "1 Miso Soup          4.00",
    "Subtotal            16.50",
    "Sales Tax            1.67",
    "TOTAL              $18.17",
    "VISA ************1234  $18.17",
];

/// Renders a PDF's first page to PNG with Poppler, as a scanner or a phone would give it.
fn render(pdf: &[u8], dpi: u32) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("pdftoppm")
        .args(["-q", "-r", &dpi.to_string(), "-gray", "-png", "-f", "1", "-l", "1", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("pdftoppm runs (poppler-utils, installed by scripts/test.sh)");
    child.stdin.take().expect("stdin").write_all(pdf).expect("write");
    let output = child.wait_with_output().expect("pdftoppm");
    assert!(output.status.success() && !output.stdout.is_empty(), "pdftoppm failed");
    output.stdout
}

#[tokio::test]
async fn pdf_text_receipt_is_read_from_its_text_layer_with_us_conventions() {
    let server = Server::start(&[]);
    let client = Client::new(&server, "pdftext");
    let receipt = client.read(&samples::text_pdf(&US_RECEIPT), "pdf", "application/pdf");
    let result = &receipt["result"];
    assert_eq!(receipt["content_type"], "application/pdf", "{receipt}");
    assert_eq!(result["total"], "18.17", "{result}");
    // `05/11/18` on a receipt from Washington state is 11 May 2018, in US dollars.
    assert_eq!(result["date"], "2018-05-11", "{result}");
    assert_eq!(result["currency"], "USD", "{result}");
    assert_eq!((result["country"].as_str(), result["locale"].as_str()), (Some("US"), Some("en-US")), "{result}");
    assert_eq!(result["merchant"]["name"], "CORNER BISTRO", "{result}");
    assert_eq!(result["category"], "dining", "{result}");
    assert_eq!(result["debug"]["preprocessing"][0], "PDF text layer", "no OCR for a text PDF: {result}");
    let evidence = result["debug"]["locale_evidence"].to_string();
    assert!(evidence.contains("WA 98201"), "{evidence}");
    // The review page shows the server's rendering: a PNG of the page, whose proportions are the
    // layout's, so the field outlines fall where the fields are.
    let preview_url = receipt["preview_url"].as_str().expect("a PDF has a preview");
    let png = client.bytes(preview_url);
    let preview = image::load_from_memory(&png).expect("a PNG").to_luma8();
    let (width, height) =
        (result["layout"]["width"].as_f64().expect("width"), result["layout"]["height"].as_f64().expect("height"));
    let ratio = |a: f64, b: f64| a / b;
    assert!(
        (ratio(f64::from(preview.width()), f64::from(preview.height())) - ratio(width, height)).abs() < 0.01,
        "preview {}×{}, layout {width}×{height}",
        preview.width(),
        preview.height()
    );
}

#[tokio::test]
async fn pdf_scanned_receipt_is_rendered_and_read_by_ocr() {
    let server = Server::start(&[]);
    let client = Client::new(&server, "pdfscan");
    // A scan: the receipt printed, scanned at 300 dpi to JPEG, and the JPEG wrapped in a PDF
    // without any text layer.
    let png = render(&samples::text_pdf(&US_RECEIPT), 300);
    let scan = image::load_from_memory(&png).expect("png").to_luma8();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90).encode_image(&scan).expect("jpeg");
    let pdf = samples::scanned_pdf(&jpeg, scan.width(), scan.height(), 1);
    let receipt = client.read(&pdf, "pdf", "application/pdf");
    let result = &receipt["result"];
    assert_eq!(receipt["content_type"], "application/pdf", "{receipt}");
    assert_eq!(result["total"], "18.17", "{result}");
    assert_eq!(result["date"], "2018-05-11", "{result}");
    assert_eq!(result["currency"], "USD", "{result}");
    let steps = result["debug"]["preprocessing"].to_string();
    assert!(steps.contains("PDF scan"), "read by OCR, not from a text layer: {steps}");
    assert_eq!(result["debug"]["ocr_languages"], "eng", "{result}");
}

#[tokio::test]
async fn pdf_bombs_and_broken_pdfs_are_refused_with_a_clear_422() {
    let server = Server::start(&[]);
    let client = Client::new(&server, "pdfbomb");
    let bomb = samples::deflate_bomb(100 * 1024 * 1024);
    assert!(bomb.len() < 300 * 1024, "{} bytes", bomb.len());
    let (status, problem) = client.upload(&bomb, "pdf", "application/pdf");
    assert_eq!(status, 422, "{problem}");
    assert!(problem["detail"].as_str().unwrap_or_default().contains("PDF bomb"), "{problem}");
    let (status, problem) = client.upload(&samples::many_pages(500), "pdf", "application/pdf");
    assert_eq!(status, 422, "{problem}");
    assert!(problem["detail"].as_str().unwrap_or_default().contains("500 pages"), "{problem}");
    let (status, problem) = client.upload(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage", "pdf", "application/pdf");
    assert_eq!(status, 422, "{problem}");
    assert!(problem["detail"].as_str().unwrap_or_default().contains("PDF"), "{problem}");
    // Nothing was stored for any of them.
    assert_eq!(client.get("/api/receipts")["items"].as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn a_german_receipt_is_read_in_german_with_a_decimal_comma() {
    let server = Server::start(&[]);
    let client = Client::new(&server, "german");
    let lines = [
        "Baeckerei Schmidt GmbH",
        "Hauptstrasse 12",
        "10115 Berlin",
        "Tel. +49 30 1234567",
        "Datum: 03.04.2019  08:15",
        "2 x Broetchen         1,20",
        "Kaffee                2,90",
        "Kuchen               20,13",
        "SUMME EUR            24,23",
        "Gegeben BAR          30,00",
        "Rueckgeld             5,77",
        "MwSt 7%  Netto 22,64  MwSt 1,59",
    ];
    let pdf = samples::text_pdf(&lines);
    // As a text PDF: no OCR.
    let result = client.read(&pdf, "pdf", "application/pdf")["result"].clone();
    assert_eq!(result["total"], "24.23", "{result}");
    assert_eq!(result["date"], "2019-04-03", "{result}");
    assert_eq!(result["currency"], "EUR", "{result}");
    assert_eq!((result["country"].as_str(), result["locale"].as_str()), (Some("DE"), Some("de-DE")), "{result}");
    assert_eq!(result["payment_method"], "cash", "{result}");
    // As a scan: read by OCR, with a second pass in German.
    let scanned = client.read(&render(&pdf, 300), "png", "image/png")["result"].clone();
    assert_eq!(scanned["total"], "24.23", "{scanned}");
    assert_eq!(scanned["date"], "2019-04-03", "{scanned}");
    assert_eq!(scanned["debug"]["ocr_languages"], "eng+deu", "{scanned}");
}

#[tokio::test]
async fn the_account_country_is_a_prior_that_evidence_outweighs() {
    let server = Server::start(&[]);
    let prior = Client::new(&server, "prior");
    let none = Client::new(&server, "noprior");
    // Bad values are refused by name.
    let (status, problem) = prior.send("PATCH", "/api/auth/me", &json!({"country": "XX"}));
    assert_eq!(status, 422, "{problem}");
    let (status, problem) = prior.send("PATCH", "/api/auth/me", &json!({"currency": "EURO"}));
    assert_eq!(status, 422, "{problem}");
    let (status, me) = prior.send("PATCH", "/api/auth/me", &json!({"country": "us", "currency": "USD"}));
    assert_eq!((status, me["preferences"].clone()), (200, json!({"country": "US", "currency": "USD"})), "{me}");
    assert_eq!(prior.get("/api/auth/me")["preferences"]["country"], "US");

    // A receipt that says nothing about where it is from.
    let bare = samples::text_pdf(&["KIOSK 7", "03/04/2019 10:02", "COFFEE 3.50", "WATER 2.00", "TOTAL 5.50"]);
    let with_prior = prior.read(&bare, "pdf", "application/pdf")["result"].clone();
    assert_eq!(
        (with_prior["date"].as_str(), with_prior["currency"].as_str()),
        (Some("2019-03-04"), Some("USD")),
        "{with_prior}"
    );
    let without = none.read(&bare, "pdf", "application/pdf")["result"].clone();
    assert_eq!((without["date"].as_str(), without["currency"].as_str()), (Some("2019-04-03"), None), "{without}");

    // A receipt that clearly says it is from the UK is read as British whatever the prior.
    let british = samples::text_pdf(&[
        "THE IVY",
        "1-5 West Street",
        "London WC2H 9NQ",
        "03/04/2019",
        "TOTAL £45.20",
        "VAT 20% 7.53",
    ]);
    let result = prior.read(&british, "pdf", "application/pdf")["result"].clone();
    assert_eq!(
        (result["date"].as_str(), result["currency"].as_str(), result["country"].as_str()),
        (Some("2019-04-03"), Some("GBP"), Some("GB")),
        "{result}"
    );
}

#[tokio::test]
async fn memory_a_corrected_merchant_names_the_next_receipt_from_it() {
    let server = Server::start(&[]);
    let owner = Client::new(&server, "teacher");
    let other = Client::new(&server, "stranger");
    let first = owner.read(&samples::text_pdf(&US_RECEIPT), "pdf", "application/pdf");
    let id = first["id"].as_str().expect("id");
    let (status, corrected) = owner.send(
        "PATCH",
        &format!("/api/receipts/{id}"),
        &json!({"merchant_name": "Corner Bistro & Sushi", "category": "dining"}),
    );
    assert_eq!(status, 200, "{corrected}");

    // Another visit: same header, other items, other total.
    let mut second = US_RECEIPT;
    second[5] = "06/02/18  19:02 PM";
    second[6] = "2 Tuna Roll         21.00";
    second[8] = "Subtotal            25.00";
    second[9] = "Sales Tax            2.53";
    second[10] = "TOTAL              $27.53";
    second[11] = "VISA ************1234  $27.53";
    let pdf = samples::text_pdf(&second);
    let again = owner.read(&pdf, "pdf", "application/pdf")["result"].clone();
    assert_eq!(again["merchant"]["name"], "Corner Bistro & Sushi", "{again}");
    assert_eq!(again["debug"]["merchant_source"], "memory", "{again}");
    assert_eq!(again["total"], "27.53", "{again}");
    // Memory is per user.
    let theirs = other.read(&pdf, "pdf", "application/pdf")["result"].clone();
    assert_eq!(theirs["merchant"]["name"], "CORNER BISTRO", "{theirs}");
}
