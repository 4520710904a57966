//! Crash tests: the `kezek` process is killed with SIGKILL (`Child::kill` on Unix) in the
//! middle of a bulk import and in the middle of a series of single commands. After each
//! kill the store is reopened: every command reported done (exit 0 seen before the kill)
//! must be there, and `audit verify` must pass (the chain verifies, the replay matches the
//! live state and the snapshot, the invariants hold).

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{Kezek, Rng};
use jiff::civil::date;
use jiff::ToSpan;
use kezek_engine::iin::Iin;
use kezek_engine::store::IMPORT_GROUP_EVENTS;
use kezek_engine::{AppNo, Store};

const NOW: &str = "2026-12-02T04:00:00Z";
const ROWS: usize = 30_000;
/// Kills during the bulk import.
const ROUNDS: usize = 5;

/// A journal of `ROWS` valid applications (cohorts 2019 to 2023), in file order.
fn big_journal() -> (String, Vec<String>) {
    let mut csv = String::with_capacity(ROWS * 110);
    csv.push_str("application number,child iin,birth date,registration date and time,category,status,applicant iin,language\n");
    let cats = [
        "general",
        "general",
        "general",
        "large_family",
        "general",
        "teacher",
        "general",
        "disability",
    ];
    let mut ids = Vec::with_capacity(ROWS);
    for i in 0..ROWS {
        let birth = date(2019, 1, 1)
            .checked_add(((i % 1800) as i64).days())
            .unwrap();
        // 20 serials per bucket: `make_valid` searches within them, so IINs are unique.
        let child = Iin::make_valid(birth, i % 2 == 1, (i / 1800) as u32 * 20);
        let applicant = Iin::make_valid(
            date(1990, 1 + (i % 12) as i8, 1 + (i % 28) as i8),
            i % 3 == 0,
            (i % 500) as u32 * 20,
        );
        let registered =
            birth
                .checked_add(30.days())
                .unwrap()
                .at(9 + (i % 9) as i8, (i % 60) as i8, 0, 0);
        let no = format!("UO.{}.{}.1", registered.year(), 100_000 + i);
        csv.push_str(&format!(
            "{no},{child},{birth},{registered},{},queued,{applicant},{}\n",
            cats[i % cats.len()],
            if i % 3 == 0 { "ru" } else { "kk" }
        ));
        ids.push(no);
    }
    (csv, ids)
}

/// Opens the store in this process (the killed process holds no lock any more).
fn open(k: &Kezek) -> Store {
    Store::open(&k.data()).expect("the store reopens after a kill")
}

fn app_no(s: &str) -> AppNo {
    s.parse().unwrap()
}

/// KNOWN BUG (sled 0.34.7, upstream spacejam/sled#1527 and #1533), reported: opening a
/// sled database writes a fresh snapshot as `snap.<lsn>.generating`, then renames it. A
/// process killed between the two leaves the temporary file behind, and every later open
/// picks it (it sorts last), finds it empty and fails with "Read corrupted data at file
/// offset None": the store no longer opens at all, though the log is intact. `Store::open` removes such files and opens again;
/// this helper checks that it never has to. See `a_half_written_sled_snapshot_does_not_brick_the_store`.
///
/// After a kill, this applies the workaround the store lacks: if the store does not open
/// for exactly that reason, it removes the leftover temporary snapshot files. Returns how
/// many it removed (0 if the store opened).
fn clear_half_written_sled_snapshot(k: &Kezek) -> usize {
    let r = k.run(&["audit", "verify", "--json"]);
    if r.code != 1 || !r.stdout.contains("Read corrupted data") {
        return 0;
    }
    let mut removed = 0;
    for e in std::fs::read_dir(k.data()).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            std::fs::remove_file(&p).unwrap();
            removed += 1;
        }
    }
    assert!(
        removed > 0,
        "the store does not open, and not for the known reason: {r:?}"
    );
    removed
}

/// `audit verify --json` after a kill: (exit code, report).
fn audit(k: &Kezek) -> (i32, serde_json::Value) {
    let r = k.run(&["audit", "verify", "--json"]);
    // On failure the command prints the report and then the error object: two JSON
    // documents in a row (reported). Read the first.
    let v: serde_json::Value = serde_json::Deserializer::from_str(&r.stdout)
        .into_iter()
        .next()
        .and_then(Result::ok)
        .unwrap_or_else(|| panic!("audit printed no JSON: {r:?}"));
    (r.code, v)
}

/// KNOWN BUG (reported): `Store::import_applications` applies every row to the state
/// first and then persists the records in groups of `IMPORT_GROUP_EVENTS`; `persist`
/// writes a snapshot of the *whole* in-memory state as soon as the state is 20,000 events
/// past the last snapshot — which, for a large import, is already true after the first
/// group. A kill before the last group is written leaves a snapshot holding rows the log
/// does not: on reopen the live state (from the snapshot) has every row, the log only
/// some, and `audit verify` finds the replay and the snapshot differ. The signature of
/// that state, as `audit verify --json` reports it.
fn is_import_snapshot_bug(report: &serde_json::Value) -> bool {
    let r = &report["report"];
    report["ok"] == false
        && r["chain_ok"] == true
        && r["invariants_ok"] == true
        && r["replay_matches"] == false
        && r["snapshot_matches"] == false
}

#[test]
fn kill_during_a_bulk_import() {
    let (csv, ids) = big_journal();
    // One import to the end, to learn how long it takes here.
    let full = Kezek::init(NOW);
    let file = full.write("journal.csv", &csv);
    let started = Instant::now();
    let out = full.ok(&["import", "applications", &file]);
    let took = started.elapsed();
    assert!(
        out.starts_with(&format!("imported {ROWS} applications")),
        "{out}"
    );
    assert_eq!(open(&full).state().data.apps.len(), ROWS);
    full.verify();
    eprintln!("a {ROWS}-row import takes {took:?}");

    let mut rng = Rng(0x5EED_1A0C);
    let (mut partial, mut sled_leftovers) = (0, 0);
    for round in 0..ROUNDS {
        let k = Kezek::init(NOW);
        let file = k.write("journal.csv", &csv);
        // Kill between 30% and 110% of the import's run time (reading and checking the
        // rows comes first; the groups are written in the last part).
        let ms = took.as_millis() as u64;
        let delay =
            Duration::from_millis(rng.range(ms * 3 / 10, (ms * 11 / 10).max(ms * 3 / 10 + 1)));
        let mut child = k.spawn(&["import", "applications", &file]);
        std::thread::sleep(delay);
        let done = match child.try_wait().unwrap() {
            Some(status) => {
                assert!(
                    status.success(),
                    "round {round}: the import failed on its own"
                );
                true
            }
            None => {
                child.kill().unwrap();
                child.wait().unwrap();
                false
            }
        };

        // Reopen: the audit passes, whatever the moment of the kill.
        sled_leftovers += clear_half_written_sled_snapshot(&k);
        let (code, report) = audit(&k);
        if code != 0 && !done && is_import_snapshot_bug(&report) {
            panic!("round {round}: killed after {delay:?}: the snapshot holds rows the log does not: {report}");
        }
        assert_eq!(
            code, 0,
            "round {round} (killed after {delay:?}): audit verify failed: {report}"
        );
        let n = {
            let store = open(&k);
            let apps = &store.state().data.apps;
            if done {
                assert_eq!(
                    apps.len(),
                    ROWS,
                    "round {round}: an import reported done is not all there"
                );
            }
            // What is there is a prefix of the file, committed in whole groups.
            assert_eq!(
                apps.len() % IMPORT_GROUP_EVENTS,
                0,
                "round {round}: {} applications",
                apps.len()
            );
            for id in &ids[..apps.len()] {
                assert!(
                    apps.contains_key(&app_no(id)),
                    "round {round}: {id} missing from the committed prefix"
                );
            }
            apps.len()
        };
        if n != 0 && n != ROWS {
            partial += 1;
        }
        eprintln!("round {round}: killed after {delay:?}, done {done}, {n} applications committed");
        if done {
            k.ok(&["show", &ids[0]]);
            k.ok(&["show", &ids[ROWS - 1]]);
        }
        // The store takes commands after the crash, and still verifies.
        let next = k.register(date(2024, 4, 4), 1, "general", "kk");
        k.ok(&["show", &next]);
        assert_eq!(k.verify(), 1 + n as u64 + 1, "round {round}");
    }
    eprintln!(
        "{partial} of {ROUNDS} rounds left a partial import; {sled_leftovers} half-written sled snapshot(s) removed"
    );
    assert_eq!(
        sled_leftovers, 0,
        "Store::open should clear half-written sled snapshots itself"
    );
}

/// One command of the series, and what it reported.
#[derive(Debug)]
enum Done {
    Registered(String),
    Published(u64),
    Took { app: String, referral: u64 },
    Ticked(jiff::Timestamp),
}

#[test]
fn kill_during_a_series_of_single_commands() {
    let k = Kezek::init(NOW);
    k.import_kindergartens("id,name,district,cohort,language,capacity\nK1,ГККП «Ясли-сад № 1»,Алмалинский,2022,kk,1000\n");
    let mut serial = 0u32;
    let mut done: Vec<Done> = Vec::new();
    let started = Instant::now();

    for (iteration, seed) in [11u64, 23, 37, 41, 53, 67, 79, 83, 97, 101]
        .into_iter()
        .enumerate()
    {
        let mut rng = Rng(seed);
        // The model of this iteration, read from the store: the cohort's queue in order
        // (everyone is general and registered no earlier than the one before, so new
        // applications join at the end) and the publications with places left.
        let (mut queue, mut open_pubs, mut now) = {
            let store = open(&k);
            let s = store.state();
            let queue: Vec<String> = s
                .queue(2022)
                .map(|q| q.page(0, 100_000))
                .unwrap_or_default()
                .iter()
                .map(|key| key.app.to_string())
                .collect();
            let pubs: Vec<u64> = s
                .data
                .publications
                .values()
                .filter(|p| p.places_left > 0)
                .map(|p| p.id)
                .collect();
            (queue, pubs, store.config().manual_now)
        };
        let deadline = Instant::now() + Duration::from_millis(rng.range(30, 1_200));
        let mut killed = None;
        'series: for step in 0.. {
            serial += 1;
            let birth = date(2022, 1, 1)
                .checked_add(((serial % 360) as i64).days())
                .unwrap();
            let child = Iin::make_valid(birth, false, (serial / 360) * 20).to_string();
            let applicant = common::adult_iin(serial);
            let birth_s = birth.to_string();
            let take_app = queue.first().cloned();
            let take_pub = open_pubs.first().map(|p| p.to_string());
            let args: Vec<&str> = match step % 5 {
                0 | 1 => vec![
                    "register",
                    "--child-iin",
                    &child,
                    "--birth-date",
                    &birth_s,
                    "--applicant-iin",
                    &applicant,
                ],
                2 => vec![
                    "publish",
                    "--kindergarten",
                    "K1",
                    "--cohort",
                    "2022",
                    "--language",
                    "kk",
                    "--places",
                    "1",
                    "--json",
                ],
                3 => match (&take_app, &take_pub) {
                    (Some(a), Some(p)) => vec!["take", a, "--publication", p, "--json"],
                    _ => continue,
                },
                _ => vec!["tick", "--by", "1m"],
            };
            let mut child_proc = k.spawn(&args);
            loop {
                if let Some(status) = child_proc.try_wait().unwrap() {
                    let out = child_proc.wait_with_output().unwrap();
                    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
                    assert!(
                        status.success(),
                        "`kezek {}` failed without a kill: {stdout} {}",
                        args.join(" "),
                        String::from_utf8_lossy(&out.stderr)
                    );
                    match args[0] {
                        "register" => {
                            let id = stdout.trim().to_string();
                            queue.push(id.clone());
                            done.push(Done::Registered(id));
                        }
                        "publish" => {
                            let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
                            let id = v["id"].as_u64().unwrap();
                            open_pubs.push(id);
                            done.push(Done::Published(id));
                        }
                        "take" => {
                            let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
                            let app = queue.remove(0);
                            assert_eq!(app, args[1]);
                            open_pubs.remove(0);
                            done.push(Done::Took {
                                app,
                                referral: v["id"].as_u64().unwrap(),
                            });
                        }
                        _ => {
                            now = now.checked_add(jiff::SignedDuration::from_mins(1)).unwrap();
                            done.push(Done::Ticked(now));
                        }
                    }
                    break;
                }
                if Instant::now() >= deadline {
                    child_proc.kill().unwrap();
                    child_proc.wait().unwrap();
                    killed = Some(args.join(" "));
                    break 'series;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }

        // Reopen: everything reported done is there, and the audit passes.
        let leftovers = clear_half_written_sled_snapshot(&k);
        assert_eq!(
            leftovers, 0,
            "iteration {iteration}: the store did not open until half-written sled snapshots were removed by hand"
        );
        let r = k.run(&["audit", "verify", "--json"]);
        assert_eq!(
            r.code, 0,
            "iteration {iteration}: killed during `{killed:?}`: audit verify failed:\n{}\n{}",
            r.stdout, r.stderr
        );
        let store = open(&k);
        let s = store.state();
        for d in &done {
            match d {
                Done::Registered(id) => assert!(
                    s.app(app_no(id)).is_some(),
                    "iteration {iteration}: {id} was registered, then lost"
                ),
                Done::Published(p) => assert!(
                    s.data.publications.contains_key(p),
                    "iteration {iteration}: publication {p} lost"
                ),
                Done::Took { app, referral } => {
                    let r = s.data.referrals.get(referral).unwrap_or_else(|| {
                        panic!("iteration {iteration}: referral {referral} lost")
                    });
                    assert_eq!(r.app.to_string(), *app);
                    assert_eq!(
                        s.app(app_no(app)).unwrap().status,
                        kezek_engine::Status::ReferralIssued
                    );
                }
                Done::Ticked(t) => assert!(
                    store.config().manual_now >= *t,
                    "iteration {iteration}: the clock went back from {t}"
                ),
            }
        }
        let registered: BTreeSet<&str> = done
            .iter()
            .filter_map(|d| {
                if let Done::Registered(id) = d {
                    Some(id.as_str())
                } else {
                    None
                }
            })
            .collect();
        eprintln!(
            "iteration {iteration}: killed during {killed:?}; {} registered so far, {} events",
            registered.len(),
            s.data.last_seq
        );
        drop(store);
    }
    // The `show` command finds every application reported registered.
    for d in &done {
        if let Done::Registered(id) = d {
            k.ok(&["show", id]);
        }
    }
    k.verify();
    eprintln!("series: {:?}", started.elapsed());
}

/// Minimal repro of the sled bug above, without a kill: the file a process killed while
/// opening the store leaves behind. Ignored until `Store::open` works around it (e.g. on a
/// `Corruption` error, remove `snap.*.generating` files and open again).
#[test]
fn a_half_written_sled_snapshot_does_not_brick_the_store() {
    let k = Kezek::init(NOW);
    let id = k.register(date(2022, 3, 1), 1, "general", "kk");
    // The snapshot sled was writing when it was killed, newer than the last complete one.
    std::fs::write(k.data().join("snap.7FFFFFFFFFFFFFFF.generating"), b"").unwrap();
    let r = k.run(&["show", &id]);
    assert_eq!(r.code, 0, "the store no longer opens: {r:?}");
    k.verify();
}

/// The import snapshot bug above, strictly: kills spread over the whole import, and after
/// each the audit must pass. Ignored until the bug is fixed (e.g. `persist` writes a
/// snapshot only when the records it wrote reach the state's last event).
#[test]
fn an_import_killed_between_groups_leaves_log_and_snapshot_in_step() {
    let (csv, _) = big_journal();
    let full = Kezek::init(NOW);
    let file = full.write("journal.csv", &csv);
    let started = Instant::now();
    full.ok(&["import", "applications", &file]);
    let took = started.elapsed();
    for tenth in 1..=9 {
        let k = Kezek::init(NOW);
        let file = k.write("journal.csv", &csv);
        let mut child = k.spawn(&["import", "applications", &file]);
        std::thread::sleep(took * tenth / 10);
        let _ = child.kill();
        child.wait().unwrap();
        clear_half_written_sled_snapshot(&k);
        let (code, report) = audit(&k);
        assert_eq!(code, 0, "killed at {tenth}/10 of the import: {report}");
    }
}
