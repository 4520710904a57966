//! Commands: what someone asks for. `Core::execute` validates a command against the state
//! and the rules, decides the events, and applies them; a refused command changes nothing.

use std::collections::{BTreeMap, HashSet};

use jiff::civil::Date;
use jiff::Timestamp;

use crate::calendar;
use crate::error::{EngineError, Result};
use crate::event::{Actor, Event, EventRecord, GroupRow, Registration};
use crate::iin::Iin;
use crate::model::*;
use crate::rules::{AppFacts, LockFacts, RuleSet};
use crate::state::{rerank, PreparedRerank, State, Timer};

/// Limits on what one command may carry (TigerBeetle style: a limit on everything).
pub const MAX_REASON_CHARS: usize = 2_000;
pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_PLACES_PER_PUBLICATION: u32 = 10_000;
pub const MAX_GROUP_CAPACITY: u32 = 1_000;
/// Preschool: a child of this age or older at registration is refused.
pub const MAX_CHILD_AGE_YEARS: i16 = 7;
/// The applicant (a parent or guardian) is an adult.
pub const MIN_APPLICANT_AGE_YEARS: i16 = 16;

/// Input of a registration, as typed or imported. Checked by the engine.
#[derive(Debug, Clone, Default)]
pub struct RegisterInput {
    /// Given by an import; `None` numbers the application anew.
    pub app: Option<AppNo>,
    pub child_iin: String,
    pub birth_date: Date,
    pub applicant_iin: String,
    pub child_name: Option<String>,
    pub applicant_name: Option<String>,
    pub category: Option<String>,
    pub language: Option<Language>,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// Given by an import (historical); `None` means now.
    pub registered_at: Option<Timestamp>,
}

#[derive(Debug, Clone)]
pub enum Command {
    ActivateRules {
        files: BTreeMap<String, String>,
    },
    AddGroups {
        groups: Vec<GroupRow>,
    },
    Register(Box<RegisterInput>),
    ChangeCategory {
        app: AppNo,
        category: String,
    },
    Publish {
        kindergarten: String,
        cohort: i32,
        language: Language,
        places: u32,
    },
    Take {
        app: AppNo,
        publication: u64,
    },
    Recall {
        app: AppNo,
    },
    Extend {
        app: AppNo,
    },
    Enroll {
        app: AppNo,
    },
    CancelBenefit {
        app: AppNo,
    },
    Withdraw {
        app: AppNo,
    },
    /// Attach an application to another applicant (a parent's IIN, typed by an operator:
    /// checked, check digit included). The name is the new applicant's, if known.
    ChangeApplicant {
        app: AppNo,
        applicant_iin: String,
        applicant_name: Option<String>,
    },
}

impl Command {
    fn needs_reason(&self) -> bool {
        matches!(
            self,
            Command::ActivateRules { .. }
                | Command::Recall { .. }
                | Command::CancelBenefit { .. }
                | Command::Withdraw { .. }
                | Command::ChangeCategory { .. }
                | Command::ChangeApplicant { .. }
        )
    }
}

/// What earlier rows of one import claimed, so that a whole file is checked before
/// anything is written (the store only knows what is already in it).
#[derive(Debug, Default)]
pub struct ImportSeen {
    children: HashSet<Iin>,
    apps: HashSet<AppNo>,
    max_seq: u32,
}

/// A command with who asks and why.
#[derive(Debug, Clone)]
pub struct Request {
    pub command: Command,
    pub actor: Actor,
    pub reason: Option<String>,
}

/// State plus the decision logic: the in-memory engine. The store wraps it with the
/// durable log; the simulation uses it as it is.
#[derive(Default)]
pub struct Core {
    pub state: State,
    /// The re-ranking a rule activation's decision computed, for its record's `apply`
    /// (taken there; a stale one is ignored by seq and hash). A `Mutex` because deciding
    /// reads `&self`.
    prepared_rerank: std::sync::Mutex<Option<PreparedRerank>>,
}

fn not_found(id: AppNo) -> EngineError {
    EngineError::not_found("unknown_application", format!("no application {id}"))
}

/// Control characters and bidirectional overrides: names and reasons reach terminals and
/// pages, where these would rewrite what people see.
fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

fn clean_text(field: &str, s: Option<&str>, max: usize) -> Result<Option<String>> {
    match s.map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) if t.chars().count() > max => Err(EngineError::invalid(
            "invalid_input",
            format!("{field}: longer than {max} characters"),
        )),
        Some(t) if t.chars().any(is_unsafe_char) => Err(EngineError::invalid(
            "invalid_input",
            format!("{field}: contains control characters"),
        )),
        Some(t) => Ok(Some(t.to_string())),
    }
}

impl Core {
    pub fn new(state: State) -> Core {
        Core {
            state,
            prepared_rerank: Default::default(),
        }
    }

    fn rules(&self) -> Result<&RuleSet> {
        self.state
            .rules()
            .ok_or_else(|| EngineError::refused("no_rules", "no rule set is active"))
    }

    fn app(&self, id: AppNo) -> Result<&Application> {
        self.state.app(id).ok_or_else(|| not_found(id))
    }

    /// Seals an event into the next record of the chain (not yet applied).
    pub fn seal(
        &self,
        at: Timestamp,
        actor: &Actor,
        reason: Option<&str>,
        event: Event,
    ) -> EventRecord {
        EventRecord {
            seq: self.state.data.last_seq + 1,
            at,
            actor: actor.clone(),
            reason: reason.map(str::to_string),
            event,
            prev_hash: self.state.data.last_hash,
        }
    }

    fn push(
        &mut self,
        out: &mut Vec<EventRecord>,
        at: Timestamp,
        actor: &Actor,
        reason: Option<&str>,
        event: Event,
    ) -> Result<()> {
        let rec = self.seal(at, actor, reason, event);
        let prepared = self
            .prepared_rerank
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        self.state.apply_prepared(&rec, prepared)?;
        out.push(rec);
        Ok(())
    }

    /// Emits the transitions that time brings, up to and including `now`, in instant
    /// order. Each event is stamped with the instant it fell due.
    pub fn advance(&mut self, now: Timestamp) -> Result<Vec<EventRecord>> {
        let mut out = Vec::new();
        while let Some((at, timer)) = self.state.next_due(now) {
            let at = at.max(self.state.data.last_at);
            let event = match timer {
                Timer::PhaseEnd(publication) => Event::PriorityPhaseEnded { publication },
                Timer::Expire(referral) => {
                    let r = &self.state.data.referrals[&referral];
                    let days = self.rules()?.params().stop_list_days;
                    Event::ReferralExpired {
                        referral,
                        app: r.app,
                        stop_listed_until: calendar::add_days(r.valid_until, days),
                    }
                }
                Timer::LockEnd(app) => Event::LockLifted { app },
                Timer::StopListEnd(app) => Event::StopListLifted { app },
            };
            self.push(&mut out, at, &Actor::System, None, event)?;
        }
        Ok(out)
    }

    /// Validates a request at `now` and, if accepted, applies its events and returns
    /// them. A refused request returns an error and changes nothing. Transitions due by
    /// `now` must have been emitted first ([`Core::advance`]).
    pub fn execute(&mut self, req: &Request, now: Timestamp) -> Result<Vec<EventRecord>> {
        if now < self.state.data.last_at {
            return Err(EngineError::refused(
                "clock_backwards",
                format!(
                    "now ({}) is before the last event ({})",
                    calendar::show(now),
                    calendar::show(self.state.data.last_at)
                ),
            ));
        }
        if self.state.next_due(now).is_some() {
            return Err(EngineError::internal(
                "not_advanced",
                "transitions due by now were not emitted",
            ));
        }
        let reason = clean_text("reason", req.reason.as_deref(), MAX_REASON_CHARS)?;
        if req.command.needs_reason() && reason.is_none() {
            return Err(EngineError::invalid(
                "reason_required",
                "reason: required for this action",
            ));
        }
        // A re-ranking prepared by an earlier `decide` (a dry run) may not stand in for
        // this command's: only the decision below may leave one.
        *self
            .prepared_rerank
            .get_mut()
            .unwrap_or_else(|e| e.into_inner()) = None;
        // Rule calls share one big stack instead of growing one per call.
        let events = RuleSet::with_stack(|| self.decide(&req.command, now))?;
        let mut out = Vec::with_capacity(events.len());
        for event in events {
            self.push(&mut out, now, &req.actor, reason.as_deref(), event)?;
        }
        Ok(out)
    }

    /// Registers many applications: every row is checked first (a bad row refuses the
    /// whole import, naming the row, and nothing changes), then all are applied.
    /// `rows` pairs each input with the row number to report.
    pub fn import_applications(
        &mut self,
        rows: &[(usize, RegisterInput)],
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Vec<EventRecord>> {
        if self.state.next_due(now).is_some() {
            return Err(EngineError::internal(
                "not_advanced",
                "transitions due by now were not emitted",
            ));
        }
        let mut seen = ImportSeen::default();
        // Rule calls share one big stack instead of growing one per call.
        let regs = RuleSet::with_stack(|| {
            let mut regs = Vec::with_capacity(rows.len());
            for (row, input) in rows {
                let reg = self
                    .check_registration(input, now, &mut seen)
                    .map_err(|e| EngineError {
                        message: format!("row {row}: {}", e.message),
                        ..e
                    })?;
                regs.push(reg);
            }
            Ok::<_, EngineError>(regs)
        })?;
        let mut out = Vec::with_capacity(regs.len());
        for reg in regs {
            self.push(
                &mut out,
                now,
                actor,
                Some("import"),
                Event::Registered(Box::new(reg)),
            )?;
        }
        Ok(out)
    }

    /// Decides the events of a command without changing anything.
    pub fn decide(&self, cmd: &Command, now: Timestamp) -> Result<Vec<Event>> {
        match cmd {
            Command::ActivateRules { files } => self.decide_rules(files),
            Command::AddGroups { groups } => self.decide_groups(groups),
            Command::Register(input) => {
                let reg = self.check_registration(input, now, &mut ImportSeen::default())?;
                Ok(vec![Event::Registered(Box::new(reg))])
            }
            Command::ChangeCategory { app, category } => {
                let a = self.app(*app)?;
                if !a.status.is_waiting() {
                    return Err(wrong_status(a, "change the category of"));
                }
                if &a.category == category {
                    return Err(EngineError::refused(
                        "no_change",
                        format!("{app} is already in category {category}"),
                    ));
                }
                let key = self.key_for(a, category)?;
                Ok(vec![Event::CategoryChanged {
                    app: *app,
                    category: category.clone(),
                    key,
                }])
            }
            Command::Publish {
                kindergarten,
                cohort,
                language,
                places,
            } => self.decide_publish(kindergarten, *cohort, *language, *places, now),
            Command::Take { app, publication } => self.decide_take(*app, *publication, now),
            Command::Recall { app } => {
                let a = self.app(*app)?;
                let r = self.active_referral(a, "recall the referral of")?;
                if now > r.recall_until {
                    return Err(EngineError::refused(
                        "recall_window_closed",
                        format!(
                            "the recall window of referral {} closed at {} (issued {})",
                            r.id,
                            calendar::show(r.recall_until),
                            calendar::show(r.issued_at)
                        ),
                    ));
                }
                let p = &self.state.data.publications[&r.publication];
                let until = self
                    .rules()?
                    .lock_after_recall(&LockFacts {
                        recalled_at: now,
                        free_access_at: p.free_access_at,
                    })
                    .map_err(EngineError::rule)?;
                let mut ev = vec![Event::ReferralRecalled {
                    referral: r.id,
                    app: *app,
                }];
                if until > now {
                    ev.push(Event::LockApplied { app: *app, until });
                }
                Ok(ev)
            }
            Command::Extend { app } => {
                let a = self.app(*app)?;
                let r = self.active_referral(a, "extend the referral of")?;
                let params = self.rules()?.params();
                if i64::from(r.extensions) >= params.max_extensions {
                    return Err(EngineError::refused(
                        "already_extended",
                        format!(
                            "referral {} was already extended {} time(s); the rules allow {}",
                            r.id, r.extensions, params.max_extensions
                        ),
                    ));
                }
                let valid_until = calendar::add_days(r.valid_until, params.extension_days);
                Ok(vec![Event::ReferralExtended {
                    referral: r.id,
                    app: *app,
                    valid_until,
                }])
            }
            Command::Enroll { app } => {
                let a = self.app(*app)?;
                let r = self.active_referral(a, "enroll")?;
                Ok(vec![Event::Enrolled {
                    referral: r.id,
                    app: *app,
                }])
            }
            Command::CancelBenefit { app } => {
                let a = self.app(*app)?;
                if !(a.status.is_waiting() || a.status == Status::ReferralIssued) {
                    return Err(wrong_status(a, "cancel the benefit of"));
                }
                if a.category == "general" {
                    return Err(EngineError::refused(
                        "no_benefit",
                        format!("{app} has no benefit to cancel"),
                    ));
                }
                let key = self.key_for(a, "general")?;
                Ok(vec![Event::BenefitCancelled {
                    app: *app,
                    referral: a.referral,
                    category: "general".into(),
                    key,
                }])
            }
            Command::Withdraw { app } => {
                let a = self.app(*app)?;
                if matches!(a.status, Status::Withdrawn | Status::Enrolled) {
                    return Err(wrong_status(a, "withdraw"));
                }
                Ok(vec![Event::Withdrawn {
                    app: *app,
                    referral: a.referral,
                }])
            }
            Command::ChangeApplicant {
                app,
                applicant_iin,
                applicant_name,
            } => self.decide_applicant(*app, applicant_iin, applicant_name.as_deref(), now),
        }
    }

    fn decide_applicant(
        &self,
        app: AppNo,
        applicant_iin: &str,
        applicant_name: Option<&str>,
        now: Timestamp,
    ) -> Result<Vec<Event>> {
        let a = self.app(app)?;
        let iin = Iin::parse(applicant_iin)
            .map_err(|e| EngineError::invalid("invalid_iin", format!("applicant IIN: {e}")))?;
        if iin == a.child_iin {
            return Err(EngineError::invalid(
                "invalid_iin",
                "applicant IIN: the same as the child's",
            ));
        }
        let today = calendar::local_date(now);
        let born = iin.birth_date();
        let adult = today
            .checked_sub(jiff::Span::new().years(MIN_APPLICANT_AGE_YEARS))
            .is_ok_and(|limit| born <= limit);
        if !adult {
            return Err(EngineError::invalid(
                "invalid_iin",
                format!(
                    "applicant IIN: the applicant must be at least {MIN_APPLICANT_AGE_YEARS} years old"
                ),
            ));
        }
        if iin == a.applicant_iin {
            return Err(EngineError::refused(
                "no_change",
                format!("{app} is already the application of this applicant"),
            ));
        }
        let applicant_name = clean_text("applicant name", applicant_name, MAX_NAME_CHARS)?;
        Ok(vec![Event::ApplicantChanged {
            app,
            applicant_iin: iin,
            applicant_name,
        }])
    }

    fn active_referral(&self, a: &Application, what: &str) -> Result<&Referral> {
        match a.referral.and_then(|r| self.state.data.referrals.get(&r)) {
            Some(r) if a.status == Status::ReferralIssued && r.state == ReferralState::Active => {
                Ok(r)
            }
            _ => Err(EngineError::refused(
                "no_active_referral",
                format!(
                    "cannot {what} {}: it has no active referral (status {})",
                    a.id,
                    a.status.code()
                ),
            )),
        }
    }

    fn key_for(&self, a: &Application, category: &str) -> Result<OrderKey> {
        let rules = self.rules()?;
        let id = a.id.to_string();
        let facts = AppFacts {
            id: &id,
            category,
            language: a.language.code(),
            birth_date: a.birth_date,
            registered_at: a.registered_at,
        };
        if rules.category_rank(category).is_none() {
            return Err(unknown_category(category, rules));
        }
        let key = rules.order_key(&facts).map_err(EngineError::rule)?;
        Ok(OrderKey::new(&key, a.id))
    }

    fn decide_rules(&self, files: &BTreeMap<String, String>) -> Result<Vec<Event>> {
        let rules = RuleSet::compile(files).map_err(|e| {
            EngineError::invalid(
                "rules_invalid",
                format!("the rules were not activated: {e}"),
            )
        })?;
        let hash = rules.hash();
        if self
            .state
            .data
            .rules_versions
            .last()
            .is_some_and(|v| v.hash == hash)
        {
            return Err(EngineError::refused(
                "no_change",
                "this rule set is already active",
            ));
        }
        // Every application's category must be known to the new rules, and every key and
        // cohort must compute: re-rank now, so that applying cannot fail.
        let mut unknown: BTreeMap<&str, usize> = BTreeMap::new();
        for a in self.state.data.apps.values() {
            if rules.category_rank(&a.category).is_none() {
                *unknown.entry(a.category.as_str()).or_default() += 1;
            }
        }
        if let Some((c, n)) = unknown.iter().next() {
            return Err(EngineError::refused(
                "category_in_use",
                format!(
                    "the new rules do not define category '{c}', which {n} application(s) hold"
                ),
            ));
        }
        let keys = rerank(&rules, &self.state.data.apps).map_err(EngineError::rule)?;
        for (_, cohort, _) in &keys {
            check_cohort(*cohort)?;
        }
        let event = Event::RulesActivated {
            version: self.state.rules_version() + 1,
            hash: hash.clone(),
            files: rules.files().clone(),
        };
        *self
            .prepared_rerank
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(PreparedRerank {
            seq: self.state.data.last_seq + 1,
            hash,
            rules,
            keys,
        });
        Ok(vec![event])
    }

    fn decide_groups(&self, groups: &[GroupRow]) -> Result<Vec<Event>> {
        let mut seen = HashSet::new();
        for (i, g) in groups.iter().enumerate() {
            // Groups come from a CSV file whose header is row 1, as a spreadsheet shows it.
            let row = i + 2;
            let bad = |field: &str, msg: String| {
                EngineError::invalid("invalid_input", format!("row {row}, {field}: {msg}"))
            };
            if g.kindergarten.trim().is_empty() || g.kindergarten.len() > 64 {
                return Err(bad("id", "must be 1 to 64 characters".into()));
            }
            for (field, value) in [
                ("id", &g.kindergarten),
                ("name", &g.name),
                ("district", &g.district),
            ] {
                // Names reach terminals and pages: no control or bidirectional-override
                // characters.
                if value.chars().any(is_unsafe_char) {
                    return Err(bad(field, "contains control characters".into()));
                }
            }
            if g.district.chars().count() > MAX_NAME_CHARS {
                return Err(bad(
                    "district",
                    format!("longer than {MAX_NAME_CHARS} characters"),
                ));
            }
            if g.name.trim().is_empty() || g.name.chars().count() > MAX_NAME_CHARS {
                return Err(bad(
                    "name",
                    format!("must be 1 to {MAX_NAME_CHARS} characters"),
                ));
            }
            if !(1900..=2200).contains(&g.cohort) {
                return Err(bad("cohort", format!("{} is not a birth year", g.cohort)));
            }
            if g.capacity == 0 || g.capacity > MAX_GROUP_CAPACITY {
                return Err(bad(
                    "capacity",
                    format!("must be 1 to {MAX_GROUP_CAPACITY}"),
                ));
            }
            if !seen.insert((g.kindergarten.clone(), g.cohort, g.language)) {
                return Err(bad(
                    "id",
                    format!(
                        "group {} {} {} appears twice",
                        g.kindergarten, g.cohort, g.language
                    ),
                ));
            }
            if let Some(kg) = self.state.data.kindergartens.get(&g.kindergarten) {
                if kg.group(g.cohort, g.language).is_some() {
                    return Err(bad(
                        "id",
                        format!(
                            "group {} {} {} already exists",
                            g.kindergarten, g.cohort, g.language
                        ),
                    ));
                }
                if kg.name != g.name {
                    return Err(bad(
                        "name",
                        format!(
                            "kindergarten {} is already named '{}'",
                            g.kindergarten, kg.name
                        ),
                    ));
                }
            }
        }
        if groups.is_empty() {
            return Err(EngineError::invalid("invalid_input", "no groups to add"));
        }
        Ok(vec![Event::GroupsAdded {
            groups: groups.to_vec(),
        }])
    }

    /// Checks one registration; `children` and `max_seq` carry what earlier rows of the
    /// same import claimed, so a whole file is checked before anything is written.
    pub fn check_registration(
        &self,
        input: &RegisterInput,
        now: Timestamp,
        seen: &mut ImportSeen,
    ) -> Result<Registration> {
        let rules = self.rules()?;
        let today = calendar::local_date(now);
        if input.birth_date > today {
            return Err(EngineError::invalid(
                "invalid_date",
                format!("birth date: {} is in the future", input.birth_date),
            ));
        }
        let child_iin = Iin::parse_child(&input.child_iin, input.birth_date)
            .map_err(|e| EngineError::invalid("invalid_iin", format!("child IIN: {e}")))?;
        let applicant_iin = Iin::parse(&input.applicant_iin)
            .map_err(|e| EngineError::invalid("invalid_iin", format!("applicant IIN: {e}")))?;
        if applicant_iin == child_iin {
            return Err(EngineError::invalid(
                "invalid_iin",
                "applicant IIN: the same as the child's",
            ));
        }
        let category = input.category.clone().unwrap_or_else(|| "general".into());
        if rules.category_rank(&category).is_none() {
            return Err(unknown_category(&category, rules));
        }
        let registered_at = input.registered_at.unwrap_or(now);
        if registered_at > now {
            return Err(EngineError::invalid(
                "invalid_date",
                format!(
                    "registration time: {} is in the future",
                    calendar::show(registered_at)
                ),
            ));
        }
        if calendar::local_date(registered_at) < input.birth_date {
            return Err(EngineError::invalid(
                "invalid_date",
                "registration time: before the child's birth",
            ));
        }
        let registered_on = calendar::local_date(registered_at);
        let years = |from: jiff::civil::Date| {
            registered_on
                .since(from)
                .ok()
                .and_then(|s| {
                    s.round(
                        jiff::SpanRound::new()
                            .largest(jiff::Unit::Year)
                            .relative(from)
                            .smallest(jiff::Unit::Year)
                            .mode(jiff::RoundMode::Trunc),
                    )
                    .ok()
                })
                .map_or(0, |s| s.get_years())
        };
        if years(input.birth_date) >= MAX_CHILD_AGE_YEARS {
            return Err(EngineError::invalid(
                "invalid_date",
                format!(
                    "birth date: the child was {} at registration; the queue is for children under {MAX_CHILD_AGE_YEARS}",
                    years(input.birth_date)
                ),
            ));
        }
        if years(applicant_iin.birth_date()) < MIN_APPLICANT_AGE_YEARS {
            return Err(EngineError::invalid(
                "invalid_iin",
                format!("applicant IIN: the applicant must be at least {MIN_APPLICANT_AGE_YEARS} years old"),
            ));
        }
        if let Some(existing) = self.state.app_of_child(&child_iin) {
            return Err(EngineError::refused(
                "duplicate_application",
                format!(
                    "the child {} already has application {existing}",
                    child_iin.masked()
                ),
            ));
        }
        if !seen.children.insert(child_iin.clone()) {
            return Err(EngineError::invalid(
                "duplicate_application",
                format!("child IIN {} appears twice", child_iin.masked()),
            ));
        }
        let app = match input.app {
            Some(a) => {
                if self.state.app(a).is_some() {
                    return Err(EngineError::refused(
                        "duplicate_application",
                        format!("application {a} already exists"),
                    ));
                }
                a
            }
            None => AppNo {
                year: calendar::local_date(registered_at).year() as u16,
                seq: self.state.data.max_app_seq.max(seen.max_seq) + 1,
                n: 1,
            },
        };
        if !seen.apps.insert(app) {
            return Err(EngineError::invalid(
                "duplicate_application",
                format!("application number {app} appears twice"),
            ));
        }
        seen.max_seq = seen.max_seq.max(app.seq).max(self.state.data.max_app_seq);
        let email = clean_text("email", input.email.as_deref(), MAX_NAME_CHARS)?;
        if let Some(e) = &email {
            if !e.contains('@') || e.starts_with('@') || e.ends_with('@') {
                return Err(EngineError::invalid(
                    "invalid_input",
                    format!("email: '{e}' is not an e-mail address"),
                ));
            }
        }
        let phone = clean_text("phone", input.phone.as_deref(), 32)?;
        if let Some(p) = &phone {
            if !p.chars().all(|c| c.is_ascii_digit() || " +-()".contains(c)) {
                return Err(EngineError::invalid(
                    "invalid_input",
                    format!("phone: '{p}' is not a phone number"),
                ));
            }
        }
        let language = input.language.unwrap_or(Language::Kk);
        let id = app.to_string();
        let facts = AppFacts {
            id: &id,
            category: &category,
            language: language.code(),
            birth_date: input.birth_date,
            registered_at,
        };
        let key = rules.order_key(&facts).map_err(EngineError::rule)?;
        let cohort = rules.cohort(&facts).map_err(EngineError::rule)?;
        check_cohort(cohort)?;
        Ok(Registration {
            app,
            child_iin,
            child_name: clean_text("child name", input.child_name.as_deref(), MAX_NAME_CHARS)?,
            birth_date: input.birth_date,
            applicant_iin,
            applicant_name: clean_text(
                "applicant name",
                input.applicant_name.as_deref(),
                MAX_NAME_CHARS,
            )?,
            email,
            phone,
            language,
            category,
            registered_at,
            cohort,
            key: OrderKey::new(&key, app),
        })
    }

    fn decide_publish(
        &self,
        kindergarten: &str,
        cohort: i32,
        language: Language,
        places: u32,
        now: Timestamp,
    ) -> Result<Vec<Event>> {
        let rules = self.rules()?;
        let kg = self
            .state
            .data
            .kindergartens
            .get(kindergarten)
            .ok_or_else(|| {
                EngineError::not_found(
                    "unknown_kindergarten",
                    format!("no kindergarten {kindergarten}"),
                )
            })?;
        let group = kg.group(cohort, language).ok_or_else(|| {
            EngineError::invalid(
                "unknown_group",
                format!("kindergarten {kindergarten} has no group for cohort {cohort} in language {language}"),
            )
        })?;
        if places == 0 || places > MAX_PLACES_PER_PUBLICATION {
            return Err(EngineError::invalid(
                "invalid_input",
                format!("places: must be 1 to {MAX_PLACES_PER_PUBLICATION}"),
            ));
        }
        let free = group.capacity - group.published;
        if places > free {
            return Err(EngineError::refused(
                "not_enough_capacity",
                format!("the group has {free} place(s) that can be published, not {places}"),
            ));
        }
        let date = calendar::local_date(now);
        if !rules.publication_allowed(date).map_err(EngineError::rule)? {
            return Err(EngineError::refused(
                "blackout",
                format!("the rules allow no publication of places on {date}"),
            ));
        }
        let publication = self
            .state
            .data
            .publications
            .keys()
            .next_back()
            .map_or(1, |k| k + 1);
        Ok(vec![Event::PlacesPublished {
            publication,
            kindergarten: kindergarten.to_string(),
            cohort,
            language,
            places,
            free_access_at: calendar::free_access_at(rules.params(), now),
        }])
    }

    /// Why an application may not take a place of a publication now, or `Ok` if it may.
    pub fn may_take(&self, a: &Application, p: &Publication, now: Timestamp) -> Result<()> {
        match a.status {
            Status::Queued => {}
            Status::StopListed => {
                return Err(EngineError::refused(
                    "stop_listed",
                    format!(
                        "{} is on the stop-list until {} and gets no offers",
                        a.id,
                        a.stop_listed_until.map(calendar::show).unwrap_or_default()
                    ),
                ))
            }
            _ => return Err(wrong_status(a, "issue a referral to")),
        }
        if p.cohort != a.cohort || p.language != a.language {
            return Err(EngineError::refused(
                "not_eligible",
                format!(
                    "publication {} is for cohort {} in {}, the application is cohort {} in {}",
                    p.id, p.cohort, p.language, a.cohort, a.language
                ),
            ));
        }
        if p.places_left == 0 {
            return Err(EngineError::refused(
                "no_places",
                format!("publication {} has no places left", p.id),
            ));
        }
        if p.phase == Phase::Priority {
            if let Some(until) = a.locked_until.filter(|t| *t > now) {
                return Err(EngineError::refused(
                    "locked",
                    format!(
                        "{} recalled a referral and is locked out of priority places until {}",
                        a.id,
                        calendar::show(until)
                    ),
                ));
            }
            let position = self.state.queue_position(a).unwrap_or(u64::MAX);
            let free = self.state.priority_free(a.cohort);
            let ok = self
                .rules()?
                .priority_eligible(position, free)
                .map_err(EngineError::rule)?;
            if !ok {
                return Err(EngineError::refused(
                    "not_eligible",
                    format!(
                        "publication {} is in its priority phase until {}: position {position} is not within the {free} free place(s) of cohort {}",
                        p.id,
                        calendar::show(p.free_access_at),
                        a.cohort
                    ),
                ));
            }
        }
        Ok(())
    }

    fn decide_take(&self, app: AppNo, publication: u64, now: Timestamp) -> Result<Vec<Event>> {
        let a = self.app(app)?;
        let p = self
            .state
            .data
            .publications
            .get(&publication)
            .ok_or_else(|| {
                EngineError::not_found(
                    "unknown_publication",
                    format!("no publication {publication}"),
                )
            })?;
        self.may_take(a, p, now)?;
        let rules = self.rules()?;
        let params = rules.params();
        let referral = self
            .state
            .data
            .referrals
            .keys()
            .next_back()
            .map_or(1, |k| k + 1);
        Ok(vec![Event::ReferralIssued {
            referral,
            app,
            publication,
            valid_until: calendar::referral_valid_until(params, now),
            recall_until: now
                .checked_add(jiff::SignedDuration::from_hours(params.recall_window_hours))
                .unwrap_or(Timestamp::MAX),
            phase: p.phase,
        }])
    }

    /// The places an application may take now.
    pub fn offers(&self, app: AppNo, now: Timestamp) -> Result<Vec<&Publication>> {
        let a = self.app(app)?;
        if a.status != Status::Queued {
            return Ok(Vec::new());
        }
        Ok(RuleSet::with_stack(|| {
            self.state
                .open_publications(a.cohort, a.language)
                .into_iter()
                .filter(|p| self.may_take(a, p, now).is_ok())
                .collect()
        }))
    }
}

/// A cohort is a birth year: a rule that returns anything else is refused.
fn check_cohort(cohort: i32) -> Result<()> {
    if (1900..=2200).contains(&cohort) {
        Ok(())
    } else {
        Err(EngineError::refused(
            "rule_failed",
            format!("a rule failed: order.rhai: cohort(app) returned {cohort}; a cohort is a birth year from 1900 to 2200"),
        ))
    }
}

fn wrong_status(a: &Application, what: &str) -> EngineError {
    EngineError::refused(
        "wrong_status",
        format!("cannot {what} {}: its status is {}", a.id, a.status.code()),
    )
}

fn unknown_category(code: &str, rules: &RuleSet) -> EngineError {
    let known: Vec<&str> = rules
        .params()
        .categories
        .iter()
        .map(|c| c.code.as_str())
        .collect();
    EngineError::invalid(
        "unknown_category",
        format!("category: '{code}' is not one of {}", known.join(", ")),
    )
}
