//! The store keeps what happened: after a random sequence of commands and clock moves run
//! through a `Store` (manual clock, in a temporary folder),
//!
//! - dropping and reopening it gives the same state (also after checkpoints and reopens in
//!   the middle of the sequence, and with the same manual clock);
//! - replaying its log from empty gives the same state;
//! - `verify` finds the chain, the replay, the snapshot and the invariants in order;
//! - an in-memory `Core` fed the same requests agrees with the store at every step.
//!
//! And a corrupted store is detected, never a panic: a flipped byte in a stored event or in
//! the snapshot makes `Store::open` fail or `verify` report the problem.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use jiff::civil::{date, Date, Time};
use jiff::{SignedDuration, Timestamp, ToSpan};
use kezek_engine::event::GroupRow;
use kezek_engine::iin::Iin;
use kezek_engine::{
    Actor, AppNo, ClockMode, Command, Core, EventRecord, Language, RegisterInput, Request, RuleSet,
    State, Status, Store,
};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use tempfile::TempDir;

fn at_local(d: Date, t: Time) -> Timestamp {
    d.to_datetime(t)
        .to_zoned(jiff::tz::TimeZone::get("Asia/Almaty").unwrap())
        .unwrap()
        .timestamp()
}

fn start() -> Timestamp {
    // A Monday in September: no blackout, no holidays for a while.
    at_local(date(2025, 9, 1), Time::constant(9, 0, 0, 0))
}

/// Opens a store, waiting a little while sled still holds the lock of a store dropped
/// a moment ago: sled's I/O threads release the file lock lazily after the `Db` is dropped
/// (spacejam/sled#1234, #1289).
fn open_store(path: &Path) -> kezek_engine::Result<Store> {
    let mut tries = 0;
    loop {
        match Store::open(path) {
            Err(e) if e.code == "store_locked" && tries < 200 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// `sled::open` with the same patience.
fn open_sled(path: &Path) -> sled::Db {
    let mut tries = 0;
    loop {
        match sled::open(path) {
            Err(e) if tries < 200 && e.to_string().contains("lock") => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other.unwrap(),
        }
    }
}

fn operator() -> Actor {
    Actor::Operator("reopen-test".into())
}

const CATEGORIES: [&str; 7] = [
    "military",
    "special_bodies",
    "disability",
    "large_family",
    "orphan",
    "teacher",
    "general",
];

fn groups() -> Vec<GroupRow> {
    let mut rows = Vec::new();
    for (k, name) in [("K1", "ГККП «Ясли-сад № 157»"), ("K2", "ТОО «Балапан-2»")]
    {
        for cohort in 2020..=2022 {
            for language in [Language::Kk, Language::Ru] {
                rows.push(GroupRow {
                    kindergarten: k.into(),
                    name: name.into(),
                    district: "Медеуский".into(),
                    cohort,
                    language,
                    capacity: 5,
                });
            }
        }
    }
    rows
}

/// One step of a sequence; applications and publications are picked by index among those
/// that exist, so that any sequence is meaningful.
#[derive(Debug, Clone)]
enum Step {
    Register {
        year: i32,
        day: u16,
        serial: u16,
        category: usize,
        ru: bool,
        back_secs: u32,
    },
    Publish(usize, u32),
    /// A queued application takes one of its offers.
    TakeOffer(usize, usize),
    /// Any application, any publication (mostly refused).
    Take(usize, usize),
    Recall(usize),
    Extend(usize),
    Enroll(usize),
    CancelBenefit(usize),
    Withdraw(usize),
    ChangeCategory(usize, usize),
    ActivateRules(bool),
    Tick(u32),
    Checkpoint,
    Reopen,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (2020..=2022i32, 0..365u16, 0..50u16, 0..7usize, any::<bool>(), 0..86_400 * 30u32)
            .prop_map(|(year, day, serial, category, ru, back_secs)| Step::Register {
                year,
                day,
                serial,
                category,
                ru,
                back_secs
            }),
        4 => (0..12usize, 1..=3u32).prop_map(|(g, n)| Step::Publish(g, n)),
        8 => (any::<usize>(), any::<usize>()).prop_map(|(a, o)| Step::TakeOffer(a, o)),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, p)| Step::Take(a, p)),
        3 => any::<usize>().prop_map(Step::Recall),
        2 => any::<usize>().prop_map(Step::Extend),
        2 => any::<usize>().prop_map(Step::Enroll),
        1 => any::<usize>().prop_map(Step::CancelBenefit),
        1 => any::<usize>().prop_map(Step::Withdraw),
        1 => (any::<usize>(), 0..7usize).prop_map(|(a, c)| Step::ChangeCategory(a, c)),
        1 => any::<bool>().prop_map(Step::ActivateRules),
        8 => prop_oneof![60..7_200u32, 7_200..86_400 * 3u32, 86_400 * 3..86_400 * 12u32]
            .prop_map(Step::Tick),
        1 => Just(Step::Checkpoint),
        1 => Just(Step::Reopen),
    ]
}

fn rules(alt: bool) -> BTreeMap<String, String> {
    let mut files = RuleSet::default_files();
    if alt {
        files
            .get_mut("referral.rhai")
            .unwrap()
            .push_str("\n// another version\n");
    }
    files
}

/// A store and an in-memory core fed the same requests, side by side.
struct Pair {
    dir: TempDir,
    store: Option<Store>,
    mirror: Core,
    now: Timestamp,
}

impl Pair {
    fn new() -> Pair {
        let dir = TempDir::new().unwrap();
        let now = start();
        let store = Store::init(
            &dir.path().join("store"),
            &RuleSet::default_files(),
            ClockMode::Manual,
            now,
            operator(),
        )
        .unwrap();
        let mut mirror = Core::default();
        mirror.advance(now).unwrap();
        mirror
            .execute(
                &Request {
                    command: Command::ActivateRules {
                        files: RuleSet::default_files(),
                    },
                    actor: operator(),
                    reason: Some("initial rules".into()),
                },
                now,
            )
            .unwrap();
        let mut p = Pair {
            dir,
            store: Some(store),
            mirror,
            now,
        };
        p.agree();
        let groups = Command::AddGroups { groups: groups() };
        p.exec(groups, None).unwrap();
        p
    }

    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("store")
    }

    fn store(&self) -> &Store {
        self.store.as_ref().unwrap()
    }

    fn store_mut(&mut self) -> &mut Store {
        self.store.as_mut().unwrap()
    }

    fn agree(&self) {
        assert_eq!(
            self.store().state().digest(),
            self.mirror.state.digest(),
            "the store and the in-memory core disagree"
        );
    }

    /// Runs a request on both; they must give the same events or the same refusal.
    fn exec(
        &mut self,
        command: Command,
        reason: Option<&str>,
    ) -> Result<Vec<EventRecord>, &'static str> {
        let req = Request {
            command,
            actor: operator(),
            reason: reason.map(str::to_string),
        };
        let now = self.now;
        let got = self.store_mut().execute(&req, now);
        let want = self.mirror.execute(&req, now);
        match (&got, &want) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err(a), Err(b)) => assert_eq!(a.code, b.code),
            _ => panic!("store {got:?} but core {want:?} for {req:?}"),
        }
        self.agree();
        got.map_err(|e| e.code)
    }

    fn tick(&mut self, secs: u32) {
        self.now += SignedDuration::from_secs(secs as i64);
        let now = self.now;
        let a = self.store_mut().tick_to(now).unwrap();
        let b = self.mirror.advance(now).unwrap();
        assert_eq!(a, b);
        self.agree();
    }

    fn reopen(&mut self) {
        let before = self.store().state().digest();
        let seq = self.store().state().data.last_seq;
        self.store = None;
        let store = open_store(&self.path()).expect("reopen");
        assert_eq!(
            store.state().digest(),
            before,
            "reopening changed the state"
        );
        assert_eq!(store.state().data.last_seq, seq);
        assert_eq!(
            store.config().manual_now,
            self.now,
            "the manual clock moved"
        );
        assert_eq!(store.config().clock, ClockMode::Manual);
        assert!(store.state().check_invariants().is_ok());
        self.store = Some(store);
    }

    fn apps(&self, f: impl Fn(Status) -> bool) -> Vec<AppNo> {
        self.store()
            .state()
            .data
            .apps
            .values()
            .filter(|a| f(a.status))
            .map(|a| a.id)
            .collect()
    }

    fn nth(list: &[AppNo], i: usize) -> AppNo {
        if list.is_empty() {
            AppNo {
                year: 2019,
                seq: 1,
                n: 1,
            }
        } else {
            list[i % list.len()]
        }
    }

    fn run(&mut self, s: &Step) {
        let any = |_: Status| true;
        let with_referral = |s: Status| s == Status::ReferralIssued;
        let _ = match s {
            Step::Register {
                year,
                day,
                serial,
                category,
                ru,
                back_secs,
            } => {
                let birth = date(*year as i16, 1, 1)
                    .checked_add((*day as i64).days())
                    .unwrap();
                let input = RegisterInput {
                    child_iin: Iin::make_valid(birth, serial % 2 == 0, *serial as u32).to_string(),
                    birth_date: birth,
                    applicant_iin: Iin::make_valid(date(1988, 3, 3), false, 5).to_string(),
                    child_name: Some("Айша".into()),
                    category: Some(CATEGORIES[*category].into()),
                    language: Some(if *ru { Language::Ru } else { Language::Kk }),
                    registered_at: Some(self.now - SignedDuration::from_secs(*back_secs as i64)),
                    ..RegisterInput::default()
                };
                self.exec(Command::Register(Box::new(input)), None)
            }
            Step::Publish(g, places) => {
                let g = &groups()[*g];
                let cmd = Command::Publish {
                    kindergarten: g.kindergarten.clone(),
                    cohort: g.cohort,
                    language: g.language,
                    places: *places,
                };
                self.exec(cmd, None)
            }
            Step::TakeOffer(a, o) => {
                let queued: Vec<AppNo> = self
                    .apps(|s| s == Status::Queued)
                    .into_iter()
                    .filter(|id| {
                        !self
                            .store()
                            .core()
                            .offers(*id, self.now)
                            .unwrap()
                            .is_empty()
                    })
                    .collect();
                if queued.is_empty() {
                    return;
                }
                let app = queued[a % queued.len()];
                let offers = self.store().core().offers(app, self.now).unwrap();
                let publication = offers[o % offers.len()].id;
                let r = self.exec(Command::Take { app, publication }, None);
                assert!(r.is_ok(), "an offer was refused: {r:?}");
                r
            }
            Step::Take(a, p) => {
                let app = Self::nth(&self.apps(any), *a);
                let n = self.store().state().data.publications.len() as u64;
                self.exec(
                    Command::Take {
                        app,
                        publication: (*p as u64) % (n + 1) + 1,
                    },
                    None,
                )
            }
            Step::Recall(a) => {
                let app = Self::nth(&self.apps(with_referral), *a);
                self.exec(Command::Recall { app }, Some("changed our mind"))
            }
            Step::Extend(a) => {
                let app = Self::nth(&self.apps(with_referral), *a);
                self.exec(Command::Extend { app }, None)
            }
            Step::Enroll(a) => {
                let app = Self::nth(&self.apps(with_referral), *a);
                self.exec(Command::Enroll { app }, None)
            }
            Step::CancelBenefit(a) => {
                let app = Self::nth(&self.apps(any), *a);
                self.exec(Command::CancelBenefit { app }, Some("not confirmed"))
            }
            Step::Withdraw(a) => {
                let app = Self::nth(&self.apps(any), *a);
                self.exec(Command::Withdraw { app }, Some("moved away"))
            }
            Step::ChangeCategory(a, c) => {
                let app = Self::nth(&self.apps(|s| s.is_waiting()), *a);
                let cmd = Command::ChangeCategory {
                    app,
                    category: CATEGORIES[*c].into(),
                };
                self.exec(cmd, Some("documents"))
            }
            Step::ActivateRules(alt) => {
                let cmd = Command::ActivateRules { files: rules(*alt) };
                self.exec(cmd, Some("new version"))
            }
            Step::Tick(secs) => {
                self.tick(*secs);
                Ok(Vec::new())
            }
            Step::Checkpoint => {
                self.store_mut().checkpoint().unwrap();
                let report = self.store().verify().unwrap();
                assert!(report.ok(), "verify after a checkpoint: {report:?}");
                Ok(Vec::new())
            }
            Step::Reopen => {
                self.reopen();
                Ok(Vec::new())
            }
        };
    }

    /// (a) reopen, (b) replay, (c) verify.
    fn check_durable(&mut self) {
        self.reopen();
        let replayed = self.store().replay(|_, _| {}).expect("replay");
        assert_eq!(
            replayed.digest(),
            self.store().state().digest(),
            "replay differs"
        );
        assert!(replayed.check_invariants().is_ok());
        let report = self.store().verify().expect("verify");
        assert!(report.ok(), "verify: {report:?}");
        assert_eq!(report.events, self.store().state().data.last_seq);
    }
}

fn run_steps(steps: &[Step]) -> Pair {
    let mut p = Pair::new();
    for s in steps {
        p.run(s);
    }
    p.check_durable();
    p
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        failure_persistence: None,
        max_shrink_iters: 500,
        ..ProptestConfig::default()
    })]

    #[test]
    fn reopen_replay_and_verify_agree_with_the_live_state(
        steps in prop::collection::vec(step(), 1..70)
    ) {
        run_steps(&steps);
    }

    #[test]
    fn a_checkpoint_in_the_middle_changes_nothing(
        first in prop::collection::vec(step(), 1..40),
        second in prop::collection::vec(step(), 0..40),
    ) {
        let mut p = Pair::new();
        for s in &first {
            p.run(s);
        }
        p.store_mut().checkpoint().unwrap();
        p.check_durable();
        for s in &second {
            p.run(s);
        }
        p.check_durable();
    }
}

// ---------------------------------------------------------------------------------------
// Corruption.

/// A fixed sequence whose log holds every kind of event, with a checkpoint in the middle.
fn scripted_store() -> Pair {
    let mut p = Pair::new();
    let mut apps = Vec::new();
    for (i, cat) in [
        "military",
        "general",
        "large_family",
        "general",
        "teacher",
        "general",
    ]
    .into_iter()
    .enumerate()
    {
        let birth = date(2021, 2, 1 + i as i8);
        let input = RegisterInput {
            child_iin: Iin::make_valid(birth, i % 2 == 0, 100 + i as u32).to_string(),
            birth_date: birth,
            applicant_iin: Iin::make_valid(date(1988, 3, 3), false, 5).to_string(),
            category: Some(cat.into()),
            language: Some(Language::Kk),
            ..RegisterInput::default()
        };
        let recs = p.exec(Command::Register(Box::new(input)), None).unwrap();
        apps.push(recs[0].event.app().unwrap());
        p.tick(600);
    }
    let publish = |places| Command::Publish {
        kindergarten: "K1".into(),
        cohort: 2021,
        language: Language::Kk,
        places,
    };
    p.exec(publish(3), None).unwrap();
    let take = |app| Command::Take {
        app,
        publication: 1,
    };
    // apps: 0 military, 2 large_family, 4 teacher, 1 3 5 general: queue 0, 2, 4, 1, 3, 5.
    p.exec(take(apps[0]), None).unwrap();
    p.tick(3_600);
    p.exec(Command::Recall { app: apps[0] }, Some("changed our mind"))
        .unwrap();
    p.exec(take(apps[2]), None).unwrap();
    p.exec(Command::Extend { app: apps[2] }, None).unwrap();
    p.exec(Command::Enroll { app: apps[2] }, None).unwrap();
    p.store_mut().checkpoint().unwrap();
    p.exec(take(apps[4]), None).unwrap();
    p.exec(
        Command::CancelBenefit { app: apps[4] },
        Some("not confirmed"),
    )
    .unwrap();
    p.exec(
        Command::ChangeCategory {
            app: apps[1],
            category: "orphan".into(),
        },
        Some("documents"),
    )
    .unwrap();
    p.exec(Command::Withdraw { app: apps[5] }, Some("moved away"))
        .unwrap();
    p.tick(86_400 * 4); // phase ends, lock lifted
    p.exec(take(apps[3]), None).unwrap();
    p.tick(86_400 * 9); // the referral expires: stop-list
    p.tick(86_400 * 11); // the stop-list ends
    p.check_durable();
    let names: std::collections::BTreeSet<&str> = p
        .store()
        .records(1)
        .map(|r| r.unwrap().event.name())
        .collect();
    for name in [
        "rules_activated",
        "groups_added",
        "registered",
        "category_changed",
        "places_published",
        "priority_phase_ended",
        "referral_issued",
        "referral_extended",
        "referral_recalled",
        "lock_applied",
        "lock_lifted",
        "referral_expired",
        "stop_list_lifted",
        "benefit_cancelled",
        "enrolled",
        "withdrawn",
    ] {
        assert!(names.contains(name), "the scripted log lacks {name}");
    }
    p
}

/// Every stored block of events: its key and bytes.
fn event_blocks(path: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let db = open_sled(path);
    db.scan_prefix(b"e")
        .map(|kv| {
            let (k, v) = kv.unwrap();
            (k.to_vec(), v.to_vec())
        })
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Rewrites one value of a closed store directly in sled.
fn poke(path: &Path, key: &[u8], f: impl FnOnce(&mut Vec<u8>)) {
    let db = open_sled(path);
    let mut v = db.get(key).unwrap().expect("the key is stored").to_vec();
    f(&mut v);
    db.insert(key, v).unwrap();
    db.flush().unwrap();
}

/// The snapshot's own tree (the store's layout 3).
const SNAPSHOT_TREE: &[u8] = b"snapshot";

/// Moves the snapshot back into the log's tree, where layouts 1 and 2 kept it.
fn put_snapshot_beside_the_log(db: &sled::Db) {
    let tree = db.open_tree(SNAPSHOT_TREE).unwrap();
    let snap = tree
        .remove(b"s")
        .unwrap()
        .expect("the scripted store has a snapshot");
    db.insert(b"s", snap).unwrap();
}

/// Opens an older store (upgrading it), checks it holds `before` and verifies, and leaves
/// it at layout 3 with the snapshot only in its own tree.
fn open_upgraded(path: &Path, before: &kezek_engine::state::Data) -> Store {
    let store = open_store(path).unwrap();
    assert_eq!(&store.state().data, before);
    let report = store.verify().unwrap();
    assert!(report.ok(), "{report:?}");
    store
}

fn assert_layout_3(path: &Path) {
    let db = open_sled(path);
    assert_eq!(db.get(b"l").unwrap().as_deref(), Some(&[3u8][..]));
    assert_eq!(
        db.get(b"s").unwrap(),
        None,
        "no snapshot left beside the log"
    );
    let tree = db.open_tree(SNAPSHOT_TREE).unwrap();
    assert!(
        tree.get(b"s").unwrap().is_some(),
        "the snapshot is in its tree"
    );
}

fn poke_snapshot(path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let db = open_sled(path);
    let tree = db.open_tree(SNAPSHOT_TREE).unwrap();
    let mut v = tree
        .get(b"s")
        .unwrap()
        .expect("a snapshot is stored")
        .to_vec();
    f(&mut v);
    tree.insert(b"s", v).unwrap();
    db.flush().unwrap();
}

/// What opening and verifying a corrupted store gives: `Err` from open, or the report.
fn open_and_verify(path: &Path) -> Result<kezek_engine::store::VerifyReport, String> {
    let store = open_store(path).map_err(|e| format!("{}: {}", e.code, e.message))?;
    store
        .verify()
        .map_err(|e| format!("{}: {}", e.code, e.message))
}

/// A flipped byte in a stored event, the last one included, is detected: opening fails,
/// or (for an event already in the snapshot) `verify` reports a broken chain. The last
/// event is held by the chain head, written beside the log in the same batch.
#[test]
fn a_corrupted_event_is_detected_not_a_panic() {
    let mut p = scripted_store();
    let original = p.path();
    p.store = None;
    let blocks = event_blocks(&original);
    assert!(blocks.len() >= 5, "{} blocks", blocks.len());
    let mut cases = 0;
    for (i, (key, bytes)) in blocks.iter().enumerate() {
        // Blocks before the snapshot, after it, the one just before the last, and the last.
        if !(i % 3 == 1 || i + 2 >= blocks.len()) {
            continue;
        }
        // The format byte, the first record's length, and bytes inside the records.
        for pos in [0, 1, bytes.len() / 3, bytes.len() / 2, bytes.len() - 1] {
            let dir = TempDir::new().unwrap();
            let path = dir.path().join("store");
            copy_dir(&original, &path);
            poke(&path, key, |v| v[pos] ^= 0x5a);
            let outcome = catch_unwind(AssertUnwindSafe(|| open_and_verify(&path)));
            let at = format!("block {i} (of {}), byte {pos}", blocks.len());
            match outcome {
                Err(_) => panic!("{at}: opening or verifying panicked"),
                Ok(Err(_)) => {}
                Ok(Ok(report)) => assert!(
                    !report.chain_ok || !report.replay_matches,
                    "{at}: corruption not detected: {report:?}"
                ),
            }
            cases += 1;
        }
    }
    assert!(cases >= 20, "{cases} cases");
}

/// A store written before events were kept in blocks (one record per sled value, no layout
/// marker, the snapshot beside the log) opens: its values are rewritten as one-record
/// blocks, the snapshot moves to its own tree, the state is the same, and the chain
/// verifies.
#[test]
fn a_store_with_one_record_per_value_is_upgraded_on_open() {
    let mut p = scripted_store();
    let before = p.store().state().data.clone();
    let path = p.path();
    p.store = None;
    let blocks = event_blocks(&path);
    {
        let db = open_sled(&path);
        let mut records = 0;
        for (key, bytes) in &blocks {
            db.remove(key).unwrap();
            for rec in kezek_engine::store::decode_block(bytes).unwrap() {
                let mut k = vec![b'e'];
                k.extend_from_slice(&rec.seq.to_be_bytes());
                db.insert(k, rec.encode()).unwrap();
                records += 1;
            }
        }
        assert!(records > blocks.len(), "some block holds several records");
        db.remove(b"l")
            .unwrap()
            .expect("a layout marker was stored");
        put_snapshot_beside_the_log(&db);
        db.flush().unwrap();
    }
    let store = open_upgraded(&path, &before);
    assert_eq!(
        store.record(2).unwrap().seq,
        2,
        "a single record reads from an upgraded value"
    );
    drop(store);
    assert_layout_3(&path);
}

/// A store of layout 2 (events in blocks, the snapshot in the log's tree, where every
/// command rewrote it) opens: the snapshot moves to its own tree, the state is the same,
/// and a later checkpoint writes there only.
#[test]
fn a_store_with_the_snapshot_beside_the_log_is_upgraded_on_open() {
    let mut p = scripted_store();
    let before = p.store().state().data.clone();
    let path = p.path();
    p.store = None;
    {
        let db = open_sled(&path);
        put_snapshot_beside_the_log(&db);
        db.insert(b"l", &[2u8]).unwrap();
        db.flush().unwrap();
    }
    let mut store = open_upgraded(&path, &before);
    store.checkpoint().unwrap();
    drop(store);
    assert_layout_3(&path);
    let store = open_store(&path).unwrap();
    assert_eq!(store.state().data, before);
}

/// An unknown layout marker is refused with an error, not read as some layout.
#[test]
fn an_unknown_store_layout_is_refused() {
    let mut p = scripted_store();
    let path = p.path();
    p.store = None;
    {
        let db = open_sled(&path);
        db.insert(b"l", &[9u8]).unwrap();
        db.flush().unwrap();
    }
    let err = open_store(&path).err().expect("refused");
    assert!(err.message.contains("layout"), "{}", err.message);
}

/// A flipped byte in the snapshot is detected: opening fails, or `verify` says the
/// snapshot (or the live state built on it) differs from the replay.
#[test]
fn a_corrupted_snapshot_is_detected_not_a_panic() {
    let mut p = scripted_store();
    let original = p.path();
    p.store = None;
    let len = open_sled(&original)
        .open_tree(SNAPSHOT_TREE)
        .unwrap()
        .get(b"s")
        .unwrap()
        .expect("the scripted store has a snapshot")
        .len();
    for pos in (0..len).step_by(len / 23 + 1).chain([len - 1]) {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("store");
        copy_dir(&original, &path);
        poke_snapshot(&path, |v| v[pos] ^= 0x5a);
        match catch_unwind(AssertUnwindSafe(|| open_and_verify(&path))) {
            Err(_) => panic!("snapshot byte {pos}: opening or verifying panicked"),
            Ok(Err(_)) => {}
            Ok(Ok(report)) => assert!(
                !report.ok(),
                "snapshot byte {pos}: corruption not detected: {report:?}"
            ),
        }
    }
}

/// Every single-byte corruption of every stored event (three ways per byte) is refused by
/// decoding or by `State::apply` with an error: never a panic. Run in memory (decode and
/// apply are what `Store::open`, `replay` and `verify` run) so that it can try every byte.
/// The bit patterns each byte is flipped with; `KEZEK_FLIP_ALL=1` tries all 255.
fn masks() -> Vec<u8> {
    if std::env::var_os("KEZEK_FLIP_ALL").is_some() {
        (1..=255).collect()
    } else {
        vec![0x01, 0x80, 0xff]
    }
}

#[test]
fn every_flipped_byte_of_the_log_is_an_error_not_a_panic() {
    let mut p = scripted_store();
    let records: Vec<Vec<u8>> = p.store().records(1).map(|r| r.unwrap().encode()).collect();
    p.store = None;
    let n = records.len();
    let mut panics = Vec::new();
    let mut undetected = Vec::new();
    // The state just before each record, as primary data (a cheap way to restart there).
    let originals: Vec<EventRecord> = records
        .iter()
        .map(|b| EventRecord::decode(b).unwrap())
        .collect();
    let mut before = Vec::with_capacity(n);
    let mut state = State::default();
    for rec in &originals {
        before.push(state.data.clone());
        state.apply(rec).unwrap();
    }
    for (k, bytes) in records.iter().enumerate() {
        let is_rules = k == 0;
        for pos in 0..bytes.len() {
            // The rule files are long text: sample them.
            if is_rules && pos % 53 != 0 {
                continue;
            }
            for mask in masks() {
                let mut bad = bytes.clone();
                bad[pos] ^= mask;
                // Ok(true): the changed record was applied, and the next one too.
                let result = catch_unwind(AssertUnwindSafe(|| -> Result<bool, String> {
                    let rec = EventRecord::decode(&bad).map_err(|e| e.to_string())?;
                    if rec == originals[k] {
                        // Another spelling of the same record (e.g. `t` for `T` in an
                        // instant): nothing changed, and the hash of the canonical
                        // encoding is the same.
                        return Ok(false);
                    }
                    let mut s = State::from_data(before[k].clone()).map_err(|e| e.message)?;
                    s.apply(&rec).map_err(|e| e.message)?;
                    if let Some(next) = records.get(k + 1) {
                        s.apply(&EventRecord::decode(next).unwrap())
                            .map_err(|e| e.message)?;
                    }
                    Ok(true)
                }));
                match result {
                    Err(_) => panics.push((
                        k + 1,
                        EventRecord::decode(bytes).unwrap().event.name(),
                        pos,
                        mask,
                    )),
                    Ok(Ok(true)) if k + 1 < n => undetected.push((k + 1, pos, mask)),
                    _ => {}
                }
            }
        }
    }
    let mut sites: BTreeMap<&str, usize> = BTreeMap::new();
    for p in &panics {
        *sites.entry(p.1).or_default() += 1;
    }
    assert!(
        panics.is_empty(),
        "{} corruptions panicked, by event {sites:?} (event seq and name, byte, mask), first: {:?}",
        panics.len(),
        &panics[..panics.len().min(20)]
    );
    assert!(
        undetected.is_empty(),
        "{} corruptions went undetected, first: {:?}",
        undetected.len(),
        &undetected[..undetected.len().min(20)]
    );
}
