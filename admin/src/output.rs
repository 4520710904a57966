//! Rendering for the terminal: local (Almaty) times and the card as people read it.

use jiff::Timestamp;
use kezek_engine::calendar;
use kezek_engine::view::{Card, Explanation, Offer};

/// An instant as Almaty local time, e.g. `2019-05-03 10:00:00 (UTC+06)`.
pub fn local(t: Timestamp) -> String {
    let z = t.to_zoned(calendar::tz().clone());
    format!(
        "{} (UTC{})",
        z.strftime("%Y-%m-%d %H:%M:%S"),
        z.strftime("%:z")
    )
}

fn opt_local(t: Option<Timestamp>) -> String {
    t.map(local).unwrap_or_else(|| "—".into())
}

fn opt_num(n: Option<u64>) -> String {
    n.map(|n| n.to_string()).unwrap_or_else(|| "—".into())
}

pub fn card(c: &Card) -> String {
    let mut s = String::new();
    let line = |s: &mut String, k: &str, v: String| s.push_str(&format!("{k:<28}{v}\n"));
    line(&mut s, "Application", c.id.clone());
    line(
        &mut s,
        "Status",
        format!("{} ({} / {})", c.status, c.status_kk, c.status_ru),
    );
    line(
        &mut s,
        "Queue (cohort)",
        format!("{} · {}", c.cohort, c.language),
    );
    line(&mut s, "Category", c.category.clone());
    line(&mut s, "Queue position", opt_num(c.queue_position));
    line(&mut s, "Position in category", opt_num(c.category_position));
    line(&mut s, "Registered", local(c.registered_at));
    line(
        &mut s,
        "Child",
        format!(
            "{} · born {}{}",
            c.child_iin,
            c.birth_date,
            c.child_name
                .as_ref()
                .map(|n| format!(" · {n}"))
                .unwrap_or_default()
        ),
    );
    line(
        &mut s,
        "Applicant",
        format!(
            "{}{}",
            c.applicant_iin,
            c.applicant_name
                .as_ref()
                .map(|n| format!(" · {n}"))
                .unwrap_or_default()
        ),
    );
    if let Some(r) = &c.referral {
        line(
            &mut s,
            "Referral",
            format!(
                "{} to {} «{}» (publication {})",
                r.id, r.kindergarten, r.kindergarten_name, r.publication
            ),
        );
        line(&mut s, "  issued", local(r.issued_at));
        line(
            &mut s,
            "  valid until",
            format!(
                "{}{}",
                local(r.valid_until),
                if r.extended { " (extended)" } else { "" }
            ),
        );
        line(&mut s, "  recall until", local(r.recall_until));
    }
    if c.locked_until.is_some() {
        line(
            &mut s,
            "Locked from priority until",
            opt_local(c.locked_until),
        );
    }
    if c.stop_listed_until.is_some() {
        line(&mut s, "Stop-listed until", opt_local(c.stop_listed_until));
    }
    if !c.history.is_empty() {
        s.push_str("Changes:\n");
        for h in &c.history {
            s.push_str(&format!(
                "  {}  {:<22} {}{}\n",
                local(h.at),
                h.event,
                h.actor,
                h.reason
                    .as_ref()
                    .map(|r| format!(" — {r}"))
                    .unwrap_or_default()
            ));
        }
    }
    s
}

pub fn queue_row(c: &Card) -> String {
    format!(
        "{:>7}  {:<20} {:<15} {:>5}  {}  {}",
        opt_num(c.queue_position),
        c.id,
        c.category,
        opt_num(c.category_position),
        local(c.registered_at),
        c.status
    )
}

pub fn explanation(e: &Explanation) -> String {
    let mut s = format!(
        "{} · cohort {} · category {} · queue position {} · in category {}\n",
        e.id,
        e.cohort,
        e.category,
        opt_num(e.queue_position),
        opt_num(e.category_position)
    );
    if e.ahead.is_empty() {
        s.push_str("Nobody is ahead.\n");
    } else {
        s.push_str("Ahead, by category:\n");
        for (c, n) in &e.ahead {
            s.push_str(&format!("  {c:<16}{n}\n"));
        }
    }
    s.push_str("What moved the position:\n");
    for m in &e.moves {
        s.push_str(&format!(
            "  #{:<7} {}  {} -> {}  {}{}{}\n",
            m.seq,
            local(m.at),
            opt_num(m.from),
            opt_num(m.to),
            m.why,
            if m.count > 1 {
                format!(" ×{}", m.count)
            } else {
                String::new()
            },
            m.subject
                .as_ref()
                .filter(|x| **x != e.id)
                .map(|x| format!(" ({x})"))
                .unwrap_or_default()
        ));
    }
    s
}

pub fn offer(o: &Offer) -> String {
    format!(
        "publication {:<5} {} «{}» · {} {} · {} place(s) left · {} (free access {})",
        o.publication,
        o.kindergarten,
        o.kindergarten_name,
        o.cohort,
        o.language,
        o.places_left,
        o.phase,
        local(o.free_access_at)
    )
}
