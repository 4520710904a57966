//! Activating rules re-ranks every application once, on every core, with the keys its
//! decision computed: the live state must equal a replay of the same records (which
//! re-ranks on its own), and a rule that fails reports the first failing application in
//! id order, whatever the threads. 40,000 applications: more than two parallel chunks.

use kezek_benches::{bench_now, rows};
use kezek_engine::state::State;
use kezek_engine::{Actor, Command, Core, EventRecord, Request, RuleSet};

fn activate(
    core: &mut Core,
    files: std::collections::BTreeMap<String, String>,
) -> kezek_engine::error::Result<Vec<EventRecord>> {
    core.execute(
        &Request {
            command: Command::ActivateRules { files },
            actor: Actor::System,
            reason: Some("test".into()),
        },
        bench_now(),
    )
}

fn city() -> (Core, Vec<EventRecord>) {
    let mut core = Core::default();
    let mut log = activate(&mut core, RuleSet::default_files()).expect("default rules");
    log.extend(
        core.import_applications(&rows(40_000, 11, 100_000), &Actor::System, bench_now())
            .expect("generated rows import"),
    );
    (core, log)
}

/// Registration time first, category ignored: moves almost everyone.
fn fcfs() -> std::collections::BTreeMap<String, String> {
    let mut files = RuleSet::default_files();
    let order = files.get_mut("order.rhai").expect("order.rhai");
    *order = order.replace(
        "[app.category_rank, app.registered_at]",
        "[app.registered_at]",
    );
    assert!(order.contains("[app.registered_at]"));
    files
}

/// The keys of the 2021 queue, in queue order.
fn queue_2021(state: &State) -> Vec<kezek_engine::model::OrderKey> {
    state.queue(2021).expect("cohort").iter().copied().collect()
}

#[test]
fn an_activation_leaves_the_state_a_replay_of_its_records_gives() {
    let (mut core, mut log) = city();
    let before = queue_2021(&core.state);
    log.extend(activate(&mut core, fcfs()).expect("fcfs activates"));
    let after = queue_2021(&core.state);
    assert_eq!(before.len(), after.len());
    assert_ne!(before, after, "the new order moved applications");
    // The queue is in the new keys' order: registration instant first.
    let times: Vec<_> = after
        .iter()
        .map(|k| core.state.app(k.app).expect("queued app").registered_at)
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "queue not in registration order"
    );
    core.state.check_invariants().expect("invariants");
    let mut replay = State::default();
    for rec in &log {
        replay.apply(rec).expect("replay");
    }
    assert_eq!(replay.digest(), core.state.digest());
    let replayed = queue_2021(&replay);
    assert_eq!(replayed, after);
}

#[test]
fn a_failing_rule_names_the_first_failing_application_and_changes_nothing() {
    let (mut core, _) = city();
    let digest = core.state.digest();
    let ids: Vec<String> = core
        .state
        .data
        .apps
        .keys()
        .map(|id| id.to_string())
        .collect();
    // One early and one late application (different parallel chunks) make the rule throw.
    let (first, late) = (&ids[1_000], &ids[35_000]);
    let mut files = RuleSet::default_files();
    let order = files.get_mut("order.rhai").expect("order.rhai");
    *order = order.replace(
        "fn order_key(app) {",
        &format!(
            "fn order_key(app) {{\n    if app.id == \"{first}\" || app.id == \"{late}\" {{ throw \"refused \" + app.id; }}"
        ),
    );
    for _ in 0..3 {
        let err = activate(&mut core, files.clone()).expect_err("the rule throws");
        assert!(err.message.contains(first.as_str()), "{}", err.message);
        assert!(!err.message.contains(late.as_str()), "{}", err.message);
        assert_eq!(
            core.state.digest(),
            digest,
            "a refused activation changed the state"
        );
    }
}
