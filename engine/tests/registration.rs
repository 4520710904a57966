//! Registration checks that need no state: ages, cohorts from the rules, names; and a
//! refused `init` leaves nothing on disk.

use jiff::civil::date;
use jiff::Timestamp;
use kezek_engine::iin::Iin;
use kezek_engine::{Actor, ClockMode, Command, Core, RegisterInput, Request, RuleSet, Store};

fn now() -> Timestamp {
    "2026-12-02T05:00:00Z".parse().expect("valid instant")
}

fn core() -> Core {
    let mut core = Core::default();
    let req = Request {
        command: Command::ActivateRules {
            files: RuleSet::default_files(),
        },
        actor: Actor::System,
        reason: Some("test".into()),
    };
    core.execute(&req, now()).expect("default rules");
    core
}

fn register(
    core: &mut Core,
    birth: jiff::civil::Date,
    applicant_birth: jiff::civil::Date,
) -> kezek_engine::Result<()> {
    let req = Request {
        command: Command::Register(Box::new(RegisterInput {
            child_iin: Iin::make_valid(birth, false, 100).to_string(),
            birth_date: birth,
            applicant_iin: Iin::make_valid(applicant_birth, true, 200).to_string(),
            ..Default::default()
        })),
        actor: Actor::System,
        reason: None,
    };
    core.execute(&req, now()).map(|_| ())
}

#[test]
fn a_child_of_school_age_or_a_child_applicant_is_refused() {
    let mut c = core();
    let before = c.state.digest();
    let err = register(&mut c, date(2019, 12, 1), date(1990, 1, 1)).expect_err("7 years old");
    assert_eq!(err.code, "invalid_date");
    assert!(
        err.message.contains("birth date") && err.message.contains("under 7"),
        "{}",
        err.message
    );
    let err = register(&mut c, date(2022, 1, 1), date(2012, 1, 1)).expect_err("applicant is 14");
    assert_eq!(err.code, "invalid_iin");
    assert!(err.message.contains("applicant IIN"), "{}", err.message);
    assert_eq!(c.state.digest(), before);
    register(&mut c, date(2019, 12, 3), date(1990, 1, 1)).expect("6 years old registers");
}

#[test]
fn a_cohort_outside_the_birth_years_is_refused() {
    let mut files = RuleSet::default_files();
    files.insert(
        "order.rhai".into(),
        "fn order_key(app) { [app.category_rank, app.registered_at] }\nfn cohort(app) { if app.birth_year == 2022 { -5 } else { app.birth_year } }\n".into(),
    );
    let mut c = core();
    register(&mut c, date(2022, 3, 3), date(1990, 1, 1)).expect("registers");
    let err = c
        .execute(
            &Request {
                command: Command::ActivateRules {
                    files: files.clone(),
                },
                actor: Actor::System,
                reason: Some("x".into()),
            },
            now(),
        )
        .expect_err("cohort -5 refused");
    assert_eq!(err.code, "rule_failed");
    assert!(err.message.contains("-5"), "{}", err.message);
}

#[test]
fn a_refused_init_leaves_no_store_behind() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("store");
    let mut files = RuleSet::default_files();
    files.insert("order.rhai".into(), "fn order_key(app) { [1".into());
    let err = Store::init(&path, &files, ClockMode::Manual, now(), Actor::System)
        .err()
        .expect("broken rules refused");
    assert_eq!(err.code, "rules_invalid");
    assert!(!path.exists(), "nothing was created");
    // A clock before 1970 is a valid manual clock.
    let early: Timestamp = "1960-01-01T00:00:00Z".parse().expect("valid");
    Store::init(
        &path,
        &RuleSet::default_files(),
        ClockMode::Manual,
        early,
        Actor::System,
    )
    .expect("init at 1960");
    // A folder with other files is refused.
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).expect("mkdir");
    std::fs::write(other.join("notes.txt"), "x").expect("write");
    let err = Store::init(
        &other,
        &RuleSet::default_files(),
        ClockMode::Manual,
        now(),
        Actor::System,
    )
    .err()
    .expect("refused");
    assert_eq!(err.code, "folder_not_empty");
    let file = dir.path().join("file");
    std::fs::write(&file, "x").expect("write");
    let err = Store::init(
        &file,
        &RuleSet::default_files(),
        ClockMode::Manual,
        now(),
        Actor::System,
    )
    .err()
    .expect("refused");
    assert_eq!(err.code, "not_a_directory");
}
