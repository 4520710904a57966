//! A rule that fails while a command runs refuses that command and changes nothing; a
//! rule set that fails on existing applications is never activated.

use jiff::civil::date;
use jiff::Timestamp;
use kezek_engine::iin::Iin;
use kezek_engine::{Actor, Command, Core, RegisterInput, Request, RuleSet};

fn now() -> Timestamp {
    "2026-12-02T05:00:00Z".parse().expect("valid instant")
}

fn req(command: Command, reason: Option<&str>) -> Request {
    Request {
        command,
        actor: Actor::Operator("test".into()),
        reason: reason.map(Into::into),
    }
}

fn register(year: i16, serial: u32) -> Command {
    let birth = date(year, 3, 1);
    Command::Register(Box::new(RegisterInput {
        child_iin: Iin::make_valid(birth, false, serial).to_string(),
        birth_date: birth,
        applicant_iin: Iin::make_valid(date(1990, 1, 1), true, serial).to_string(),
        ..Default::default()
    }))
}

/// The default rules with `order_key` failing for children born in `year`.
fn failing_for(year: i32) -> std::collections::BTreeMap<String, String> {
    let mut files = RuleSet::default_files();
    files.insert(
        "order.rhai".into(),
        format!(
            "fn order_key(app) {{ if app.birth_year == {year} {{ throw \"no key for {year}\"; }} [app.category_rank, app.registered_at] }}\n\
             fn cohort(app) {{ app.birth_year }}\n"
        ),
    );
    files
}

fn core_with(files: std::collections::BTreeMap<String, String>) -> Core {
    let mut core = Core::default();
    core.execute(
        &req(Command::ActivateRules { files }, Some("test rules")),
        now(),
    )
    .expect("rules activate");
    core
}

#[test]
fn a_rule_failing_during_a_command_refuses_it_and_changes_nothing() {
    let mut core = core_with(failing_for(2020));
    core.execute(&req(register(2021, 10), None), now())
        .expect("2021 registers");
    let before = core.state.digest();
    let err = core
        .execute(&req(register(2020, 11), None), now())
        .expect_err("2020 is refused");
    assert_eq!(err.code, "rule_failed");
    assert!(
        err.message.contains("no key for 2020"),
        "message names the failure: {}",
        err.message
    );
    assert!(
        err.message.contains("order.rhai"),
        "message names the file: {}",
        err.message
    );
    assert_eq!(
        core.state.digest(),
        before,
        "a refused command changes nothing"
    );
    assert_eq!(core.state.data.apps.len(), 1);
}

#[test]
fn a_rule_set_failing_on_existing_applications_is_not_activated() {
    let mut core = core_with(RuleSet::default_files());
    core.execute(&req(register(2020, 20), None), now())
        .expect("registers");
    core.execute(&req(register(2021, 21), None), now())
        .expect("registers");
    let before = core.state.digest();
    let version = core.state.rules_version();
    let err = core
        .execute(
            &req(
                Command::ActivateRules {
                    files: failing_for(2020),
                },
                Some("try"),
            ),
            now(),
        )
        .expect_err("refused");
    assert_eq!(err.code, "rule_failed");
    assert_eq!(core.state.rules_version(), version);
    assert_eq!(core.state.digest(), before);
}

#[test]
fn a_rule_set_dropping_a_category_in_use_is_not_activated() {
    let mut core = core_with(RuleSet::default_files());
    let birth = date(2021, 5, 5);
    let cmd = Command::Register(Box::new(RegisterInput {
        child_iin: Iin::make_valid(birth, true, 30).to_string(),
        birth_date: birth,
        applicant_iin: Iin::make_valid(date(1991, 1, 1), true, 30).to_string(),
        category: Some("teacher".into()),
        ..Default::default()
    }));
    core.execute(&req(cmd, None), now()).expect("registers");
    let mut files = RuleSet::default_files();
    let cats = files["categories.rhai"].clone();
    // Rename the `teacher` category: the code in use disappears from the rules.
    let without = cats.replace("code: \"teacher\"", "code: \"educator\"");
    assert_ne!(without, cats, "the default categories define teacher");
    files.insert("categories.rhai".into(), without);
    let before = core.state.digest();
    let err = core
        .execute(
            &req(Command::ActivateRules { files }, Some("drop teacher")),
            now(),
        )
        .expect_err("refused");
    assert!(
        err.code == "category_in_use" || err.code == "rules_invalid",
        "unexpected code {}: {}",
        err.code,
        err.message
    );
    assert_eq!(core.state.digest(), before);
}
