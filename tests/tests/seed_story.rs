//! The seed's own story (domain.md section 1), end to end through the command line with a
//! manual clock: application `UO.2018.489862.1`, a child born 28 February 2014, registered
//! on 24 August 2018 at 10:16:03 Almaty time without a benefit, takes a place at
//! `ГККП «Ясли-сад № 157»` on 3 May 2019 and recalls the referral the next morning. The
//! child must come back to exactly the position it had, and so must everyone else.

mod common;

use common::{adult_iin, child_iin, Kezek};
use jiff::civil::date;
use kezek_engine::iin::Iin;
use serde_json::{json, Value};

const SEED_APP: &str = "UO.2018.489862.1";
const KG: &str = "DDO-157";
const KG_NAME: &str = "ГККП «Ясли-сад № 157»";
/// 3 May 2019 was a Friday. The priority phase lasts three working days: Monday 6 May,
/// (7 May is a holiday), Wednesday 8 May, (9 May is a holiday), Friday 10 May; free access
/// opens at 06:57 local (UTC+6 in 2019).
const FREE_ACCESS: &str = "2019-05-10T00:57:00Z";

fn history(card: &Value) -> Vec<(String, Option<String>)> {
    card["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["event"].as_str().unwrap().to_string(),
                h["reason"].as_str().map(str::to_string),
            )
        })
        .collect()
}

#[test]
fn the_recalled_referral_of_uo_2018_489862_1() {
    // 2 May 2019, 09:00 in Almaty.
    let k = Kezek::init("2019-05-02T03:00:00Z");
    k.import_kindergartens(&format!(
        "id,name,district,cohort,language,capacity\n\
         {KG},{KG_NAME},Алмалинский,2014,ru,25\n\
         {KG},{KG_NAME},Алмалинский,2014,kk,25\n\
         DDO-158,ГККП «Ясли-сад № 158»,Бостандыкский,2015,ru,20\n"
    ));

    // The journal of the existing system, with Russian headers. The seed's child is born
    // 28.02.2014; its IIN carries that date.
    let seed_child = Iin::make_valid(date(2014, 2, 28), false, 4711);
    let seed_applicant = Iin::make_valid(date(1988, 10, 20), true, 1234);
    let mut journal = String::from(
        "Номер заявления,ИИН ребенка,Дата рождения,Дата и время регистрации,Вид льготы,Статус,ИИН заявителя,Язык обучения\n",
    );
    journal.push_str(&format!("{SEED_APP},{seed_child},28.02.2014,24.08.2018 10:16:03,Без льготы,В очереди,{seed_applicant},русский\n"));
    // (number, birth date, serial, registered (local), category, language)
    let others = [
        ("UO.2017.100001.1", date(2014, 1, 5), 1, "10.03.2017 09:00:00", "Без льготы", "ru"),
        ("UO.2018.300500.1", date(2014, 6, 1), 2, "01.02.2018 10:00:00", "Без льготы", "ru"),
        ("UO.2018.470000.1", date(2014, 3, 3), 3, "01.08.2018 15:20:00", "Без льготы", "kk"),
        // Registered at the very same second as the seed's: the number breaks the tie.
        ("UO.2018.489900.1", date(2014, 4, 4), 4, "24.08.2018 10:16:03", "Без льготы", "ru"),
        ("UO.2018.500000.1", date(2014, 7, 7), 5, "15.09.2018 11:11:11", "Без льготы", "ru"),
        ("UO.2019.30.1", date(2014, 9, 9), 6, "01.02.2019 08:00:00", "Без льготы", "kk"),
        // Beneficiaries registered later go ahead.
        ("UO.2018.600000.1", date(2014, 5, 5), 7, "20.11.2018 12:00:00", "Дети с инвалидностью или особыми образовательными потребностями, дети родителей с инвалидностью", "ru"),
        ("UO.2019.10.1", date(2014, 8, 8), 8, "10.01.2019 09:30:00", "Дети из многодетных семей", "kk"),
        ("UO.2019.20.1", date(2014, 10, 10), 9, "01.03.2019 10:00:00", "Дети военнослужащих", "ru"),
        // Another cohort.
        ("UO.2018.480000.1", date(2015, 2, 2), 10, "20.08.2018 10:00:00", "Без льготы", "ru"),
        ("UO.2019.40.1", date(2015, 3, 3), 11, "02.03.2019 10:00:00", "Дети педагогов", "ru"),
    ];
    for (no, birth, serial, registered, category, lang) in &others {
        journal.push_str(&format!(
            "{no},{},{},{registered},\"{category}\",В очереди,{},{lang}\n",
            child_iin(*birth, *serial),
            birth.strftime("%d.%m.%Y"),
            adult_iin(*serial)
        ));
    }
    let out = k.ok(&["import", "applications", &k.write("journal.csv", &journal)]);
    assert!(out.starts_with("imported 12 applications"), "{out}");

    let expected_order = [
        "UO.2019.20.1",     // military
        "UO.2018.600000.1", // disability
        "UO.2019.10.1",     // large family
        "UO.2017.100001.1",
        "UO.2018.300500.1",
        "UO.2018.470000.1",
        SEED_APP,
        "UO.2018.489900.1",
        "UO.2018.500000.1",
        "UO.2019.30.1",
    ];
    assert_eq!(k.queue_ids(2014), expected_order);
    assert_eq!(k.queue_ids(2015), ["UO.2019.40.1", "UO.2018.480000.1"]);

    // The card as the seed shows it.
    let c = k.card(SEED_APP);
    assert_eq!(c["id"], SEED_APP);
    assert_eq!(c["child_iin"], seed_child.as_str());
    assert_eq!(c["birth_date"], "2014-02-28");
    assert_eq!(c["registered_at"], "2018-08-24T04:16:03Z");
    assert_eq!(c["category"], "general");
    assert_eq!(c["category_position"], 0);
    assert_eq!(c["cohort"], 2014);
    assert_eq!(c["language"], "ru");
    assert_eq!(c["status"], "queued");
    assert_eq!(c["queue_position"], 7);
    let text = k.ok(&["show", SEED_APP]);
    assert!(text.contains("2018-08-24 10:16:03 (UTC+06:00)"), "{text}");

    // 3 May 2019, 09:00: the kindergarten publishes eight places for 2014, in Russian.
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
    assert_eq!(p["phase"], "priority");
    assert_eq!(
        p["free_access_at"], FREE_ACCESS,
        "the May holidays (7 and 9 May) are not working days"
    );
    let pub_id = p["id"].as_u64().unwrap();
    let pub_arg = pub_id.to_string();

    // The first in the queue takes a place first.
    k.ok(&["tick", "--by", "30m"]);
    k.ok(&["take", "UO.2019.20.1", "--publication", &pub_arg]);

    // 10:30: the seed's parent looks at the offers and takes a place.
    k.ok(&["tick", "--by", "1h"]);
    let queue_before = k.queue(2014);
    let other_cohort_before = k.queue(2015);
    let card_before = k.card(SEED_APP);
    assert_eq!(card_before["queue_position"], 6);
    let offers = k.json(&["offers", SEED_APP]);
    assert_eq!(offers.as_array().unwrap().len(), 1, "{offers}");
    assert_eq!(offers[0]["kindergarten_name"], KG_NAME);
    assert_eq!(offers[0]["places_left"], 7);
    assert_eq!(offers[0]["phase"], "priority");

    let r = k.json(&["take", SEED_APP, "--publication", &pub_arg]);
    assert_eq!(r["kindergarten"], KG);
    assert_eq!(r["kindergarten_name"], KG_NAME);
    assert_eq!(r["issued_at"], "2019-05-03T04:30:00Z");
    // Within one day of issue.
    assert_eq!(r["recall_until"], "2019-05-04T04:30:00Z");
    // Five working days: 6, 8, 10, 13, 14 May; valid to the end of 14 May.
    assert_eq!(r["valid_until"], "2019-05-14T18:00:00Z");
    assert_eq!(r["extended"], false);
    let c = k.card(SEED_APP);
    assert_eq!(c["status"], "referral_issued");
    assert_eq!(c["status_kk"], "Жолдама берілді");
    assert_eq!(c["queue_position"], Value::Null);
    // While the referral stands, those behind move up by one.
    assert_eq!(k.card("UO.2018.489900.1")["queue_position"], 6);

    // The next morning (Saturday 4 May, 06:30) the parent recalls it, with a reason.
    k.ok(&["tick", "--by", "20h"]);
    let reason = "Балабақша үйден алыс / детский сад далеко от дома";
    let c = k.json(&["recall", SEED_APP, "--reason", reason]);
    assert_eq!(c["status"], "queued");
    assert_eq!(c["referral"], Value::Null);
    assert_eq!(c["queue_position"], card_before["queue_position"]);
    assert_eq!(c["category_position"], card_before["category_position"]);
    // Locked out of the priority phase until the places are published for free access.
    assert_eq!(c["locked_until"], FREE_ACCESS);
    assert_eq!(
        history(&c),
        [
            ("registered".to_string(), Some("import".to_string())),
            ("referral_issued".to_string(), None),
            ("referral_recalled".to_string(), Some(reason.to_string())),
            ("lock_applied".to_string(), Some(reason.to_string())),
        ]
    );
    let recalled = &c["history"][2];
    assert_eq!(recalled["at"], "2019-05-04T00:30:00Z");
    assert_eq!(recalled["actor"], "operator:cli");
    assert_eq!(c["history"][1]["at"], "2019-05-03T04:30:00Z");

    // Every application of the cohort is where it was just before the referral; the
    // only difference in the whole queue is the recaller's lock.
    let mut queue_after = k.queue(2014);
    let mut seen_lock = 0;
    for (before, after) in queue_before["items"]
        .as_array()
        .unwrap()
        .iter()
        .zip(queue_after["items"].as_array_mut().unwrap())
    {
        assert_eq!(before["id"], after["id"]);
        assert_eq!(
            before["queue_position"], after["queue_position"],
            "{}",
            before["id"]
        );
        assert_eq!(
            before["category_position"], after["category_position"],
            "{}",
            before["id"]
        );
        if after["id"] == SEED_APP {
            assert_eq!(after["locked_until"], FREE_ACCESS);
            after["locked_until"] = Value::Null;
            seen_lock += 1;
        }
    }
    assert_eq!(seen_lock, 1);
    assert_eq!(queue_after, queue_before);
    assert_eq!(k.queue(2015), other_cohort_before);
    k.verify();

    // The explanation tells the story.
    let e = k.json(&["explain", SEED_APP]);
    let whys: Vec<(Option<u64>, Option<u64>, &str)> = e["moves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["from"].as_u64(),
                m["to"].as_u64(),
                m["why"].as_str().unwrap(),
            )
        })
        .collect();
    let n = whys.len();
    assert_eq!(
        whys[n - 3..],
        [
            (Some(7), Some(6), "someone ahead took a place"),
            (
                Some(6),
                None,
                "took a place: left the queue with a referral"
            ),
            (
                None,
                Some(6),
                "recalled the referral: back at the position the order gives"
            ),
        ]
    );

    // While locked: no offers of the priority phase, and a take is refused.
    assert_eq!(k.json(&["offers", SEED_APP]), json!([]));
    k.fails(&["take", SEED_APP, "--publication", &pub_arg], 3, "locked");
    // Another parent, first in line behind, may still choose in the priority phase.
    assert_eq!(
        k.json(&["offers", "UO.2018.489900.1"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // A second recall is refused: there is no referral.
    k.fails(
        &["recall", SEED_APP, "--reason", reason],
        3,
        "no_active_referral",
    );

    // Free access: the choice comes back.
    let out = k.ok(&["tick", "--to", FREE_ACCESS]);
    assert!(out.contains(&format!("lock_lifted {SEED_APP}")), "{out}");
    let c = k.card(SEED_APP);
    assert_eq!(c["locked_until"], Value::Null);
    assert_eq!(c["queue_position"], 6);
    let offers = k.json(&["offers", SEED_APP]);
    assert_eq!(offers[0]["phase"], "free_access");
    assert_eq!(offers[0]["places_left"], 7);
    let r = k.json(&["take", SEED_APP, "--publication", &pub_arg]);
    assert_eq!(r["issued_at"], FREE_ACCESS);
    k.verify();
}
