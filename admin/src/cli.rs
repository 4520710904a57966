//! The `kezek` command line. Exit codes: 0 done; 2 usage; 3 refused by the rules or the
//! state; 4 invalid input (bad IIN, bad date, unknown application); 1 storage or
//! internal failure.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Parser, Subcommand, ValueEnum};
use jiff::{SignedDuration, Timestamp};
use kezek_engine::demo::{self, Scale};
use kezek_engine::{
    import, view, Actor, AppNo, ClockMode, Command, EngineError, ErrorKind, Language,
    RegisterInput, Request, RuleSet, Store,
};
use serde_json::json;

use crate::output;

#[derive(Parser, Debug)]
#[command(
    name = "kezek",
    version,
    about = "Kezek: the preschool enrollment queue of a city"
)]
pub struct Cli {
    /// The data folder (the store).
    #[arg(long, global = true, env = "KEZEK_DATA", default_value = "kezek-data")]
    pub data: PathBuf,
    /// Print JSON (results, and refusals as {"error": {"code", "message"}}).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ClockArg {
    System,
    Manual,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ScaleArg {
    City,
    Small,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LangArg {
    Kk,
    Ru,
}

impl From<LangArg> for Language {
    fn from(l: LangArg) -> Language {
        match l {
            LangArg::Kk => Language::Kk,
            LangArg::Ru => Language::Ru,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Create a store with a rule set and a clock.
    Init {
        #[arg(long)]
        rules: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "system")]
        clock: ClockArg,
        /// Start time of a manual clock (RFC 3339).
        #[arg(long)]
        now: Option<String>,
    },
    /// Build the demo city (about 49,000 waiting) deterministically from a seed.
    Demo {
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, value_enum, default_value = "city")]
        scale: ScaleArg,
    },
    /// Import a CSV file.
    Import {
        #[command(subcommand)]
        what: ImportWhat,
    },
    /// Register a child in the queue of its birth year.
    Register {
        #[arg(long)]
        child_iin: String,
        #[arg(long)]
        birth_date: String,
        #[arg(long)]
        applicant_iin: String,
        #[arg(long)]
        child_name: Option<String>,
        #[arg(long)]
        applicant_name: Option<String>,
        #[arg(long)]
        category: Option<String>,
        #[arg(long, value_enum)]
        language: Option<LangArg>,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        phone: Option<String>,
    },
    /// Show an application's card.
    Show { id: String },
    /// A page of a cohort queue, in order.
    Queue {
        #[arg(long)]
        cohort: i32,
        #[arg(long)]
        category: Option<String>,
        /// Queue position of the first row (1-based).
        // allow_negative_numbers: `--from -1` is then refused as a bad value of `--from`,
        // not as "unexpected argument '-1'", which named no option.
        #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
        from: u64,
        #[arg(long, default_value_t = 20, allow_negative_numbers = true)]
        limit: u64,
    },
    /// Explain an application's position.
    Explain { id: String },
    /// Publish free places of a kindergarten group.
    Publish {
        #[arg(long)]
        kindergarten: String,
        #[arg(long)]
        cohort: i32,
        #[arg(long, value_enum)]
        language: LangArg,
        #[arg(long)]
        places: u32,
    },
    /// The places an application may take now.
    Offers { id: String },
    /// Take a place: issues a referral.
    Take {
        id: String,
        #[arg(long)]
        publication: u64,
    },
    /// Recall a referral within the recall window; the application returns to its position.
    Recall {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Extend a referral (once).
    Extend { id: String },
    /// Enroll: the referral was used.
    Enroll { id: String },
    /// The benefit was not confirmed: cancel any referral, move to the general queue.
    CancelBenefit {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Withdraw an application.
    Withdraw {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Change an application's benefit category.
    ChangeCategory {
        id: String,
        #[arg(long)]
        category: String,
        #[arg(long)]
        reason: String,
    },
    /// Attach an application to a parent's IIN (who then sees it in the citizen journal).
    AttachApplicant {
        id: String,
        /// The parent's IIN (12 digits, check digit valid).
        #[arg(long)]
        iin: String,
        /// The parent's full name.
        #[arg(long)]
        applicant_name: Option<String>,
        #[arg(long)]
        reason: String,
    },
    /// Move a manual clock.
    #[command(group(clap::ArgGroup::new("when").required(true).args(["to", "by"])))]
    Tick {
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        by: Option<String>,
    },
    /// Certificates and XML signatures (NCA RK): trust store, inspect, verify, test tools.
    Pki {
        #[command(subcommand)]
        what: crate::pki_cli::PkiCmd,
    },
    /// Rule sets: check, activate, show.
    Rules {
        #[command(subcommand)]
        what: RulesCmd,
    },
    /// Audit: verify the chain, replay and invariants.
    Audit {
        #[command(subcommand)]
        what: AuditCmd,
    },
    /// Serve the web console and the JSON API (creates the store and the demo city if the
    /// data folder holds none).
    Serve {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
    },
    /// What-if simulation: a horizon of the city replayed in memory under candidate rules,
    /// side by side with the baseline (never touches the store).
    Simulate {
        /// The scenario file (TOML; see README).
        scenario: PathBuf,
        /// The candidate rule directory.
        #[arg(long)]
        rules: Option<PathBuf>,
        /// The baseline rule directory (default: the rules active in the start state).
        #[arg(long, requires = "rules")]
        baseline: Option<PathBuf>,
        /// Seeds to run (the scenario's seed, +1, ...), over all cores.
        #[arg(long, default_value_t = 1)]
        runs: u32,
        /// Write the figures (CSV) and charts (SVG) into this folder.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Accounts of the web console: add a user, print an API token.
    Admin {
        #[command(subcommand)]
        what: crate::web::AdminCmd,
    },
}

#[derive(Subcommand, Debug)]
pub enum ImportWhat {
    /// The application journal (see README for the columns).
    Applications { file: PathBuf },
    /// Kindergarten groups: id,name,district,cohort,language,capacity.
    Kindergartens { file: PathBuf },
}

#[derive(Subcommand, Debug)]
pub enum RulesCmd {
    Check {
        dir: PathBuf,
    },
    Activate {
        dir: PathBuf,
        #[arg(long)]
        reason: String,
    },
    Show {},
}

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    Verify {},
}

/// A failure with its exit code.
pub struct Failure {
    pub exit: i32,
    pub code: String,
    pub message: String,
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Failure {
        let exit = match e.kind {
            ErrorKind::Invalid | ErrorKind::NotFound => 4,
            ErrorKind::Refused => 3,
            ErrorKind::Internal => 1,
        };
        Failure {
            exit,
            code: e.code.to_string(),
            message: e.message,
        }
    }
}

fn invalid(code: &str, message: impl Into<String>) -> Failure {
    Failure {
        exit: 4,
        code: code.into(),
        message: message.into(),
    }
}

type Out = Result<(), Failure>;

fn actor() -> Actor {
    Actor::Operator("cli".into())
}

fn parse_id(s: &str) -> Result<AppNo, Failure> {
    s.parse()
        .map_err(|e: String| invalid("invalid_application_number", e))
}

fn parse_time(field: &str, s: &str) -> Result<Timestamp, Failure> {
    s.parse::<Timestamp>().map_err(|e| {
        invalid(
            "invalid_date",
            format!("{field}: '{s}' is not an RFC 3339 instant ({e})"),
        )
    })
}

/// Parses `90m`, `25h`, `8d`, `1d 2h`, `30s`, `2w`.
pub fn parse_duration(s: &str) -> Result<SignedDuration, String> {
    let mut total: i64 = 0;
    let mut any = false;
    for part in s.split_whitespace() {
        let split = part
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("'{part}' has no unit (s, m, h, d, w)"))?;
        let (num, unit) = part.split_at(split);
        let n: i64 = num
            .parse()
            .map_err(|_| format!("'{part}' does not start with a number"))?;
        let secs = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3_600,
            "d" => 86_400,
            "w" => 604_800,
            _ => return Err(format!("'{unit}' is not a unit: use s, m, h, d or w")),
        };
        total = n
            .checked_mul(secs)
            .and_then(|x| total.checked_add(x))
            .ok_or("too long")?;
        any = true;
    }
    if !any {
        return Err("empty duration".into());
    }
    if total > 20 * 365 * 86_400 {
        return Err("longer than 20 years".into());
    }
    Ok(SignedDuration::from_secs(total))
}

fn print_json(v: &impl serde::Serialize) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("cannot render JSON: {e}"),
    }
}

fn open(data: &Path) -> Result<Store, Failure> {
    Ok(Store::open(data)?)
}

/// Opens the store and brings it to "now": transitions due are emitted first.
fn open_now(data: &Path) -> Result<(Store, Timestamp), Failure> {
    let mut store = open(data)?;
    let now = store.now(Timestamp::now());
    store.advance(now)?;
    Ok((store, now))
}

fn read_file(path: &Path, limit: usize) -> Result<Vec<u8>, Failure> {
    let meta = std::fs::metadata(path)
        .map_err(|e| invalid("unreadable_file", format!("{}: {e}", path.display())))?;
    if meta.len() as usize > limit {
        return Err(invalid(
            "too_large",
            format!("{}: larger than {limit} bytes", path.display()),
        ));
    }
    std::fs::read(path).map_err(|e| invalid("unreadable_file", format!("{}: {e}", path.display())))
}

fn read_rules(dir: &Path) -> Result<std::collections::BTreeMap<String, String>, Failure> {
    RuleSet::read_dir(dir).map_err(|e| invalid("rules_invalid", e.to_string()))
}

fn exec(
    store: &mut Store,
    now: Timestamp,
    command: Command,
    reason: Option<String>,
) -> Result<Vec<kezek_engine::EventRecord>, Failure> {
    Ok(store.execute(
        &Request {
            command,
            actor: actor(),
            reason,
        },
        now,
    )?)
}

fn show_card(store: &Store, id: AppNo, json: bool) -> Out {
    let c = view::card(store, id)?;
    if json {
        print_json(&c);
    } else {
        print!("{}", output::card(&c));
    }
    Ok(())
}

pub fn run(cli: Cli) -> Out {
    let data = cli.data.as_path();
    let json = cli.json;
    match cli.command {
        Cmd::Init { rules, clock, now } => {
            let files = match &rules {
                Some(dir) => read_rules(dir)?,
                None => RuleSet::default_files(),
            };
            let (mode, start) = match (clock, now) {
                (ClockArg::System, Some(_)) => {
                    return Err(Failure {
                        exit: 2,
                        code: "usage".into(),
                        message: "--now goes with --clock manual".into(),
                    })
                }
                (ClockArg::System, None) => (ClockMode::System, Timestamp::now()),
                (ClockArg::Manual, Some(t)) => (ClockMode::Manual, parse_time("--now", &t)?),
                (ClockArg::Manual, None) => (ClockMode::Manual, Timestamp::now()),
            };
            let store = Store::init(data, &files, mode, start, actor())?;
            if json {
                print_json(&json!({
                    "data": data.display().to_string(),
                    "rules_version": store.state().rules_version(),
                    "clock": if mode == ClockMode::Manual { "manual" } else { "system" },
                    "now": store.now(start),
                }));
                return Ok(());
            }
            println!(
                "created a store at {} · rules version {} · {} clock at {}",
                data.display(),
                store.state().rules_version(),
                if mode == ClockMode::Manual {
                    "manual"
                } else {
                    "system"
                },
                output::local(store.now(start))
            );
        }
        Cmd::Demo { seed, scale } => {
            let started = Instant::now();
            let mut store = if Store::exists(data) {
                open(data)?
            } else if Timestamp::now() < demo::anchor() {
                // Refuse before creating anything: a refused command leaves no store behind.
                return Err(Failure {
                    exit: 3,
                    code: "clock_too_early".into(),
                    message: format!(
                        "the demo city is dated up to {}; the system clock is earlier",
                        demo::anchor()
                    ),
                });
            } else {
                Store::init(
                    data,
                    &RuleSet::default_files(),
                    ClockMode::System,
                    Timestamp::now(),
                    actor(),
                )?
            };
            let now = store.now(Timestamp::now());
            store.advance(now)?;
            let scale = match scale {
                ScaleArg::City => Scale::City,
                ScaleArg::Small => Scale::Small,
            };
            let summary = demo::build(&mut store, seed, scale, now)?;
            let secs = started.elapsed().as_secs_f64();
            if json {
                print_json(&json!({"summary": summary, "seconds": secs}));
                return Ok(());
            }
            println!(
                "Demo city (seed {}) built in {secs:.2} s at {}",
                summary.seed,
                data.display()
            );
            println!(
                "  kindergartens {} · groups {} · places {}",
                summary.kindergartens, summary.groups, summary.capacity
            );
            println!("  applications {}", summary.applications);
            for (c, n) in &summary.waiting_by_cohort {
                println!("    cohort {c}: {n} waiting");
            }
            let cats: Vec<String> = summary
                .by_category
                .iter()
                .map(|(c, n)| format!("{c} {n}"))
                .collect();
            println!("  by category: {}", cats.join(" · "));
            println!(
                "  publications {} ({} places, priority phase) · referrals issued {}",
                summary.publications.len(),
                summary.places_published,
                summary.referrals
            );
            for id in &summary.samples {
                println!();
                show_card(&store, parse_id(id)?, false)?;
            }
            if let Some(id) = summary.samples.get(1) {
                println!("\nTry: kezek show {id} · kezek explain {id} · kezek queue --cohort 2020 --limit 10");
            }
        }
        Cmd::Import { what } => {
            let (mut store, now) = open_now(data)?;
            match what {
                ImportWhat::Applications { file } => {
                    let bytes = read_file(&file, import::MAX_CSV_BYTES)?;
                    let rules = store
                        .state()
                        .rules()
                        .cloned()
                        .ok_or_else(|| invalid("no_rules", "no rules"))?;
                    let rows = import::parse_applications(&bytes, &rules)?;
                    let started = Instant::now();
                    let n = store.import_applications(&rows, &actor(), now)?;
                    let secs = started.elapsed().as_secs_f64().max(1e-9);
                    if json {
                        print_json(&json!({"imported": n, "seconds": secs}));
                        return Ok(());
                    }
                    println!(
                        "imported {n} applications in {secs:.2} s ({:.0} per second)",
                        n as f64 / secs
                    );
                }
                ImportWhat::Kindergartens { file } => {
                    let bytes = read_file(&file, import::MAX_CSV_BYTES)?;
                    let groups = import::parse_kindergartens(&bytes)?;
                    let n = groups.len();
                    exec(
                        &mut store,
                        now,
                        Command::AddGroups { groups },
                        Some("import".into()),
                    )?;
                    if json {
                        print_json(&json!({"imported": n}));
                    } else {
                        println!("imported {n} kindergarten groups");
                    }
                }
            }
        }
        Cmd::Register {
            child_iin,
            birth_date,
            applicant_iin,
            child_name,
            applicant_name,
            category,
            language,
            email,
            phone,
        } => {
            let birth_date = birth_date.parse().map_err(|_| {
                invalid(
                    "invalid_date",
                    format!("birth date: '{birth_date}' is not a date YYYY-MM-DD"),
                )
            })?;
            let (mut store, now) = open_now(data)?;
            let input = RegisterInput {
                app: None,
                child_iin,
                birth_date,
                applicant_iin,
                child_name,
                applicant_name,
                category,
                language: language.map(Into::into),
                email,
                phone,
                registered_at: None,
            };
            let recs = exec(&mut store, now, Command::Register(Box::new(input)), None)?;
            let id = recs
                .iter()
                .find_map(|r| r.event.app())
                .ok_or_else(|| invalid("internal", "no application registered"))?;
            if json {
                show_card(&store, id, true)?;
            } else {
                println!("{id}");
            }
        }
        Cmd::Show { id } => {
            let id = parse_id(&id)?;
            let (store, _) = open_now(data)?;
            show_card(&store, id, json)?;
        }
        Cmd::Queue {
            cohort,
            category,
            from,
            limit,
        } => {
            if from == 0 {
                return Err(invalid("invalid_input", "--from: positions start at 1"));
            }
            if limit == 0 || limit > 1_000 {
                return Err(invalid("invalid_input", "--limit: 1 to 1000 rows"));
            }
            let (store, _) = open_now(data)?;
            if let Some(c) = &category {
                let known = store
                    .state()
                    .rules()
                    .is_some_and(|r| r.category_rank(c).is_some());
                if !known {
                    return Err(invalid(
                        "unknown_category",
                        format!("category: '{c}' is not a category of the rules"),
                    ));
                }
            }
            let page = view::queue_page(store.state(), cohort, category.as_deref(), from, limit);
            if json {
                print_json(&page);
            } else {
                println!(
                    "cohort {cohort}{}: {} waiting",
                    category.map(|c| format!(" · {c}")).unwrap_or_default(),
                    page.total
                );
                println!(
                    "{:>7}  {:<20} {:<15} {:>5}  {:<32} status",
                    "pos", "application", "category", "cat", "registered"
                );
                for c in &page.items {
                    println!("{}", output::queue_row(c));
                }
            }
        }
        Cmd::Explain { id } => {
            let id = parse_id(&id)?;
            let (store, _) = open_now(data)?;
            let e = view::explain(&store, id)?;
            if json {
                print_json(&e);
            } else {
                print!("{}", output::explanation(&e));
            }
        }
        Cmd::Publish {
            kindergarten,
            cohort,
            language,
            places,
        } => {
            let (mut store, now) = open_now(data)?;
            let recs = exec(
                &mut store,
                now,
                Command::Publish {
                    kindergarten,
                    cohort,
                    language: language.into(),
                    places,
                },
                None,
            )?;
            let pid = recs.iter().find_map(|r| match &r.event {
                kezek_engine::Event::PlacesPublished { publication, .. } => Some(*publication),
                _ => None,
            });
            let p = pid
                .and_then(|id| store.state().data.publications.get(&id))
                .ok_or_else(|| invalid("internal", "no publication"))?;
            if json {
                print_json(&json!({
                    "id": p.id, "kindergarten": p.kindergarten, "cohort": p.cohort, "language": p.language.code(),
                    "places": p.places, "phase": p.phase.code(), "published_at": p.published_at, "free_access_at": p.free_access_at,
                }));
            } else {
                println!(
                    "publication {} · {} place(s) · {} until {}",
                    p.id,
                    p.places,
                    p.phase.code(),
                    output::local(p.free_access_at)
                );
            }
        }
        Cmd::Offers { id } => {
            let id = parse_id(&id)?;
            let (store, now) = open_now(data)?;
            let offers = view::offers(&store, id, now)?;
            if json {
                print_json(&offers);
            } else if offers.is_empty() {
                println!("no places may be taken now");
            } else {
                for o in &offers {
                    println!("{}", output::offer(o));
                }
            }
        }
        Cmd::Take { id, publication } => {
            let id = parse_id(&id)?;
            let (mut store, now) = open_now(data)?;
            let recs = exec(
                &mut store,
                now,
                Command::Take {
                    app: id,
                    publication,
                },
                None,
            )?;
            let rid = recs.iter().find_map(|r| match &r.event {
                kezek_engine::Event::ReferralIssued { referral, .. } => Some(*referral),
                _ => None,
            });
            let r = rid
                .and_then(|r| view::referral_view(store.state(), r))
                .ok_or_else(|| invalid("internal", "no referral"))?;
            if json {
                print_json(&r);
            } else {
                println!(
                    "referral {} to {} «{}» · valid until {} · recall until {}",
                    r.id,
                    r.kindergarten,
                    r.kindergarten_name,
                    output::local(r.valid_until),
                    output::local(r.recall_until)
                );
            }
        }
        Cmd::Recall { id, reason } => {
            let id = parse_id(&id)?;
            let (mut store, now) = open_now(data)?;
            exec(&mut store, now, Command::Recall { app: id }, Some(reason))?;
            show_card(&store, id, json)?;
        }
        Cmd::AttachApplicant {
            id,
            iin,
            applicant_name,
            reason,
        } => {
            let id = parse_id(&id)?;
            let (mut store, now) = open_now(data)?;
            let command = Command::ChangeApplicant {
                app: id,
                applicant_iin: iin,
                applicant_name,
            };
            exec(&mut store, now, command, Some(reason))?;
            show_card(&store, id, json)?;
        }
        Cmd::Extend { id } => {
            let id = parse_id(&id)?;
            let (mut store, now) = open_now(data)?;
            exec(&mut store, now, Command::Extend { app: id }, None)?;
            show_card(&store, id, json)?;
        }
        Cmd::Enroll { id } => {
            let id = parse_id(&id)?;
            let (mut store, now) = open_now(data)?;
            exec(&mut store, now, Command::Enroll { app: id }, None)?;
            if json {
                show_card(&store, id, true)?;
            } else {
                println!("{id} enrolled");
            }
        }
        Cmd::CancelBenefit { id, reason } => {
            let id = parse_id(&id)?;
            let (mut store, now) = open_now(data)?;
            exec(
                &mut store,
                now,
                Command::CancelBenefit { app: id },
                Some(reason),
            )?;
            if json {
                show_card(&store, id, true)?;
            } else {
                println!("{id}: benefit cancelled; now in the general queue");
            }
        }
        Cmd::Withdraw { id, reason } => {
            let id = parse_id(&id)?;
            let (mut store, now) = open_now(data)?;
            exec(&mut store, now, Command::Withdraw { app: id }, Some(reason))?;
            if json {
                show_card(&store, id, true)?;
            } else {
                println!("{id} withdrawn");
            }
        }
        Cmd::ChangeCategory {
            id,
            category,
            reason,
        } => {
            let id = parse_id(&id)?;
            let (mut store, now) = open_now(data)?;
            exec(
                &mut store,
                now,
                Command::ChangeCategory { app: id, category },
                Some(reason),
            )?;
            show_card(&store, id, json)?;
        }
        Cmd::Tick { to, by } => {
            let mut store = open(data)?;
            let from = store.config().manual_now;
            let to = match (to, by) {
                (Some(t), _) => parse_time("--to", &t)?,
                (None, Some(d)) => {
                    let d = parse_duration(&d)
                        .map_err(|e| invalid("invalid_duration", format!("--by: {e}")))?;
                    from.checked_add(d)
                        .map_err(|e| invalid("invalid_duration", format!("--by: {e}")))?
                }
                (None, None) => {
                    return Err(Failure {
                        exit: 2,
                        code: "usage".into(),
                        message: "--to or --by".into(),
                    })
                }
            };
            let recs = store.tick_to(to)?;
            if json {
                let events: Vec<_> = recs
                    .iter()
                    .map(|r| json!({"seq": r.seq, "at": r.at, "event": r.event.name(), "application": r.event.app().map(|a| a.to_string())}))
                    .collect();
                print_json(&json!({"now": to, "events": events}));
                return Ok(());
            }
            println!("clock at {} · {} event(s)", output::local(to), recs.len());
            for r in &recs {
                println!(
                    "  {}  {}{}",
                    output::local(r.at),
                    r.event.name(),
                    r.event.app().map(|a| format!(" {a}")).unwrap_or_default()
                );
            }
        }
        Cmd::Pki { what } => crate::pki_cli::run(data, what, json)?,
        Cmd::Rules { what } => match what {
            RulesCmd::Check { dir } => {
                let files = read_rules(&dir)?;
                let rules = RuleSet::compile(&files)
                    .map_err(|e| invalid("rules_invalid", e.to_string()))?;
                if json {
                    print_json(
                        &json!({"ok": true, "files": files.keys().collect::<Vec<_>>(), "categories": rules.params().categories, "hash": rules.hash()}),
                    );
                    return Ok(());
                }
                println!(
                    "ok: {} file(s), {} categories, version hash {}",
                    files.len(),
                    rules.params().categories.len(),
                    &rules.hash()[..16]
                );
            }
            RulesCmd::Activate { dir, reason } => {
                let files = read_rules(&dir)?;
                let (mut store, now) = open_now(data)?;
                let started = Instant::now();
                exec(
                    &mut store,
                    now,
                    Command::ActivateRules { files },
                    Some(reason),
                )?;
                if json {
                    let v = store.state().data.rules_versions.last();
                    print_json(
                        &json!({"version": store.state().rules_version(), "hash": v.map(|v| v.hash.clone()), "applications": store.state().data.apps.len()}),
                    );
                    return Ok(());
                }
                println!(
                    "rules version {} active ({} applications re-ranked in {:.2} s)",
                    store.state().rules_version(),
                    store.state().data.apps.len(),
                    started.elapsed().as_secs_f64()
                );
            }
            RulesCmd::Show {} => {
                let store = open(data)?;
                let state = store.state();
                let v = state
                    .data
                    .rules_versions
                    .last()
                    .ok_or_else(|| invalid("no_rules", "no rules"))?;
                let rules = state
                    .rules()
                    .ok_or_else(|| invalid("no_rules", "no rules"))?;
                let p = rules.params();
                if json {
                    print_json(&json!({
                        "version": v.version, "hash": v.hash, "activated_at": v.activated_at, "actor": v.actor.to_string(), "reason": v.reason,
                        "categories": p.categories, "recall_window_hours": p.recall_window_hours,
                        "referral_validity_working_days": p.referral_validity_working_days, "extension_days": p.extension_days,
                        "max_extensions": p.max_extensions, "stop_list_days": p.stop_list_days,
                        "priority_phase_working_days": p.priority_phase_working_days, "free_access_time": p.free_access_time.to_string(),
                        "holidays": p.holidays.len(), "files": v.files.keys().collect::<Vec<_>>(),
                        "history": state.data.rules_versions.iter().map(|v| json!({"version": v.version, "hash": v.hash, "activated_at": v.activated_at, "actor": v.actor.to_string(), "reason": v.reason})).collect::<Vec<_>>(),
                    }));
                } else {
                    println!(
                        "rules version {} · {} · activated {} by {}",
                        v.version,
                        &v.hash[..16],
                        output::local(v.activated_at),
                        v.actor
                    );
                    for c in &p.categories {
                        println!("  {:>2}. {:<16} {} / {}", c.rank, c.code, c.kk, c.ru);
                    }
                    println!("  recall window {} h · referral valid {} working days · extension {} days ×{} · stop-list {} days",
                        p.recall_window_hours, p.referral_validity_working_days, p.extension_days, p.max_extensions, p.stop_list_days);
                    println!(
                        "  priority phase {} working days · free access at {} · {} holidays",
                        p.priority_phase_working_days,
                        p.free_access_time,
                        p.holidays.len()
                    );
                }
            }
        },
        Cmd::Audit {
            what: AuditCmd::Verify {},
        } => {
            let store = open(data)?;
            let report = store.verify()?;
            if json {
                // One JSON value on stdout, success or not: the report says what failed.
                print_json(
                    &json!({"ok": report.ok(), "report": report, "error": (!report.ok()).then(|| json!({"code": "audit_failed", "message": "the audit found problems"}))}),
                );
            } else {
                println!(
                    "{} events · chain {} · replay {} · snapshot {} · invariants {}",
                    report.events,
                    if report.chain_ok { "ok" } else { "BROKEN" },
                    if report.replay_matches {
                        "matches"
                    } else {
                        "DIFFERS"
                    },
                    if report.snapshot_matches {
                        "matches"
                    } else {
                        "DIFFERS"
                    },
                    if report.invariants_ok {
                        "hold"
                    } else {
                        "VIOLATED"
                    }
                );
                for p in &report.problems {
                    println!("  {p}");
                }
            }
            if !report.ok() {
                return Err(Failure {
                    exit: 1,
                    code: "audit_failed".into(),
                    message: "the audit found problems".into(),
                });
            }
        }
        Cmd::Serve { listen } => crate::web::serve(data, &listen)?,
        Cmd::Admin { what } => crate::web::admin::run(data, what)?,
        Cmd::Simulate {
            scenario,
            rules,
            baseline,
            runs,
            out,
        } => crate::sim_cli::run(
            data,
            crate::sim_cli::Args {
                scenario,
                rules,
                baseline,
                runs,
                out,
            },
            json,
        )?,
    }
    Ok(())
}

fn wants_json(args: &[String]) -> bool {
    args.iter().any(|a| a == "--json")
}

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    // Die quietly on a closed pipe (`kezek queue ... | head`) as command-line tools do,
    // instead of panicking inside println!.
    // Not for `serve`: a server must survive a client that hangs up.
    let args: Vec<String> = std::env::args().collect();
    #[cfg(unix)]
    if !args.iter().any(|a| a == "serve") {
        // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let json = wants_json(&args);
    let cli = match Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => {
            let code = e.exit_code();
            let _ = e.print();
            return code;
        }
    };
    match run(cli) {
        Ok(()) => 0,
        Err(f) => {
            if json && f.code == "audit_failed" {
                // The report, with its error, is already on stdout.
            } else if json {
                println!(
                    "{}",
                    json!({"error": {"code": f.code, "message": f.message}})
                );
            } else {
                eprintln!("error[{}]: {}", f.code, f.message);
            }
            f.exit
        }
    }
}
