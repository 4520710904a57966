//! The bodies of the fuzz targets, one function per target, and the small city they share.
//!
//! Why one file included twice: each fuzz binary (`fuzz/fuzz_targets/<target>.rs`, built
//! by cargo-fuzz on the nightly flags in the separate `fuzz/` workspace) and the replay
//! test of the main workspace (`tests/tests/fuzz_corpus.rs`, stable, run by `cargo test`)
//! include this very file with `#[path]`, so the code a corpus is replayed through is the
//! code it was found with: they cannot drift. A library crate would do the same but would
//! have to belong to one of the two workspaces (and be built twice with different flags);
//! the file needs only what both sides already depend on (`kezek-engine`, `kezek-pki`,
//! `jiff`).
//!
//! A body returns normally for any input; it panics (the fuzzer's finding, the replay
//! test's failure) when the code under test panics or when a property that must hold
//! does not. Each body checks what is cheap to check, not just "no panic".

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use jiff::civil::{date, Date};
use jiff::{SignedDuration, Timestamp};
use kezek_engine::console::{self, Limits};
use kezek_engine::event::GroupRow;
use kezek_engine::iin::Iin;
use kezek_engine::rules::{AppFacts, LockFacts};
use kezek_engine::{
    import, Actor, AppNo, Command, Core, EventRecord, Language, RegisterInput, Request, RuleSet,
    State,
};
use kezek_pki::rsa::{Pkcs1v15Sign, RsaPublicKey};
use kezek_pki::{Purpose, TrustStore};

/// The rule files, in the order the first byte of a `rule_loader` input picks them.
pub const RULE_FILES: [&str; 5] = [
    "categories.rhai",
    "order.rhai",
    "referral.rhai",
    "phases.rhai",
    "calendar.rhai",
];

/// The engine's CSV import rows checked against the small city per input (each check
/// runs the rules once).
const MAX_CHECKED_ROWS: usize = 16;

// ------------------------------------------------------------------ the small city

/// A small city built through the engine's own commands: two kindergartens, a dozen
/// applications, a publication, referrals taken, recalled, extended, used and expired,
/// category changes, a withdrawal, an applicant change. Its state is what console
/// scripts read; its records are the event decoder's seeds.
pub struct SmallCity {
    /// The engine over the city (commands are only decided against it, never executed).
    pub core: Core,
    /// A copy of the state for the console (which reads through `Arc<dyn StateSource>`).
    pub state: Arc<State>,
    pub records: Vec<EventRecord>,
    /// The instant the city was last advanced to.
    pub now: Timestamp,
}

/// Built once per process (the fuzzer runs millions of inputs against it).
pub fn small_city() -> &'static SmallCity {
    static CITY: OnceLock<SmallCity> = OnceLock::new();
    CITY.get_or_init(build_small_city)
}

fn operator() -> Actor {
    Actor::Operator("fuzz".into())
}

/// 09:00 in Almaty on `d` (UTC+5).
fn morning(d: Date) -> Timestamp {
    d.at(4, 0, 0, 0)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .expect("a civil time in range")
        .timestamp()
}

fn run(core: &mut Core, records: &mut Vec<EventRecord>, command: Command, now: Timestamp) {
    records.extend(core.advance(now).expect("the small city advances"));
    let req = Request {
        command,
        actor: operator(),
        reason: Some("fuzz seed city".into()),
    };
    match core.execute(&req, now) {
        Ok(recs) => records.extend(recs),
        Err(e) => panic!(
            "the small city's command {:?} was refused: {e:?}",
            req.command
        ),
    }
}

/// The first application in the queue of `cohort`, from position `from` (1-based) on,
/// that is not locked out of priority places at `now`.
fn first_free(core: &Core, cohort: i32, from: usize, now: Timestamp) -> AppNo {
    let queue = core
        .state
        .queue(cohort)
        .expect("the small city has this cohort");
    queue
        .page(from - 1, 20)
        .into_iter()
        .map(|k| k.app)
        .find(|id| {
            core.state
                .app(*id)
                .is_some_and(|a| a.locked_until.is_none_or(|t| t <= now))
        })
        .expect("the small city's queue has a free application")
}

fn build_small_city() -> SmallCity {
    let mut core = Core::default();
    let mut records = Vec::new();
    let mut now = morning(date(2026, 12, 2));
    run(
        &mut core,
        &mut records,
        Command::ActivateRules {
            files: RuleSet::default_files(),
        },
        now,
    );
    let group = |kg: &str, cohort, language, capacity| GroupRow {
        kindergarten: kg.into(),
        name: format!("ГККП «Ясли-сад {kg}»"),
        district: "Бостандыкский".into(),
        cohort,
        language,
        capacity,
    };
    run(
        &mut core,
        &mut records,
        Command::AddGroups {
            groups: vec![
                group("DDO-0001", 2022, Language::Ru, 20),
                group("DDO-0001", 2023, Language::Kk, 18),
                group("DDO-0002", 2022, Language::Ru, 25),
            ],
        },
        now,
    );
    let categories = [
        "general",
        "large_family",
        "disability",
        "teacher",
        "general",
    ];
    for i in 0..12u32 {
        let cohort = if i % 3 == 2 { 2023 } else { 2022 };
        let birth = date(cohort as i16, 1 + (i % 12) as i8, 1 + i as i8);
        let input = RegisterInput {
            app: None,
            child_iin: Iin::make_valid(birth, i % 2 == 0, 100 + i * 7)
                .as_str()
                .to_string(),
            birth_date: birth,
            applicant_iin: Iin::make_valid(date(1990, 3, 1 + i as i8), i % 2 == 1, 200 + i * 7)
                .as_str()
                .to_string(),
            child_name: Some(format!("Ребёнок {i}")),
            applicant_name: Some(format!("Родитель {i}")),
            category: Some(categories[i as usize % categories.len()].to_string()),
            language: Some(if cohort == 2022 {
                Language::Ru
            } else {
                Language::Kk
            }),
            email: (i % 4 == 0).then(|| format!("parent{i}@example.kz")),
            phone: (i % 4 == 1).then(|| format!("+7701555{i:04}")),
            registered_at: None,
        };
        now += SignedDuration::from_mins(7);
        run(
            &mut core,
            &mut records,
            Command::Register(Box::new(input)),
            now,
        );
    }
    now = morning(date(2026, 12, 3));
    run(
        &mut core,
        &mut records,
        Command::Publish {
            kindergarten: "DDO-0001".into(),
            cohort: 2022,
            language: Language::Ru,
            places: 3,
        },
        now,
    );
    let publication = 1;
    // The first in the queue takes a place and recalls it (a lock follows).
    let first = first_free(&core, 2022, 1, now);
    run(
        &mut core,
        &mut records,
        Command::Take {
            app: first,
            publication,
        },
        now,
    );
    now += SignedDuration::from_hours(1);
    run(&mut core, &mut records, Command::Recall { app: first }, now);
    // The next one takes a place, extends it and is enrolled.
    let second = first_free(&core, 2022, 1, now);
    run(
        &mut core,
        &mut records,
        Command::Take {
            app: second,
            publication,
        },
        now,
    );
    run(
        &mut core,
        &mut records,
        Command::Extend { app: second },
        now,
    );
    run(
        &mut core,
        &mut records,
        Command::Enroll { app: second },
        now,
    );
    // The next one takes a place and lets it expire (stop-list).
    let third = first_free(&core, 2022, 1, now);
    run(
        &mut core,
        &mut records,
        Command::Take {
            app: third,
            publication,
        },
        now,
    );
    // Category changes, a benefit cancelled, a withdrawal, an applicant change.
    let kk_first = first_free(&core, 2023, 1, now);
    run(
        &mut core,
        &mut records,
        Command::ChangeCategory {
            app: kk_first,
            category: "orphan".into(),
        },
        now,
    );
    run(
        &mut core,
        &mut records,
        Command::CancelBenefit { app: kk_first },
        now,
    );
    let kk_second = first_free(&core, 2023, 2, now);
    run(
        &mut core,
        &mut records,
        Command::Withdraw { app: kk_second },
        now,
    );
    let last = first_free(&core, 2022, 2, now);
    run(
        &mut core,
        &mut records,
        Command::ChangeApplicant {
            app: last,
            applicant_iin: Iin::make_valid(date(1985, 7, 14), true, 4242)
                .as_str()
                .to_string(),
            applicant_name: Some("Сапарова Алия".into()),
        },
        now,
    );
    // Time passes: the priority phase ends, the referral expires, locks and the
    // stop-list end.
    for days in [10, 40, 400] {
        now = morning(date(2026, 12, 3)) + SignedDuration::from_hours(24 * days);
        records.extend(core.advance(now).expect("the small city advances"));
    }
    core.state
        .check_invariants()
        .expect("the small city keeps the engine's invariants");
    let state =
        Arc::new(State::from_data(core.state.data.clone()).expect("the small city's data reloads"));
    SmallCity {
        core,
        state,
        records,
        now,
    }
}

// ------------------------------------------------------------------ event_decode

/// The event log decoder: any bytes decode to a record or an error, never a panic. A
/// decoded record re-encodes to bytes that decode to the same record, and those bytes
/// are a fixed point (the log hashes the canonical encoding, so it must be stable).
/// The same bytes read as a block of records (the store's value layout) give records or
/// an error, never a panic; a decoded block re-encodes to a block of the same records.
pub fn event_decode(data: &[u8]) {
    if let Ok(recs) = kezek_engine::store::decode_block(data) {
        assert!(!recs.is_empty(), "a decoded block holds records");
        let again = kezek_engine::store::decode_block(&kezek_engine::store::encode_block(&recs))
            .expect("a re-encoded block decodes");
        assert_eq!(again, recs, "decode(encode(block)) is the block");
    }
    let Ok(rec) = EventRecord::decode(data) else {
        return;
    };
    let bytes = rec.encode();
    let again = EventRecord::decode(&bytes).expect("a re-encoded record decodes");
    assert_eq!(again, rec, "decode(encode(record)) is the record");
    assert_eq!(again.encode(), bytes, "the encoding is canonical");
    assert_eq!(again.hash(), rec.hash());
    // A block holding this one record, as the store writes it.
    let block = kezek_engine::store::encode_block(std::slice::from_ref(&rec));
    let frames = kezek_engine::store::block_frames(&block).expect("a written block splits");
    assert_eq!(
        frames,
        vec![&bytes[..]],
        "a one-record block frames the record's bytes"
    );
}

// ------------------------------------------------------------------ csv_import

/// The journal and kindergarten CSV parsers: any bytes give rows or an error naming the
/// row or the header, never a panic. Parsed rows are numbered in increasing order, their
/// categories are the rules', and the engine's registration check (the import's second
/// step, without applying anything) answers each of the first rows with events or an
/// error.
pub fn csv_import(data: &[u8]) {
    let city = small_city();
    let Some(rules) = city.state.rules() else {
        panic!("the small city has rules")
    };
    match import::parse_applications(data, rules) {
        Ok(rows) => {
            assert!(
                rows.windows(2).all(|w| w[0].0 < w[1].0),
                "row numbers increase"
            );
            for (row, input) in rows.into_iter().take(MAX_CHECKED_ROWS) {
                let category = input.category.clone().expect("an import sets the category");
                assert!(
                    rules.category_rank(&category).is_some(),
                    "row {row}: category {category:?} is not the rules'"
                );
                match city
                    .core
                    .decide(&Command::Register(Box::new(input)), city.now)
                {
                    Ok(events) => assert!(!events.is_empty(), "row {row}: accepted, no event"),
                    Err(e) => assert!(!e.message.is_empty(), "row {row}: {e:?}"),
                }
            }
        }
        Err(e) => assert_named(&e.message, "application journal"),
    }
    match import::parse_kindergartens(data) {
        Ok(groups) => {
            for g in &groups {
                assert!(
                    !g.kindergarten.trim().is_empty(),
                    "a group without a kindergarten"
                );
            }
        }
        Err(e) => assert_named(&e.message, "kindergarten groups"),
    }
}

/// An import error names where: the header, a row, a field or the limit that was hit.
fn assert_named(message: &str, what: &str) {
    assert!(
        ["row", "header", "rows", "bytes", "column", "CSV", "csv", "empty", "UTF-8"]
            .iter()
            .any(|w| message.contains(w)),
        "{what}: the error names no row or header: {message:?}"
    );
}

// ------------------------------------------------------------------ rule_loader

/// The rule loader: the first byte picks a rule file, the rest replaces its source. It
/// compiles or is refused with an error naming a rule file (and a line within it); a
/// compiled set answers every rule function with a value or such an error, within the
/// sandbox's limits: never a panic, never a hang.
pub fn rule_loader(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(source) = std::str::from_utf8(rest) else {
        return;
    };
    let file = RULE_FILES[which as usize % RULE_FILES.len()];
    let mut files = RuleSet::default_files();
    files.insert(file.to_string(), source.to_string());
    let check = |e: &kezek_engine::rules::RuleError| {
        assert!(
            RULE_FILES.contains(&e.file.as_str()),
            "a rule error names no rule file: {e:?}"
        );
        assert!(!e.message.is_empty(), "a rule error without a message");
        if let (Some(line), Some(text)) = (e.line, files.get(&e.file)) {
            assert!(
                line >= 1 && line <= text.lines().count() + 1,
                "{e:?}: no such line in {} ({} lines)",
                e.file,
                text.lines().count()
            );
        }
    };
    let rules = match RuleSet::compile(&files) {
        Ok(r) => r,
        Err(e) => return check(&e),
    };
    let Some(category) = rules.params().categories.first().map(|c| c.code.clone()) else {
        panic!("a compiled rule set without categories")
    };
    let registered_at: Timestamp = "2024-03-01T05:00:00Z".parse().expect("an instant");
    let facts = AppFacts {
        id: "UO.2024.123456.1",
        category: &category,
        language: "kk",
        birth_date: date(2022, 5, 17),
        registered_at,
    };
    if let Err(e) = rules.order_key(&facts) {
        check(&e);
    }
    if let Err(e) = rules.cohort(&facts) {
        check(&e);
    }
    if let Err(e) = rules.priority_eligible(3, 2) {
        check(&e);
    }
    let lock = LockFacts {
        recalled_at: registered_at,
        free_access_at: registered_at + SignedDuration::from_hours(72),
    };
    if let Err(e) = rules.lock_after_recall(&lock) {
        check(&e);
    }
    if let Err(e) = rules.publication_allowed(date(2024, 8, 15)) {
        check(&e);
    }
}

// ------------------------------------------------------------------ xml_verify

const NCA_CA: &[u8] = include_bytes!("../../pki/tests/fixtures/nca/nca_rsa_test.pem");
const NCA_CRL: &[u8] = include_bytes!("../../pki/tests/fixtures/nca/nca_rsa_test.crl.der");

fn nca_trust() -> &'static TrustStore {
    static T: OnceLock<TrustStore> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = TrustStore::new();
        t.add_ca_bytes(NCA_CA).expect("the NCA test CA loads");
        t.add_crl(NCA_CRL).expect("the NCA test CRL loads");
        t
    })
}

/// The canonical form of the profile's one SignedInfo (what the signer writes, after
/// inclusive C14N: the namespace declaration moves onto SignedInfo, empty elements get
/// end tags), written out by hand here so that the check below does not reuse the
/// verifier's own reading of SignedInfo.
fn canonical_signed_info(digest_b64: &str) -> String {
    const DS: &str = "http://www.w3.org/2000/09/xmldsig#";
    format!(
        "<ds:SignedInfo xmlns:ds=\"{DS}\">\n\
<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/TR/2001/REC-xml-c14n-20010315\"></ds:CanonicalizationMethod>\n\
<ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256\"></ds:SignatureMethod>\n\
<ds:Reference URI=\"\">\n\
<ds:Transforms>\n\
<ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"></ds:Transform>\n\
<ds:Transform Algorithm=\"http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments\"></ds:Transform>\n\
</ds:Transforms>\n\
<ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"></ds:DigestMethod>\n\
<ds:DigestValue>{digest_b64}</ds:DigestValue>\n\
</ds:Reference>\n\
</ds:SignedInfo>"
    )
}

/// The XML signature verifier: any bytes give a report, never a panic. The report is
/// consistent with the signature check alone (valid only if the signature checks out,
/// the chain is trusted and nothing is wrong). When the signature checks out, the
/// signer's key really signed a SignedInfo whose digest is that of the content handed
/// back: recomputed here from the canonical content and the profile's SignedInfo and
/// checked with RSA directly, so a verifier that accepted a signature over something
/// else than what it hands back would fail.
pub fn xml_verify(data: &[u8]) {
    let at: Timestamp = "2022-06-01T00:00:00Z".parse().expect("an instant");
    let report = kezek_pki::verify(data, nca_trust(), at, Purpose::Sign);
    let checked = kezek_pki::verify_signature(data);
    let signature_valid = checked.as_ref().is_ok_and(|v| v.signature_valid());
    assert_eq!(
        report.signature_valid, signature_valid,
        "the report and the signature check disagree"
    );
    if report.valid {
        assert!(
            report.signature_valid && report.errors.is_empty(),
            "{report:?}"
        );
        assert!(report.signer.is_some(), "a valid report names its signer");
    } else {
        assert!(
            !report.errors.is_empty(),
            "a refused report gives no reason"
        );
    }
    let Ok(v) = checked else { return };
    if !v.signature_valid() {
        assert!(!v.signature_errors().is_empty());
        assert!(
            v.root().is_err(),
            "content handed back from a bad signature"
        );
        return;
    }
    use kezek_pki::rsa::sha2::{Digest, Sha256};
    let content = v.canonical_bytes();
    let digest_b64 = base64_encode(&Sha256::digest(content));
    let signed_info = canonical_signed_info(&digest_b64);
    let key: &RsaPublicKey = v
        .certificate()
        .rsa_public_key()
        .expect("a verified signature has an RSA key");
    let signature_value = signature_value(data).expect("a verified signature has a value");
    key.verify(
        Pkcs1v15Sign::new::<Sha256>(),
        &Sha256::digest(signed_info.as_bytes()),
        &signature_value,
    )
    .expect("the signer's key signed the digest of the content handed back");
    let root = v.root().expect("a valid signature hands back its content");
    assert!(
        !String::from_utf8_lossy(content).contains("SignatureValue"),
        "the signed content still holds the signature ({})",
        root.name
    );
}

/// The text of the `SignatureValue` element (the profile has exactly one), base64-decoded:
/// read with the XML parser alone, not with the verifier's reading of the signature.
fn signature_value(xml: &[u8]) -> Option<Vec<u8>> {
    let doc = kezek_pki::xml::parse(xml).ok()?;
    let node = doc.descendants().find(|n| {
        n.is_element()
            && n.tag_name().name() == "SignatureValue"
            && n.tag_name().namespace() == Some("http://www.w3.org/2000/09/xmldsig#")
    })?;
    let text: String = node
        .children()
        .filter(|c| c.is_text())
        .filter_map(|c| c.text())
        .collect();
    base64_decode(&text)
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
    {
        let v = B64.iter().position(|&x| x == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

// ------------------------------------------------------------------ console

/// Tight bounds so that one run is fast under the fuzzer.
pub fn console_limits() -> Limits {
    Limits {
        max_operations: 20_000,
        max_time: Duration::from_millis(250),
        max_call_levels: 16,
        max_expr_depth: 32,
        max_function_expr_depth: 16,
        max_string_size: 4 * 1024,
        max_array_size: 512,
        max_map_size: 4 * 1024,
        max_variables: 64,
        max_functions: 16,
        max_script_bytes: 4 * 1024,
        max_output_bytes: 16 * 1024,
        max_output_items: 512,
        max_output_depth: 8,
        max_print_lines: 16,
        max_print_bytes: 1024,
        max_page: 20,
    }
}

/// The console script runner over the small city: any script gives a result or a
/// `console_*` error, never a panic (not even one the runner catches: that is
/// `console_failed`); the result stays within the limits; the state is unchanged.
pub fn console(data: &[u8]) {
    let Ok(script) = std::str::from_utf8(data) else {
        return;
    };
    let city = small_city();
    let limits = console_limits();
    let before = city.state.digest();
    let src: Arc<dyn console::StateSource> = city.state.clone();
    match console::run(src, script, &limits) {
        Ok(out) => {
            assert!(out.output.len() <= limits.max_print_lines + 1, "{out:?}");
            let bytes = out.result.to_string().len();
            assert!(bytes <= limits.max_output_bytes, "{bytes} bytes of result");
        }
        Err(e) => {
            assert_ne!(
                e.code, "console_failed",
                "the script engine panicked: {e:?}"
            );
            assert!(e.code.starts_with("console_"), "{e:?}");
            assert!(!e.message.is_empty(), "{e:?}");
        }
    }
    assert_eq!(
        city.state.digest(),
        before,
        "a console run changed the state"
    );
}
