//! Storage in sled. The event log is the truth, each record chained to the one before by
//! its hash; a snapshot of the state is kept beside it. One tree, keys by prefix:
//!
//! - `e` + seq (8 bytes, big-endian) -> a block of encoded [`EventRecord`]s: the records
//!   one command (or one group of a bulk import) wrote, the key being the seq of the block's
//!   last record. Blocks follow each other without gaps, so the block holding seq `n` is
//!   the first one whose key is at least `n`. One sled key per block rather than per
//!   record: a million imported applications are 200 sled values instead of a million,
//!   which keeps sled's page table (and its own periodic snapshot of it) small; see
//!   [`encode_block`] for the layout.
//! - `c` -> the store's configuration: clock mode and, for a manual clock, its time
//! - `h` -> the chain head; `l` -> the layout version
//!
//! The snapshot (the primary state data as of some event, postcard) lives in a tree of its
//! own, `snapshot`, under `s`. Not beside the log: sled keeps a leaf's values inline and
//! rewrites the whole leaf when it consolidates, and the snapshot of a million
//! applications is ~150 MB. In the log's tree it shared the last leaf with the chain head
//! and the newest blocks, which every command updates, so commands at a million
//! applications cost ~130 ms (mostly rewriting the snapshot) instead of ~0.5 ms.
//!
//! A command is applied in memory, then its records are written in one atomic batch and
//! flushed before success is reported. If a write fails after the state moved, the store
//! is poisoned: every later call fails until it is reopened from disk.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::command::{Core, RegisterInput, Request};
use crate::error::{EngineError, Result};
use crate::event::{Actor, EventRecord};
use crate::state::{Data, State};

const SNAPSHOT_KEY: &[u8] = b"s";
const CONFIG_KEY: &[u8] = b"c";
/// The chain head: seq (8 bytes, big-endian) and hash of the last record, written in the
/// same atomic batch as the records. Nothing after the last record holds its hash, so
/// without the head a tampered last record would go unnoticed.
const HEAD_KEY: &[u8] = b"h";
/// The layout of the event values. Absent in stores written before events were kept in
/// blocks (one record per value); [`Store::open`] rewrites those once, in one batch.
const LAYOUT_KEY: &[u8] = b"l";
/// Layout 2: events in blocks, the snapshot beside them in the log's tree.
const LAYOUT_BLOCKS: u8 = 2;
/// Layout 3 (current): as 2, the snapshot in the tree [`SNAPSHOT_TREE`].
const LAYOUT_SNAPSHOT_TREE: u8 = 3;
const SNAPSHOT_TREE: &[u8] = b"snapshot";

fn head_value(rec: &EventRecord) -> Vec<u8> {
    let mut v = rec.seq.to_be_bytes().to_vec();
    v.extend_from_slice(&rec.hash());
    v
}
/// Events after the last snapshot before a new one is written at the end of a command.
const SNAPSHOT_EVERY_EVENTS: u64 = 20_000;
/// Records per atomic batch (and flush) during a bulk import.
pub const IMPORT_GROUP_EVENTS: usize = 5_000;
/// The most rows one import may carry.
pub const MAX_IMPORT_ROWS: usize = 2_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClockMode {
    /// The operating system's clock, read by the interfaces and passed in.
    System,
    /// A clock that only `tick` moves: drills, demos, tests.
    Manual,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    pub clock: ClockMode,
    /// The manual clock's time (unused with the system clock).
    pub manual_now: Timestamp,
}

fn event_key(seq: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = b'e';
    k[1..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// The layout version that starts every block.
const BLOCK_FORMAT: u8 = 1;

/// A block: [`BLOCK_FORMAT`], then for each record its length (u32, little-endian) and
/// its bytes ([`EventRecord::encode`]). The lengths let one record be read without
/// decoding the others (a card's history reads single records out of import blocks).
pub fn encode_block(recs: &[EventRecord]) -> Vec<u8> {
    let encoded: Vec<Vec<u8>> = recs.iter().map(EventRecord::encode).collect();
    let mut out = Vec::with_capacity(1 + encoded.iter().map(|e| 4 + e.len()).sum::<usize>());
    out.push(BLOCK_FORMAT);
    for e in &encoded {
        // A record is a few hundred bytes; rule files, the largest, are bounded far
        // below 4 GiB by the rule loader's limits.
        let len = u32::try_from(e.len()).expect("a record is smaller than 4 GiB");
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(e);
    }
    out
}

/// The records' byte strings of a block, in order; an error (not a panic) for bytes that
/// are not a block.
pub fn block_frames(bytes: &[u8]) -> std::result::Result<Vec<&[u8]>, String> {
    let Some((&format, mut rest)) = bytes.split_first() else {
        return Err("an empty block".into());
    };
    if format != BLOCK_FORMAT {
        return Err(format!("unknown block format {format}"));
    }
    let mut frames = Vec::new();
    while !rest.is_empty() {
        let Some((len, tail)) = rest.split_first_chunk::<4>() else {
            return Err(format!("a cut length after {} records", frames.len()));
        };
        let len = u32::from_le_bytes(*len) as usize;
        if len > tail.len() {
            return Err(format!(
                "record {} claims {len} bytes, {} are left",
                frames.len() + 1,
                tail.len()
            ));
        }
        let (frame, tail) = tail.split_at(len);
        frames.push(frame);
        rest = tail;
    }
    if frames.is_empty() {
        return Err("a block without records".into());
    }
    Ok(frames)
}

/// Every record of a block.
pub fn decode_block(bytes: &[u8]) -> std::result::Result<Vec<EventRecord>, String> {
    block_frames(bytes)?
        .into_iter()
        .enumerate()
        .map(|(i, f)| EventRecord::decode(f).map_err(|e| format!("record {}: {e}", i + 1)))
        .collect()
}

fn corrupt_block(last_seq: u64, problem: impl std::fmt::Display) -> EngineError {
    EngineError::internal(
        "corrupt_log",
        format!("the block of events ending at {last_seq}: {problem}"),
    )
}

/// The key's seq.
fn key_seq(key: &[u8]) -> Option<u64> {
    let (&b'e', seq) = key.split_first()? else {
        return None;
    };
    Some(u64::from_be_bytes(seq.try_into().ok()?))
}

pub struct Store {
    db: sled::Db,
    /// The tree holding only the snapshot (see the module's comment).
    snapshots: sled::Tree,
    path: PathBuf,
    core: Core,
    config: Config,
    snapshot_seq: u64,
    poisoned: bool,
}

/// The result of `audit verify`.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub events: u64,
    pub chain_ok: bool,
    pub replay_matches: bool,
    pub snapshot_matches: bool,
    pub invariants_ok: bool,
    pub problems: Vec<String>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.chain_ok && self.replay_matches && self.snapshot_matches && self.invariants_ok
    }
}

/// Opens sled, working around an upstream bug (sled#1527): a process killed while sled
/// writes its own snapshot file leaves an empty `snap.*.generating` file that every later
/// open trips over ("corrupted data") although the data is intact. Such a file is only
/// ever a half-written temporary, so it is removed and the open retried once.
fn open_db(path: &Path) -> Result<sled::Db> {
    match open_db_once(path) {
        Err(e) if e.code == "storage" && e.message.contains("orrupt") => {
            let mut removed = false;
            if let Ok(dir) = std::fs::read_dir(path) {
                for entry in dir.flatten() {
                    let name = entry.file_name();
                    let name = name.to_string_lossy();
                    if name.starts_with("snap.") && name.ends_with(".generating") {
                        removed |= std::fs::remove_file(entry.path()).is_ok();
                    }
                }
            }
            if removed {
                open_db_once(path)
            } else {
                Err(e)
            }
        }
        other => other,
    }
}

fn open_db_once(path: &Path) -> Result<sled::Db> {
    // sled releases its file lock a moment after a store is dropped (sled#1234): a reopen
    // from the same process, or a command right after another, retries briefly before
    // reporting the store as in use.
    let mut tries = 0;
    loop {
        match open_db_raw(path) {
            Err(e) if e.code == "store_locked" && tries < 10 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

fn open_db_raw(path: &Path) -> Result<sled::Db> {
    sled::Config::new()
        .path(path)
        // Durability comes from explicit flushes; the background flush is a backstop.
        .flush_every_ms(Some(1_000))
        .open()
        .map_err(|e| {
            let msg = e.to_string();
            if msg.contains("lock") || msg.contains("WouldBlock") || msg.contains("Resource temporarily unavailable") {
                EngineError::refused(
                    "store_locked",
                    format!(
                        "the store at {} is in use by another process (is `kezek serve` running?); nothing was changed",
                        path.display()
                    ),
                )
            } else {
                EngineError::internal("storage", format!("cannot open the store at {}: {msg}", path.display()))
            }
        })
}

impl Store {
    /// Is there a store at `path`?
    pub fn exists(path: &Path) -> bool {
        path.join("conf").exists() || path.join("db").exists()
    }

    /// Creates a store with a rule set and a clock. Refuses if one exists there.
    pub fn init(
        path: &Path,
        files: &std::collections::BTreeMap<String, String>,
        clock: ClockMode,
        now: Timestamp,
        actor: Actor,
    ) -> Result<Store> {
        if Self::exists(path) {
            return Err(EngineError::refused(
                "store_exists",
                format!("a store already exists at {}", path.display()),
            ));
        }
        if path.exists() && !path.is_dir() {
            return Err(EngineError::invalid(
                "not_a_directory",
                format!("--data: {} is not a directory", path.display()),
            ));
        }
        let non_empty = std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_some());
        if non_empty {
            return Err(EngineError::refused(
                "folder_not_empty",
                format!(
                    "{} holds other files; a store is created only in a new or empty folder",
                    path.display()
                ),
            ));
        }
        // Decide everything in memory before creating anything on disk: a refused init
        // leaves no half-made store behind.
        let mut core = Core::default();
        let req = Request {
            command: crate::command::Command::ActivateRules {
                files: files.clone(),
            },
            actor,
            reason: Some("initial rules".into()),
        };
        let recs = core.execute(&req, now)?;
        std::fs::create_dir_all(path).map_err(|e| {
            EngineError::internal("storage", format!("cannot create {}: {e}", path.display()))
        })?;
        let db = open_db(path)?;
        let snapshots = db.open_tree(SNAPSHOT_TREE)?;
        let config = Config {
            clock,
            manual_now: now,
        };
        let store = Store {
            db,
            snapshots,
            path: path.to_path_buf(),
            core,
            config,
            snapshot_seq: 0,
            poisoned: false,
        };
        let mut batch = sled::Batch::default();
        batch.insert(
            CONFIG_KEY,
            postcard::to_stdvec(&store.config).expect("plain data"),
        );
        batch.insert(LAYOUT_KEY, &[LAYOUT_SNAPSHOT_TREE]);
        if let Some(last) = recs.last() {
            batch.insert(&event_key(last.seq), encode_block(&recs));
            batch.insert(HEAD_KEY, head_value(last));
        }
        store.db.apply_batch(batch)?;
        store.db.flush()?;
        Ok(store)
    }

    /// Opens an existing store: the snapshot, then the events after it.
    pub fn open(path: &Path) -> Result<Store> {
        if !Self::exists(path) {
            return Err(EngineError::not_found(
                "no_store",
                format!(
                    "no store at {} (create one with `kezek init` or `kezek demo`)",
                    path.display()
                ),
            ));
        }
        let db = open_db(path)?;
        let config: Config = match db.get(CONFIG_KEY)? {
            Some(b) => postcard::from_bytes(&b).map_err(|e| {
                EngineError::internal("corrupt_store", format!("configuration: {e}"))
            })?,
            None => {
                return Err(EngineError::internal(
                    "corrupt_store",
                    "the store has no configuration",
                ))
            }
        };
        Self::upgrade_layout(&db)?;
        let snapshots = db.open_tree(SNAPSHOT_TREE)?;
        let data: Data = match snapshots.get(SNAPSHOT_KEY)? {
            Some(b) => postcard::from_bytes(&b)
                .map_err(|e| EngineError::internal("corrupt_store", format!("snapshot: {e}")))?,
            None => Data::default(),
        };
        let snapshot_seq = data.last_seq;
        let mut core = Core::new(State::from_data(data)?);
        for rec in Self::records_in(&db, snapshot_seq + 1) {
            core.state.apply(&rec?)?;
        }
        Self::check_head(&db, &core.state)?;
        Ok(Store {
            db,
            snapshots,
            path: path.to_path_buf(),
            core,
            config,
            snapshot_seq,
            poisoned: false,
        })
    }

    /// Brings an older store to the current layout, each step crash-safe:
    /// - no marker (one record per value, before blocks): each value is rewritten as a
    ///   block of that one record, under the same key, with marker 2, in one atomic batch;
    ///   an interrupted upgrade leaves the old layout whole and runs again.
    /// - 2 (snapshot in the log's tree): the snapshot is copied into its own tree and
    ///   flushed, then removed from the log's tree with marker 3 in one batch; interrupted
    ///   in between, both copies are equal and the copy runs again.
    fn upgrade_layout(db: &sled::Db) -> Result<()> {
        let layout = match db.get(LAYOUT_KEY)? {
            None => 1,
            Some(v) if v.as_ref() == [LAYOUT_BLOCKS] => LAYOUT_BLOCKS,
            Some(v) if v.as_ref() == [LAYOUT_SNAPSHOT_TREE] => return Ok(()),
            Some(v) => {
                return Err(EngineError::internal(
                    "corrupt_store",
                    format!("unknown store layout {:?}", v.as_ref()),
                ))
            }
        };
        if layout < LAYOUT_BLOCKS {
            let mut batch = sled::Batch::default();
            for kv in db.range(event_key(0)..=event_key(u64::MAX)) {
                let (k, v) = kv?;
                let seq = key_seq(&k)
                    .ok_or_else(|| EngineError::internal("corrupt_log", "a malformed event key"))?;
                let rec = EventRecord::decode(&v).map_err(|e| {
                    EngineError::internal("corrupt_log", format!("event {seq} (old layout): {e}"))
                })?;
                if rec.seq != seq {
                    return Err(EngineError::internal(
                        "corrupt_log",
                        format!("the value under event {seq} holds seq {}", rec.seq),
                    ));
                }
                batch.insert(k, encode_block(std::slice::from_ref(&rec)));
            }
            batch.insert(LAYOUT_KEY, &[LAYOUT_BLOCKS]);
            db.apply_batch(batch)?;
            db.flush()?;
        }
        let snapshots = db.open_tree(SNAPSHOT_TREE)?;
        if let Some(snap) = db.get(SNAPSHOT_KEY)? {
            snapshots.insert(SNAPSHOT_KEY, snap)?;
            snapshots.flush()?;
        }
        let mut batch = sled::Batch::default();
        batch.remove(SNAPSHOT_KEY);
        batch.insert(LAYOUT_KEY, &[LAYOUT_SNAPSHOT_TREE]);
        db.apply_batch(batch)?;
        db.flush()?;
        Ok(())
    }

    /// The last record must be the one the chain head names.
    fn check_head(db: &sled::Db, state: &State) -> Result<()> {
        let Some(h) = db.get(HEAD_KEY)? else {
            return Ok(());
        };
        let mut expect = state.data.last_seq.to_be_bytes().to_vec();
        expect.extend_from_slice(&state.data.last_hash);
        if h.as_ref() != expect.as_slice() {
            return Err(EngineError::internal(
                "corrupt_log",
                format!(
                    "the last event ({}) is not the one the chain head names: the log was changed",
                    state.data.last_seq
                ),
            ));
        }
        Ok(())
    }

    /// The records from `from` on: the block holding `from` (its earlier records skipped)
    /// and every block after it. A block that does not decode, or whose last record is not
    /// the one its key names, ends the iteration with an error.
    fn records_in(db: &sled::Db, from: u64) -> impl Iterator<Item = Result<EventRecord>> + '_ {
        db.range(event_key(from)..=event_key(u64::MAX)).flat_map(
            move |kv| -> Vec<Result<EventRecord>> {
                let (k, v) = match kv {
                    Ok(kv) => kv,
                    Err(e) => return vec![Err(e.into())],
                };
                let Some(last_seq) = key_seq(&k) else {
                    return vec![Err(EngineError::internal(
                        "corrupt_log",
                        "a malformed event key",
                    ))];
                };
                match decode_block(&v) {
                    Err(e) => vec![Err(corrupt_block(last_seq, e))],
                    Ok(recs) if recs.last().is_none_or(|r| r.seq != last_seq) => {
                        vec![Err(corrupt_block(
                            last_seq,
                            "its last record has another seq",
                        ))]
                    }
                    Ok(recs) => recs.into_iter().filter(|r| r.seq >= from).map(Ok).collect(),
                }
            },
        )
    }

    /// Every record from `from` on, in order.
    pub fn records(&self, from: u64) -> impl Iterator<Item = Result<EventRecord>> + '_ {
        Self::records_in(&self.db, from)
    }

    /// One record, read out of its block without decoding the others.
    pub fn record(&self, seq: u64) -> Result<EventRecord> {
        let unknown = || EngineError::not_found("unknown_event", format!("no event {seq}"));
        if seq == 0 {
            return Err(unknown());
        }
        let (k, v) = self
            .db
            .range(event_key(seq)..=event_key(u64::MAX))
            .next()
            .transpose()?
            .ok_or_else(unknown)?;
        let last_seq = key_seq(&k)
            .ok_or_else(|| EngineError::internal("corrupt_log", "a malformed event key"))?;
        let frames = block_frames(&v).map_err(|e| corrupt_block(last_seq, e))?;
        // Blocks are contiguous: the block ending at `last_seq` with `len` records starts
        // at `last_seq - len + 1`.
        let back = usize::try_from(last_seq - seq).map_err(|_| unknown())?;
        let frame = frames
            .len()
            .checked_sub(1 + back)
            .and_then(|i| frames.get(i))
            .ok_or_else(unknown)?;
        let rec = EventRecord::decode(frame)
            .map_err(|e| EngineError::internal("corrupt_log", format!("event {seq}: {e}")))?;
        if rec.seq != seq {
            return Err(corrupt_block(
                last_seq,
                format!("event {seq} holds seq {}", rec.seq),
            ));
        }
        Ok(rec)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn core(&self) -> &Core {
        &self.core
    }

    pub fn state(&self) -> &State {
        &self.core.state
    }

    /// The engine's "now": the manual clock, or the wall instant the caller read (never
    /// earlier than the last event).
    pub fn now(&self, wall: Timestamp) -> Timestamp {
        match self.config.clock {
            ClockMode::Manual => self.config.manual_now,
            ClockMode::System => wall.max(self.core.state.data.last_at),
        }
    }

    fn check_poison(&self) -> Result<()> {
        if self.poisoned {
            return Err(EngineError::internal(
                "poisoned",
                "a write failed earlier: reopen the store",
            ));
        }
        Ok(())
    }

    /// Writes applied records (and optionally the config) atomically and flushes.
    fn persist(&mut self, recs: &[EventRecord], config: bool) -> Result<()> {
        if recs.is_empty() && !config {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        if let Some(last) = recs.last() {
            batch.insert(&event_key(last.seq), encode_block(recs));
            batch.insert(HEAD_KEY, head_value(last));
        }
        if config {
            batch.insert(
                CONFIG_KEY,
                postcard::to_stdvec(&self.config).expect("plain data"),
            );
        }
        let res = self
            .db
            .apply_batch(batch)
            .and_then(|_| self.db.flush().map(|_| ()));
        if let Err(e) = res {
            self.poisoned = true;
            return Err(e.into());
        }
        // A snapshot may only cover what the log holds: during a bulk import the state runs
        // ahead of the groups written so far, so wait until the log has caught up.
        let caught_up = recs
            .last()
            .is_none_or(|r| r.seq == self.core.state.data.last_seq);
        if caught_up && self.core.state.data.last_seq - self.snapshot_seq >= SNAPSHOT_EVERY_EVENTS {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Writes a snapshot of the state beside the log.
    pub fn checkpoint(&mut self) -> Result<()> {
        self.check_poison()?;
        let bytes = postcard::to_stdvec(&self.core.state.data).expect("plain data");
        self.snapshots.insert(SNAPSHOT_KEY, bytes)?;
        self.snapshots.flush()?;
        self.snapshot_seq = self.core.state.data.last_seq;
        Ok(())
    }

    /// Emits and persists the transitions due by `now`.
    pub fn advance(&mut self, now: Timestamp) -> Result<Vec<EventRecord>> {
        self.check_poison()?;
        let recs = match self.core.advance(now) {
            Ok(r) => r,
            Err(e) => {
                self.poisoned = true;
                return Err(e);
            }
        };
        self.persist(&recs, false)?;
        Ok(recs)
    }

    /// Runs a command at `now`: due transitions first, then the command; durable before
    /// it returns. A refused command writes nothing (the transitions stay written: time
    /// passed regardless of the refusal).
    pub fn execute(&mut self, req: &Request, now: Timestamp) -> Result<Vec<EventRecord>> {
        self.advance(now)?;
        let recs = self.core.execute(req, now)?;
        self.persist(&recs, false)?;
        Ok(recs)
    }

    /// Moves the manual clock to `to`, emitting what falls due on the way.
    pub fn tick_to(&mut self, to: Timestamp) -> Result<Vec<EventRecord>> {
        self.check_poison()?;
        if self.config.clock != ClockMode::Manual {
            return Err(EngineError::refused(
                "system_clock",
                "this store follows the system clock; only a manual clock can be moved",
            ));
        }
        if to < self.config.manual_now {
            return Err(EngineError::refused(
                "clock_backwards",
                format!(
                    "the clock is at {}; it cannot go back to {to}",
                    self.config.manual_now
                ),
            ));
        }
        let recs = match self.core.advance(to) {
            Ok(r) => r,
            Err(e) => {
                self.poisoned = true;
                return Err(e);
            }
        };
        self.config.manual_now = to;
        self.persist(&recs, true)?;
        Ok(recs)
    }

    /// Registers many applications: every row is checked first (a bad row refuses the
    /// whole import, naming the row), then records are committed in groups of
    /// [`IMPORT_GROUP_EVENTS`]. `rows` pairs each input with the row number to report.
    pub fn import_applications(
        &mut self,
        rows: &[(usize, RegisterInput)],
        actor: &Actor,
        now: Timestamp,
    ) -> Result<usize> {
        self.check_poison()?;
        if rows.len() > MAX_IMPORT_ROWS {
            return Err(EngineError::invalid(
                "too_many_rows",
                format!("at most {MAX_IMPORT_ROWS} rows per import"),
            ));
        }
        self.advance(now)?;
        let recs = match self.core.import_applications(rows, actor, now) {
            Ok(r) => r,
            // A refusal happens before anything is applied: the state is untouched.
            Err(e) if e.kind != crate::error::ErrorKind::Internal => return Err(e),
            Err(e) => {
                self.poisoned = true;
                return Err(e);
            }
        };
        for chunk in recs.chunks(IMPORT_GROUP_EVENTS) {
            self.persist(chunk, false)?;
        }
        if self.core.state.data.last_seq > self.snapshot_seq {
            self.checkpoint()?;
        }
        Ok(recs.len())
    }

    /// Replays the whole log from empty, with `visit` called after each record.
    pub fn replay(&self, mut visit: impl FnMut(&State, &EventRecord)) -> Result<State> {
        let mut state = State::default();
        for rec in self.records(1) {
            let rec = rec?;
            state.apply(&rec)?;
            visit(&state, &rec);
        }
        Ok(state)
    }

    /// `audit verify`: the chain, a replay from empty against the live state, the
    /// snapshot against a replay up to it, and the invariants.
    pub fn verify(&self) -> Result<VerifyReport> {
        let mut report = VerifyReport {
            events: 0,
            chain_ok: true,
            replay_matches: true,
            snapshot_matches: true,
            invariants_ok: true,
            problems: Vec::new(),
        };
        let mut prev = [0u8; 32];
        let mut state = State::default();
        let mut snapshot_digest = None;
        for (expect_seq, rec) in (1u64..).zip(self.records(1)) {
            let rec = match rec {
                Ok(r) => r,
                Err(e) => {
                    report.chain_ok = false;
                    report.problems.push(e.message);
                    break;
                }
            };
            report.events += 1;
            if rec.seq != expect_seq || rec.prev_hash != prev {
                report.chain_ok = false;
                report.problems.push(format!(
                    "event {} does not follow event {} in the chain",
                    rec.seq,
                    expect_seq - 1
                ));
                break;
            }
            prev = rec.hash();
            if let Err(e) = state.apply(&rec) {
                report.replay_matches = false;
                report
                    .problems
                    .push(format!("replay failed at event {}: {}", rec.seq, e.message));
                break;
            }
            if rec.seq == self.snapshot_seq {
                snapshot_digest = Some(state.digest());
            }
        }
        if report.chain_ok {
            if let Err(e) = Self::check_head(&self.db, &state) {
                report.chain_ok = false;
                report.problems.push(e.message);
            }
        }
        if report.replay_matches && state.digest() != self.core.state.digest() {
            report.replay_matches = false;
            report
                .problems
                .push("the state replayed from the log differs from the live state".into());
        }
        if let Some(b) = self.snapshots.get(SNAPSHOT_KEY)? {
            match postcard::from_bytes::<Data>(&b) {
                Ok(snap) => {
                    let snap_digest =
                        EventRecord::hash_bytes(&postcard::to_stdvec(&snap).expect("plain data"));
                    if snapshot_digest.is_some_and(|d| d != snap_digest)
                        || snapshot_digest.is_none() && snap.last_seq != 0
                    {
                        report.snapshot_matches = false;
                        report.problems.push(format!(
                            "the snapshot at event {} differs from the replay",
                            snap.last_seq
                        ));
                    }
                }
                Err(e) => {
                    report.snapshot_matches = false;
                    report
                        .problems
                        .push(format!("the snapshot does not decode: {e}"));
                }
            }
        }
        if let Err(e) = self.core.state.check_invariants() {
            report.invariants_ok = false;
            report.problems.push(format!("invariant: {e}"));
        }
        Ok(report)
    }
}
