//! The impact of a candidate rule set: run it beside the active one on the current queues
//! and report whom it would move, without changing anything.
//!
//! Two steps, so that an interface can hold its read lock only briefly:
//! [`capture`] copies what the rules read from every waiting application, with its
//! current cohort and position (O(n), no script runs); [`compute`] gives every captured
//! application its new cohort and order key under the candidate (the same computation as
//! [`crate::state::rerank`] on activation), sorts each new cohort (O(n log n)) and
//! compares positions. [`impact`] does both at once.
//!
//! An application that the candidate puts in another cohort counts as moved; `up` and
//! `down` compare the position numbers even then (its change carries both cohorts).

use std::collections::{BTreeMap, HashMap};

use jiff::civil::Date;
use jiff::Timestamp;
use serde::Serialize;

use crate::error::{EngineError, Result};
use crate::model::{AppNo, Language, OrderKey};
use crate::rules::{AppFacts, RuleSet};
use crate::state::State;

/// What the rules read from one waiting application, and where it stands now.
#[derive(Debug, Clone)]
struct Entry {
    id: AppNo,
    /// Index into [`Snapshot::categories`].
    category: u16,
    language: Language,
    birth_date: Date,
    registered_at: Timestamp,
    cohort: i32,
    position: u64,
}

/// The waiting applications as of one state, ready to be re-ranked by a candidate.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    entries: Vec<Entry>,
    categories: Vec<String>,
    /// Every category held by any application (waiting or not), with how many hold it:
    /// a candidate must define them all, as activation requires.
    in_use: BTreeMap<String, usize>,
    /// The hash of the active rule set when the snapshot was taken.
    pub active_hash: Option<String>,
}

impl Snapshot {
    /// How many waiting applications the snapshot holds.
    pub fn waiting(&self) -> usize {
        self.entries.len()
    }
}

/// One application that the candidate would move.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub id: String,
    /// Queue position now.
    pub old: u64,
    /// Queue position under the candidate.
    pub new: u64,
    pub old_cohort: i32,
    pub new_cohort: i32,
}

impl Change {
    /// How far it moves (positions, either direction).
    pub fn distance(&self) -> u64 {
        self.old.abs_diff(self.new)
    }
}

/// What a candidate rule set would do to the queues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Impact {
    /// Waiting applications considered.
    pub waiting: u64,
    /// Applications whose cohort or position would change.
    pub moved: u64,
    /// Of those, how many would get a smaller position number (closer to the front).
    pub up: u64,
    /// ... and a larger one.
    pub down: u64,
    /// The largest move, in positions.
    pub max_move: u64,
    /// Every change, the largest moves first (ties by application number).
    pub changes: Vec<Change>,
    /// The candidate's version hash.
    pub candidate_hash: String,
    /// True when the candidate is the active rule set itself.
    pub identical: bool,
}

/// Copies what [`compute`] needs from the waiting applications of `state`, with their
/// current cohort and position. O(n); runs no script.
pub fn capture(state: &State) -> Snapshot {
    let mut snap = Snapshot {
        active_hash: state.rules().map(RuleSet::hash),
        ..Snapshot::default()
    };
    let mut index: HashMap<String, u16> = HashMap::new();
    for a in state.data.apps.values() {
        *snap.in_use.entry(a.category.clone()).or_default() += 1;
    }
    for cohort in state.cohorts() {
        let Some(q) = state.queue(cohort) else {
            continue;
        };
        snap.entries.reserve(q.len());
        for (i, key) in q.iter().enumerate() {
            let Some(a) = state.app(key.app) else {
                continue;
            };
            let next = snap.categories.len() as u16;
            let category = *index.entry(a.category.clone()).or_insert_with(|| {
                snap.categories.push(a.category.clone());
                next
            });
            snap.entries.push(Entry {
                id: a.id,
                category,
                language: a.language,
                birth_date: a.birth_date,
                registered_at: a.registered_at,
                cohort,
                position: i as u64 + 1,
            });
        }
    }
    snap
}

/// Re-ranks a snapshot under a compiled candidate and compares positions. Changes
/// nothing. A category in use that the candidate does not define refuses the candidate
/// (`category_in_use`), as activation would; a rule failing on an application refuses it
/// too (`rule_failed`).
pub fn compute(snap: &Snapshot, rules: &RuleSet) -> Result<Impact> {
    if let Some((c, n)) = snap
        .in_use
        .iter()
        .find(|(c, _)| rules.category_rank(c).is_none())
    {
        return Err(EngineError::refused(
            "category_in_use",
            format!(
                "the candidate rules do not define category '{c}', which {n} application(s) hold"
            ),
        ));
    }
    let computed: std::result::Result<Vec<(i32, OrderKey)>, crate::rules::RuleError> =
        RuleSet::with_stack(|| {
            snap.entries
                .iter()
                .map(|e| {
                    let id = e.id.to_string();
                    let facts = AppFacts {
                        id: &id,
                        category: &snap.categories[e.category as usize],
                        language: e.language.code(),
                        birth_date: e.birth_date,
                        registered_at: e.registered_at,
                    };
                    let key = rules.order_key(&facts)?;
                    let cohort = rules.cohort(&facts)?;
                    Ok((cohort, OrderKey::new(&key, e.id)))
                })
                .collect()
        });
    let computed = computed.map_err(EngineError::rule)?;

    // New positions: sort each new cohort by the new keys.
    let mut by_cohort: HashMap<i32, Vec<(OrderKey, usize)>> = HashMap::new();
    for (i, (cohort, key)) in computed.iter().enumerate() {
        by_cohort.entry(*cohort).or_default().push((*key, i));
    }
    let mut new_pos = vec![0u64; snap.entries.len()];
    for list in by_cohort.values_mut() {
        list.sort_unstable();
        for (p, (_, i)) in list.iter().enumerate() {
            new_pos[*i] = p as u64 + 1;
        }
    }

    let mut out = Impact {
        waiting: snap.entries.len() as u64,
        moved: 0,
        up: 0,
        down: 0,
        max_move: 0,
        changes: Vec::new(),
        candidate_hash: rules.hash(),
        identical: snap.active_hash.as_deref() == Some(rules.hash().as_str()),
    };
    for (i, e) in snap.entries.iter().enumerate() {
        let (cohort, new) = (computed[i].0, new_pos[i]);
        if cohort == e.cohort && new == e.position {
            continue;
        }
        let change = Change {
            id: e.id.to_string(),
            old: e.position,
            new,
            old_cohort: e.cohort,
            new_cohort: cohort,
        };
        out.moved += 1;
        if new < e.position {
            out.up += 1;
        } else if new > e.position {
            out.down += 1;
        }
        out.max_move = out.max_move.max(change.distance());
        out.changes.push(change);
    }
    out.changes.sort_by(|a, b| {
        b.distance()
            .cmp(&a.distance())
            .then_with(|| a.old_cohort.cmp(&b.old_cohort))
            .then_with(|| a.old.cmp(&b.old))
    });
    Ok(out)
}

/// Compiles a candidate rule set and computes its impact on `state`. A candidate that
/// does not compile is `rules_invalid` (the message names file and line).
pub fn impact(state: &State, files: &BTreeMap<String, String>) -> Result<Impact> {
    let rules = RuleSet::compile(files)
        .map_err(|e| EngineError::invalid("rules_invalid", e.to_string()))?;
    compute(&capture(state), &rules)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::{self, Scale};
    use crate::event::Actor;
    use crate::store::{ClockMode, Store};

    fn store(dir: &std::path::Path) -> Store {
        let now: Timestamp = "2026-12-02T04:00:00Z".parse().unwrap();
        let mut s = Store::init(
            dir,
            &RuleSet::default_files(),
            ClockMode::Manual,
            now,
            Actor::System,
        )
        .unwrap();
        demo::build(&mut s, 7, Scale::Small, now).unwrap();
        s
    }

    #[test]
    fn identical_rules_move_nobody_and_a_swap_moves_both_categories() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let same = impact(s.state(), &RuleSet::default_files()).unwrap();
        assert_eq!(
            (same.moved, same.up, same.down, same.max_move),
            (0, 0, 0, 0)
        );
        assert!(same.identical);
        assert!(same.waiting > 1000);

        // Swap the ranks of large_family (4) and orphan (5).
        let mut files = RuleSet::default_files();
        let cats = files["categories.rhai"]
            .replace("rank: 4,", "rank: 40,")
            .replace("rank: 5,", "rank: 4,")
            .replace("rank: 40,", "rank: 5,");
        files.insert("categories.rhai".into(), cats);
        let swapped = impact(s.state(), &files).unwrap();
        assert!(!swapped.identical);
        assert!(swapped.moved > 0 && swapped.up > 0 && swapped.down > 0);
        assert_eq!(swapped.moved, swapped.up + swapped.down);
        assert_eq!(swapped.changes.len() as u64, swapped.moved);
        assert_eq!(swapped.changes[0].distance(), swapped.max_move);
        // Every orphan moves up, every large family moves down; nobody else moves.
        for c in &swapped.changes {
            let a = s.state().app(c.id.parse().unwrap()).unwrap();
            match a.category.as_str() {
                "orphan" => assert!(c.new < c.old),
                "large_family" => assert!(c.new > c.old),
                other => panic!("{other} moved"),
            }
            assert_eq!(s.state().queue_position(a), Some(c.old));
        }
    }

    #[test]
    fn a_broken_candidate_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let mut files = RuleSet::default_files();
        files.insert(
            "order.rhai".into(),
            "fn order_key(app) {\n  [app.category_rank,\n}\nfn cohort(app) { app.birth_year }"
                .into(),
        );
        let e = impact(s.state(), &files).unwrap_err();
        assert_eq!(e.code, "rules_invalid");
        assert!(e.message.contains("order.rhai:"), "{}", e.message);
    }
}
