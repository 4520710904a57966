//! Replays the fuzz corpora on the stable toolchain: every file under
//! `fuzz/corpus/<target>/` (the minimized seed corpus) and `fuzz/artifacts-minimized/<target>/`
//! (every crash the fuzzer found, minimized, kept after its fix) runs through the very
//! body the fuzz binary runs (`fuzz/fuzz_targets/bodies.rs`, included here). A body panics
//! on a failure; the test reports every failing file, then fails. A missing or empty
//! corpus folder fails too, so the test cannot pass by replaying nothing.

#[allow(dead_code)]
#[path = "../../fuzz/fuzz_targets/bodies.rs"]
mod bodies;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of one folder, sorted; `None` if the folder does not exist.
fn files(dir: &Path) -> Option<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut out: Vec<PathBuf> = entries
        .map(|e| e.expect("a readable folder entry").path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    Some(out)
}

/// Runs `body` over the corpus of `target` and its minimized crashes (if any).
fn replay(target: &str, body: fn(&[u8])) {
    let corpus = fuzz_dir().join("corpus").join(target);
    let seeds = files(&corpus).unwrap_or_else(|| panic!("no corpus folder {}", corpus.display()));
    assert!(
        !seeds.is_empty(),
        "the corpus folder {} is empty",
        corpus.display()
    );
    let crashes = files(&fuzz_dir().join("artifacts-minimized").join(target)).unwrap_or_default();
    let mut failed = Vec::new();
    for path in seeds.iter().chain(&crashes) {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if catch_unwind(AssertUnwindSafe(|| body(&data))).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: {} of {} inputs failed (the panic messages are above): {failed:#?}",
        failed.len(),
        seeds.len() + crashes.len()
    );
}

#[test]
fn event_decode_corpus() {
    replay("event_decode", bodies::event_decode);
}

#[test]
fn csv_import_corpus() {
    replay("csv_import", bodies::csv_import);
}

#[test]
fn rule_loader_corpus() {
    replay("rule_loader", bodies::rule_loader);
}

#[test]
fn xml_verify_corpus() {
    replay("xml_verify", bodies::xml_verify);
}

#[test]
fn console_corpus() {
    replay("console", bodies::console);
}

/// Writes the event decoder's seeds: every record of the small city (the fuzz bodies'
/// state, built through the engine's commands and timers), encoded as the store keeps
/// it, one file per record. Run after a change to the events:
/// `cargo test --workspace --test fuzz_corpus -- --ignored write_event_decode_seeds`.
#[test]
#[ignore = "writes fuzz/corpus/event_decode; run by hand"]
fn write_event_decode_seeds() {
    let city = bodies::small_city();
    let dir = fuzz_dir().join("corpus").join("event_decode");
    std::fs::create_dir_all(&dir).expect("the corpus folder can be created");
    for rec in &city.records {
        let name = format!("city-{:03}-{}.bin", rec.seq, rec.event.name());
        std::fs::write(dir.join(name), rec.encode()).expect("a seed can be written");
    }
}

/// The small city produces every kind of event, so the decoder's seeds reach every
/// variant of the encoding.
#[test]
fn small_city_has_every_event() {
    let names: std::collections::BTreeSet<&str> = bodies::small_city()
        .records
        .iter()
        .map(|r| r.event.name())
        .collect();
    assert_eq!(names.len(), 17, "variants seen: {names:?}");
}

/// The seeds reach past the first refusal: the signed seed passes the signature check
/// (so the XML body's own RSA check runs), and console seeds answer (but those named
/// `error_*`, which show a refusal).
#[test]
fn seeds_reach_the_checks() {
    let signed = std::fs::read(fuzz_dir().join("corpus/xml_verify/signed_recall.xml"))
        .expect("the signed XML seed");
    let v = kezek_pki::verify_signature(&signed).expect("the signed seed is in the profile");
    assert!(v.signature_valid(), "{:?}", v.signature_errors());
    let dir = fuzz_dir().join("corpus/console");
    for path in files(&dir).expect("the console corpus") {
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("error_"))
        {
            continue;
        }
        let script = std::fs::read_to_string(&path).expect("a UTF-8 script");
        let src: std::sync::Arc<dyn kezek_engine::console::StateSource> =
            bodies::small_city().state.clone();
        let out = kezek_engine::console::run(src, &script, &bodies::console_limits());
        assert!(out.is_ok(), "{}: {out:?}", path.display());
    }
}
