//! Browser tests of the admin console in real headless Chromium (Debian `chromium` and
//! `chromium-driver`; `.ci/run` installs them): log in, find the seed's application,
//! recall its referral on the parent's behalf through the confirmation dialog and see its
//! position restored; draft a rule change, check it, see its impact, activate it, see the
//! version history; run a console query. Each main page is saved as a screenshot under
//! `CARGO_TARGET_TMPDIR/screenshots/`.
//!
//! One test drives one browser through the whole story (Chromium starts once: it is the
//! slow part on a shared machine).

#[path = "../common/mod.rs"]
mod common;
mod harness;

use common::{adult_iin, child_iin, Kezek};
use harness::{serve, Browser};
use jiff::civil::date;
use kezek_engine::iin::Iin;

const SEED_APP: &str = "UO.2018.489862.1";
const KG: &str = "DDO-157";
const KG_NAME: &str = "ГККП «Ясли-сад № 157»";

/// The seed's story up to the referral (as in seed_story.rs): a store with a manual clock
/// on 3 May 2019, places published at `ГККП «Ясли-сад № 157»`, the first in the queue and
/// then the seed's application have taken places. Returns the seed's queue number just
/// before its referral.
fn seed_store() -> (Kezek, u64) {
    let k = Kezek::init("2019-05-02T03:00:00Z");
    k.import_kindergartens(&format!(
        "id,name,district,cohort,language,capacity\n\
         {KG},{KG_NAME},Алмалинский,2014,ru,25\n\
         {KG},{KG_NAME},Алмалинский,2014,kk,25\n"
    ));
    let seed_child = Iin::make_valid(date(2014, 2, 28), false, 4711);
    let seed_applicant = Iin::make_valid(date(1988, 10, 20), true, 1234);
    let mut journal = String::from(
        "Номер заявления,ИИН ребенка,Дата рождения,Дата и время регистрации,Вид льготы,Статус,ИИН заявителя,Язык обучения\n",
    );
    journal.push_str(&format!(
        "{SEED_APP},{seed_child},28.02.2014,24.08.2018 10:16:03,Без льготы,В очереди,{seed_applicant},русский\n"
    ));
    let others = [
        (
            "UO.2017.100001.1",
            date(2014, 1, 5),
            1,
            "10.03.2017 09:00:00",
            "Без льготы",
        ),
        (
            "UO.2018.300500.1",
            date(2014, 6, 1),
            2,
            "01.02.2018 10:00:00",
            "Без льготы",
        ),
        (
            "UO.2018.489900.1",
            date(2014, 4, 4),
            4,
            "24.08.2018 10:16:03",
            "Без льготы",
        ),
        (
            "UO.2018.500000.1",
            date(2014, 7, 7),
            5,
            "15.09.2018 11:11:11",
            "Без льготы",
        ),
        (
            "UO.2018.600000.1",
            date(2014, 5, 5),
            7,
            "20.11.2018 12:00:00",
            "Дети из многодетных семей",
        ),
        (
            "UO.2019.20.1",
            date(2014, 10, 10),
            9,
            "01.03.2019 10:00:00",
            "Дети военнослужащих",
        ),
    ];
    for (no, birth, serial, registered, category) in &others {
        journal.push_str(&format!(
            "{no},{},{},{registered},\"{category}\",В очереди,{},ru\n",
            child_iin(*birth, *serial),
            birth.strftime("%d.%m.%Y"),
            adult_iin(*serial)
        ));
    }
    k.ok(&["import", "applications", &k.write("journal.csv", &journal)]);
    k.ok(&["tick", "--to", "2019-05-03T03:00:00Z"]);
    let p = k.json(&[
        "publish",
        "--kindergarten",
        KG,
        "--cohort",
        "2014",
        "--language",
        "ru",
        "--places",
        "8",
    ]);
    let publication = p["id"].as_u64().expect("publication id").to_string();
    k.ok(&["tick", "--by", "30m"]);
    k.ok(&["take", "UO.2019.20.1", "--publication", &publication]);
    k.ok(&["tick", "--by", "1h"]);
    let before = k.card(SEED_APP)["queue_position"]
        .as_u64()
        .expect("a queue number before the referral");
    k.ok(&["take", SEED_APP, "--publication", &publication]);
    // The next morning, within the recall window.
    k.ok(&["tick", "--by", "20h"]);
    (k, before)
}

/// The seed's order rule changed to registration time alone (no benefit ranks): the seed's
/// application moves up past the large family's, which registered later.
const ORDER_BY_TIME: &str =
    "fn order_key(app) {\n[app.registered_at]\n}\nfn cohort(app) {\napp.birth_year\n}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_real_browser() {
    let (k, position_before) = seed_store();
    let server = serve(&k);
    let b = Browser::start().await;
    let base = server.base.clone();

    // The public page needs no login and shows no personal data.
    b.goto(&format!("{base}/public")).await;
    let public = b.text("main").await;
    assert!(public.contains("2014"), "{public}");
    assert!(
        !public.contains(SEED_APP),
        "the public page shows an application number"
    );
    b.shot("public").await;

    // Everything else asks for a login first.
    b.goto(&format!("{base}/")).await;
    b.el("#login-form").await;
    b.shot("login").await;
    b.fill("#username", "admin").await;
    b.fill("#password", "not the password").await;
    b.click("#login-submit").await;
    b.el("#login-error").await;
    b.fill("#username", "admin").await;
    b.fill("#password", &server.password).await;
    b.click("#login-submit").await;
    b.el("[data-test=today]").await;
    b.el("[data-test=chart]").await;
    b.shot("overview").await;

    recall_the_seed(&b, &base, position_before).await;
    change_the_order(&b, &base).await;
    console_query(&b, &base).await;

    for (page, shot) in [
        ("/kindergartens", "kindergartens"),
        ("/audit", "audit"),
        ("/?lang=kk", "overview-kk"),
    ] {
        b.goto(&format!("{base}{page}")).await;
        b.el("main").await;
        b.shot(shot).await;
    }
    // The audit log holds the recall and the activation, with their reasons.
    b.goto(&format!("{base}/audit")).await;
    b.wait_text("main", "Далеко от дома").await;
    b.wait_text("main", "По времени регистрации").await;

    b.close().await;
    drop(server);
    // The store the server wrote is whole: the chain verifies, replay matches.
    k.verify();
}

/// Finds the seed's application, recalls its referral on the parent's behalf through the
/// confirmation dialog (which shows the seed's warning in Kazakh and Russian), and sees
/// the position it had before the referral.
async fn recall_the_seed(b: &Browser, base: &str, position_before: u64) {
    b.goto(&format!("{base}/applications")).await;
    b.fill("#search-q", SEED_APP).await;
    b.click("#search-submit").await;
    if b.client
        .find(fantoccini::Locator::Css("#card"))
        .await
        .is_err()
    {
        b.click("[data-test=result-link]").await;
    }
    let status = b.el("#status").await;
    assert_eq!(
        status
            .attr("data-status")
            .await
            .expect("status attribute")
            .as_deref(),
        Some("referral_issued")
    );
    assert_eq!(b.text("#queue-position").await, "—");
    b.shot("card-with-referral").await;

    b.click("#open-recall").await;
    let kk = b.text("[data-test=recall-warning-kk]").await;
    let ru = b.text("[data-test=recall-warning-ru]").await;
    assert!(
        !kk.trim().is_empty() && !ru.trim().is_empty(),
        "the warning is shown"
    );
    b.fill("#dlg-recall textarea[name=reason]", "Далеко от дома")
        .await;
    b.shot("recall-dialog").await;
    b.click("#confirm-recall").await;

    let deadline = std::time::Instant::now() + harness::WAIT;
    loop {
        let s = b.el("#status").await;
        if s.attr("data-status").await.ok().flatten().as_deref() == Some("queued") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the card never showed queued"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(
        b.text("#queue-position").await,
        position_before.to_string(),
        "the recalled application is back where it was"
    );
    // Locked out of the priority phase until free access.
    assert_ne!(b.text("[data-test=locked-until]").await.trim(), "—");
    b.shot("card-recalled").await;
}

/// Drafts a rule change: first a broken one (the check names file and line), then the
/// order by registration time alone; sees its impact, activates it, sees two versions.
async fn change_the_order(b: &Browser, base: &str) {
    b.goto(&format!("{base}/rules")).await;
    b.el("[data-test=version-row]").await;
    b.shot("rules").await;
    b.click("#new-draft").await;
    b.el("#draft-form").await;

    let order_editor = "textarea[data-test=file-editor][data-file='order.rhai']";
    b.click("[data-test=file-tab][data-file='order.rhai']")
        .await;
    b.fill(order_editor, "fn order_key(app) {\n[app.registered_at\n}\n")
        .await;
    b.click("#check").await;
    let err = b.el("[data-test=check-error]").await;
    assert_eq!(
        err.attr("data-file").await.ok().flatten().as_deref(),
        Some("order.rhai")
    );
    let line = err
        .attr("data-line")
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    assert!(!line.is_empty(), "the check names the line");
    b.shot("rules-check-error").await;

    b.click("[data-test=file-tab][data-file='order.rhai']")
        .await;
    b.fill(order_editor, ORDER_BY_TIME).await;
    b.click("#check").await;
    b.el("[data-test=check-ok]").await;

    b.click("#impact").await;
    let moved: u64 = b
        .text("#impact-moved")
        .await
        .trim()
        .parse()
        .expect("a count of moved applications");
    assert!(moved >= 2, "ordering by time alone moves someone: {moved}");
    // The page comes back showing the file being edited, not the first one.
    let tab = b.el("[data-test=file-tab].active").await;
    assert_eq!(
        tab.attr("data-file").await.ok().flatten().as_deref(),
        Some("order.rhai")
    );
    let table = b.text("#impact-table").await;
    assert!(table.contains(SEED_APP), "{table}");
    b.client
        .execute(
            "document.getElementById('impact-result').scrollIntoView()",
            vec![],
        )
        .await
        .expect("scroll to the impact");
    b.shot("rules-impact").await;

    b.click("#open-activate").await;
    b.fill(
        "#dlg-activate textarea[name=reason]",
        "По времени регистрации",
    )
    .await;
    b.click("#confirm-activate").await;
    let deadline = std::time::Instant::now() + harness::WAIT;
    loop {
        b.goto(&format!("{base}/rules")).await;
        let rows = b
            .client
            .find_all(fantoccini::Locator::Css("[data-test=version-row]"))
            .await
            .expect("version rows");
        if rows.len() >= 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no second version");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    b.wait_text("main", "По времени регистрации").await;
    b.shot("rules-history").await;

    // The seed's application registered before the large family's: it is now ahead.
    b.goto(&format!("{base}/applications/{SEED_APP}")).await;
    assert_eq!(b.text("#queue-position").await, "3");
}

async fn console_query(b: &Browser, base: &str) {
    b.goto(&format!("{base}/console")).await;
    b.fill("#console-script", "queue(2014, 1, 10)").await;
    b.click("#console-run").await;
    b.wait_text("#console-table", SEED_APP).await;
    // The application number leads each row.
    let first = b.text("#console-table thead th:nth-child(2)").await;
    assert_eq!(first, "id");
    b.shot("console").await;
}
