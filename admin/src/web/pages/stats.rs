//! Figures computed from the event log for the overview and the public page, kept up to
//! date incrementally: each request reads only the events after the last one seen.
//!
//! - Per local (Almaty) day of the event: registrations, referrals issued, recalls,
//!   expiries, enrolments, withdrawals.
//! - The queue size over time: +1 when an application starts waiting (dated by its
//!   registration instant, so an imported journal shows when people joined), -1 when it
//!   stops (a referral, a withdrawal), +1 when it comes back (recall, expiry, a benefit
//!   cancelled with its referral). Waiting = `queued` or `stop_listed`, as the engine counts.

use std::collections::{BTreeMap, HashSet};

use jiff::civil::Date;
use kezek_engine::calendar::local_date;
use kezek_engine::{AppNo, Event, Language, Store};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayCounts {
    pub registered: u64,
    pub referrals: u64,
    pub recalls: u64,
    pub expiries: u64,
    pub enrolled: u64,
    pub withdrawn: u64,
}

#[derive(Debug, Default)]
pub struct Stats {
    last_seq: u64,
    pub by_day: BTreeMap<Date, DayCounts>,
    queue_delta: BTreeMap<Date, i64>,
    waiting: HashSet<AppNo>,
    public: Option<(u64, Vec<PublicRow>)>,
}

/// One row of the public page: a cohort and language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicRow {
    pub cohort: i32,
    pub language: Language,
    pub waiting: u64,
    pub places_published: u64,
    pub places_free: u64,
}

/// One point of the chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    pub date: Date,
    pub queue: i64,
    pub placements: u64,
}

impl Stats {
    /// Reads the events after the last one seen.
    pub fn refresh(&mut self, store: &Store) -> kezek_engine::Result<()> {
        let last = store.state().data.last_seq;
        if last < self.last_seq {
            // Another store: start again.
            *self = Stats::default();
        }
        if last == self.last_seq {
            return Ok(());
        }
        for rec in store.records(self.last_seq + 1) {
            let rec = rec?;
            let day = local_date(rec.at);
            let c = self.by_day.entry(day).or_default();
            let mut delta: Option<(Date, i64)> = None;
            match &rec.event {
                Event::Registered(r) => {
                    c.registered += 1;
                    if self.waiting.insert(r.app) {
                        delta = Some((local_date(r.registered_at), 1));
                    }
                }
                Event::ReferralIssued { app, .. } => {
                    c.referrals += 1;
                    if self.waiting.remove(app) {
                        delta = Some((day, -1));
                    }
                }
                Event::ReferralRecalled { app, .. } => {
                    c.recalls += 1;
                    if self.waiting.insert(*app) {
                        delta = Some((day, 1));
                    }
                }
                Event::ReferralExpired { app, .. } => {
                    c.expiries += 1;
                    if self.waiting.insert(*app) {
                        delta = Some((day, 1));
                    }
                }
                Event::BenefitCancelled {
                    app,
                    referral: Some(_),
                    ..
                } if self.waiting.insert(*app) => {
                    delta = Some((day, 1));
                }
                Event::Enrolled { .. } => c.enrolled += 1,
                Event::Withdrawn { app, .. } => {
                    c.withdrawn += 1;
                    if self.waiting.remove(app) {
                        delta = Some((day, -1));
                    }
                }
                _ => {}
            }
            if let Some((d, n)) = delta {
                *self.queue_delta.entry(d).or_default() += n;
            }
            self.last_seq = rec.seq;
        }
        Ok(())
    }

    pub fn day(&self, d: Date) -> DayCounts {
        self.by_day.get(&d).copied().unwrap_or_default()
    }

    /// The queue size at the end of each day and the referrals issued that day, for the
    /// `days` days ending with `last`.
    pub fn series(&self, last: Date, days: i64) -> Vec<Point> {
        let Ok(first) = last.checked_sub(jiff::Span::new().days(days.max(1) - 1)) else {
            return Vec::new();
        };
        let mut queue: i64 = self.queue_delta.range(..first).map(|(_, n)| n).sum();
        let mut out = Vec::with_capacity(days as usize);
        let mut d = first;
        while d <= last {
            queue += self.queue_delta.get(&d).copied().unwrap_or(0);
            out.push(Point {
                date: d,
                queue,
                placements: self.day(d).referrals,
            });
            match d.tomorrow() {
                Ok(n) => d = n,
                Err(_) => break,
            }
        }
        out
    }

    /// The public figures per cohort and language (cached until the next event).
    pub fn public_rows(&mut self, store: &Store) -> Vec<PublicRow> {
        let st = store.state();
        let seq = st.data.last_seq;
        if let Some((s, rows)) = &self.public {
            if *s == seq {
                return rows.clone();
            }
        }
        let mut map: BTreeMap<(i32, Language), PublicRow> = BTreeMap::new();
        let row = |map: &mut BTreeMap<(i32, Language), PublicRow>, c: i32, l: Language| {
            map.entry((c, l))
                .or_insert(PublicRow {
                    cohort: c,
                    language: l,
                    waiting: 0,
                    places_published: 0,
                    places_free: 0,
                })
                .clone()
        };
        for a in st.data.apps.values().filter(|a| a.status.is_waiting()) {
            row(&mut map, a.cohort, a.language);
            if let Some(r) = map.get_mut(&(a.cohort, a.language)) {
                r.waiting += 1;
            }
        }
        for p in st.data.publications.values() {
            row(&mut map, p.cohort, p.language);
            if let Some(r) = map.get_mut(&(p.cohort, p.language)) {
                r.places_published += p.places as u64;
                r.places_free += p.places_left as u64;
            }
        }
        let rows: Vec<PublicRow> = map.into_values().collect();
        self.public = Some((seq, rows.clone()));
        rows
    }
}
