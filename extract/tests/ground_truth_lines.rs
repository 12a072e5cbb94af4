//! Extraction measured on the ground-truth text lines of the SROIE development receipts
//! (`../shared/receipts-dev/boxes`), which isolates extraction from OCR errors. The 124 receipts
//! with images are held out of the merchant gazetteer, so they are scored separately from the rest.
//! Extraction is deterministic, so the floors below are regression guards, not timings.

use std::path::PathBuf;

use finagent_core::receipt::{EngineInfo, Timings};
use finagent_extract::evaluation::{FIELDS, Label, Scoreboard};
use finagent_extract::{self as extract, Gazetteer, Page};

fn dev_set() -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/receipts-dev");
    if path.join("boxes").is_dir() {
        Some(path)
    } else {
        assert!(
            std::env::var_os("FINAGENT_TEST_REQUIRE_DEV_SET").is_none(),
            "../shared/receipts-dev is required (FINAGENT_TEST_REQUIRE_DEV_SET) but missing"
        );
        eprintln!("skipping: ../shared/receipts-dev is not beside the repository");
        None
    }
}

#[test]
fn extraction_on_ground_truth_lines() {
    let Some(dev) = dev_set() else { return };
    let gazetteer = Gazetteer::bundled();
    let with_images: std::collections::HashSet<String> = std::fs::read_dir(dev.join("images"))
        .expect("images folder")
        .filter_map(|entry| entry.ok()?.path().file_stem()?.to_str().map(str::to_owned))
        .collect();
    let mut held_out = Scoreboard::default();
    let mut trained = Scoreboard::default();
    let mut names: Vec<_> =
        std::fs::read_dir(dev.join("labels")).expect("labels").filter_map(|e| e.ok()).map(|e| e.path()).collect();
    names.sort();
    for label_path in names {
        let stem = label_path.file_stem().and_then(|s| s.to_str()).expect("name").to_owned();
        let label: Label =
            serde_json::from_str(&std::fs::read_to_string(&label_path).expect("label")).expect("label json");
        let Ok(csv) = std::fs::read(dev.join("boxes").join(format!("{stem}.csv"))) else {
            continue;
        };
        let page = Page::from_box_csv(&String::from_utf8_lossy(&csv));
        let result = extract::extract(&page, &gazetteer)
            .into_result(EngineInfo { name: "ground-truth".into(), version: "1".into() }, Timings::default());
        if with_images.contains(&stem) { held_out.add(&result, &label) } else { trained.add(&result, &label) }
    }
    for (name, board) in [("held out (124 with images)", &held_out), ("gazetteer's own receipts", &trained)] {
        let accuracies: Vec<String> = FIELDS.iter().map(|f| format!("{f} {:.1}%", board.accuracy(f))).collect();
        let (precision, recall, f1) = board.micro();
        eprintln!(
            "{name}: {} receipts; {}; micro P {precision:.1} R {recall:.1} F1 {f1:.1}",
            board.receipts,
            accuracies.join(", ")
        );
    }
    assert!(held_out.accuracy("total") >= 80.0, "total regressed: {:.1}%", held_out.accuracy("total"));
    assert!(held_out.accuracy("date") >= 90.0, "date regressed: {:.1}%", held_out.accuracy("date"));
    assert!(held_out.micro().2 >= 60.0, "micro F1 regressed: {:.1}", held_out.micro().2);
}
