//! `--out DIR`: the figures as CSV and the charts as SVG (hand-written: two chart kinds do
//! not need a plotting library).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::report::{MultiReport, Report, RuleSetReport};

/// The files written, by name -> content.
pub type Files = BTreeMap<String, String>;

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn sets(r: &Report) -> Vec<&RuleSetReport> {
    let mut v = vec![&r.baseline];
    if let Some(c) = &r.candidate {
        v.push(c);
    }
    v
}

fn role(i: usize) -> &'static str {
    if i == 0 {
        "baseline"
    } else {
        "candidate"
    }
}

/// The CSV files and SVG charts of one seed.
pub fn files_of_report(r: &Report) -> Files {
    let mut f = Files::new();
    let mut placed = String::from("rule_set,label,category,cohort,placed\n");
    let mut waiting = String::from("rule_set,label,category,n,median_days,p90_days\n");
    let mut referrals = String::from(
        "rule_set,label,issued,recalled,expired,extended,enrolled,recall_refused,extension_refused,justified_envy_priority,justified_envy_free_access\n",
    );
    let mut queue = String::from("rule_set,label,week,date,total\n");
    let mut pubs = String::from(
        "rule_set,label,date,cohort,language,requested,published,refused,unused_at_priority_end\n",
    );
    for (i, s) in sets(r).into_iter().enumerate() {
        let (role, label) = (role(i), csv_field(&s.label));
        for (cat, by) in &s.placed {
            for (cohort, n) in by {
                let _ = writeln!(placed, "{role},{label},{cat},{cohort},{n}");
            }
        }
        for (cat, w) in &s.waiting_days {
            let _ = writeln!(
                waiting,
                "{role},{label},{cat},{},{},{}",
                w.n, w.median_days, w.p90_days
            );
        }
        let x = &s.referrals;
        let _ = writeln!(
            referrals,
            "{role},{label},{},{},{},{},{},{},{},{},{}",
            x.issued,
            x.recalled,
            x.expired,
            x.extended,
            x.enrolled,
            x.recall_refused,
            x.extension_refused,
            s.justified_envy.priority,
            s.justified_envy.free_access
        );
        for q in &s.queue {
            let _ = writeln!(queue, "{role},{label},{},{},{}", q.week, q.date, q.total);
        }
        for p in &s.publications {
            let _ = writeln!(
                pubs,
                "{role},{label},{},{},{},{},{},{},{}",
                p.date,
                p.cohort,
                p.language,
                p.requested,
                p.published,
                p.refused.as_deref().unwrap_or(""),
                p.unused_at_priority_end
            );
        }
    }
    f.insert("placed.csv".into(), placed);
    f.insert("waiting_days.csv".into(), waiting);
    f.insert("referrals.csv".into(), referrals);
    f.insert("queue.csv".into(), queue);
    f.insert("publications.csv".into(), pubs);
    if let Some(c) = &r.comparison {
        let mut shifts = String::from(
            "direction,application,category,cohort,baseline_days,candidate_days,shift_days\n",
        );
        for (dir, list) in [("earlier", &c.largest_earlier), ("later", &c.largest_later)] {
            for s in list {
                let _ = writeln!(
                    shifts,
                    "{dir},{},{},{},{},{},{}",
                    s.application,
                    s.category,
                    s.cohort,
                    s.baseline_days,
                    s.candidate_days,
                    s.shift_days
                );
            }
        }
        f.insert("shifts.csv".into(), shifts);
    }
    // Charts.
    let series: Vec<(String, Vec<f64>)> = sets(r)
        .iter()
        .enumerate()
        .map(|(i, s)| {
            (
                format!("{} ({})", role(i), s.label),
                s.queue.iter().map(|q| q.total as f64).collect(),
            )
        })
        .collect();
    f.insert(
        "queue.svg".into(),
        line_chart("Waiting applications by week", "week", &series),
    );
    let mut cats: Vec<String> = Vec::new();
    for s in sets(r) {
        for c in s.waiting_days.keys() {
            if !cats.contains(c) {
                cats.push(c.clone());
            }
        }
    }
    cats.sort();
    let bars: Vec<(String, Vec<f64>)> = sets(r)
        .iter()
        .enumerate()
        .flat_map(|(i, s)| {
            let med = cats
                .iter()
                .map(|c| s.waiting_days.get(c).map_or(0.0, |w| w.median_days))
                .collect();
            let p90 = cats
                .iter()
                .map(|c| s.waiting_days.get(c).map_or(0.0, |w| w.p90_days))
                .collect();
            [
                (format!("{} median", role(i)), med),
                (format!("{} p90", role(i)), p90),
            ]
        })
        .collect();
    f.insert(
        "waiting_days.svg".into(),
        bar_chart(
            "Days from registration to referral, by category",
            &cats,
            &bars,
        ),
    );
    f
}

/// The files of several seeds: the first seed's files, plus every figure's spread.
pub fn files_of_runs(m: &MultiReport) -> Files {
    let mut f = files_of_report(&m.first);
    let mut figures = String::from("figure,min,p10,median,p90,max\n");
    for (k, x) in &m.figures {
        let _ = writeln!(
            figures,
            "{},{},{},{},{},{}",
            csv_field(k),
            x.min,
            x.p10,
            x.median,
            x.p90,
            x.max
        );
    }
    f.insert("figures.csv".into(), figures);
    // The queue chart with the median over seeds, and the min and max as thin lines.
    let mut series = Vec::new();
    for (role, present) in [
        ("baseline", true),
        ("candidate", m.first.candidate.is_some()),
    ] {
        if !present {
            continue;
        }
        let weeks = m.first.baseline.queue.len();
        for (stat, pick) in [("median", 0usize), ("min", 1), ("max", 2)] {
            let ys: Vec<f64> = (0..weeks)
                .map(|w| {
                    m.figures
                        .get(&format!("{role}.queue.{w:03}.total"))
                        .map_or(0.0, |x| match pick {
                            0 => x.median,
                            1 => x.min,
                            _ => x.max,
                        })
                })
                .collect();
            series.push((format!("{role} {stat}"), ys));
        }
    }
    f.insert(
        "queue.svg".into(),
        line_chart(
            &format!("Waiting applications by week ({} seeds)", m.runs),
            "week",
            &series,
        ),
    );
    f
}

/// Writes the files into `dir` (created if missing).
pub fn write(dir: &Path, files: &Files) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, content) in files {
        std::fs::write(dir.join(name), content)?;
    }
    Ok(())
}

const COLORS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];
const W: f64 = 800.0;
const H: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn nice_max(x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(x.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * p >= x {
            return m * p;
        }
    }
    10.0 * p
}

fn frame(title: &str, ymax: f64) -> String {
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"{W}\" height=\"{H}\" fill=\"white\"/>\n<text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">{}</text>\n",
        W / 2.0,
        esc(title)
    );
    for i in 0..=5 {
        let v = ymax * f64::from(i) / 5.0;
        let y = H - BOTTOM - (H - TOP - BOTTOM) * f64::from(i) / 5.0;
        let _ = writeln!(
            s,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            (v * 100.0).round() / 100.0
        );
    }
    s
}

fn legend(s: &mut String, names: &[&str]) {
    for (i, n) in names.iter().enumerate() {
        let x = LEFT + 10.0 + (i as f64 % 3.0) * 230.0;
        let y = H - 28.0 + (i / 3) as f64 * 14.0;
        let _ = writeln!(
            s,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{y:.1}\">{}</text>",
            y - 9.0,
            COLORS[i % COLORS.len()],
            x + 14.0,
            esc(n)
        );
    }
}

/// A line chart: one polyline per series, x = index.
pub fn line_chart(title: &str, xlabel: &str, series: &[(String, Vec<f64>)]) -> String {
    let ymax = nice_max(
        series
            .iter()
            .flat_map(|(_, ys)| ys.iter().copied())
            .fold(0.0, f64::max),
    );
    let n = series
        .iter()
        .map(|(_, ys)| ys.len())
        .max()
        .unwrap_or(0)
        .max(2);
    let mut s = frame(title, ymax);
    let x_of = |i: usize| LEFT + (W - LEFT - RIGHT) * i as f64 / (n - 1) as f64;
    let y_of = |v: f64| H - BOTTOM - (H - TOP - BOTTOM) * v / ymax;
    for (k, (_, ys)) in series.iter().enumerate() {
        let pts: Vec<String> = ys
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x_of(i), y_of(*v)))
            .collect();
        let _ = writeln!(
            s,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>",
            COLORS[k % COLORS.len()],
            pts.join(" ")
        );
    }
    for i in (0..n).step_by((n / 10).max(1)) {
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{i}</text>",
            x_of(i),
            H - BOTTOM + 16.0
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
        W / 2.0,
        H - BOTTOM + 30.0,
        esc(xlabel)
    );
    let names: Vec<&str> = series.iter().map(|(n, _)| n.as_str()).collect();
    legend(&mut s, &names);
    s.push_str("</svg>\n");
    s
}

/// A grouped bar chart: one group per category, one bar per series.
pub fn bar_chart(title: &str, groups: &[String], series: &[(String, Vec<f64>)]) -> String {
    let ymax = nice_max(
        series
            .iter()
            .flat_map(|(_, ys)| ys.iter().copied())
            .fold(0.0, f64::max),
    );
    let mut s = frame(title, ymax);
    let g = groups.len().max(1) as f64;
    let gw = (W - LEFT - RIGHT) / g;
    let bw = gw * 0.8 / series.len().max(1) as f64;
    for (gi, name) in groups.iter().enumerate() {
        let gx = LEFT + gw * gi as f64 + gw * 0.1;
        for (k, (_, ys)) in series.iter().enumerate() {
            let v = ys.get(gi).copied().unwrap_or(0.0);
            let h = (H - TOP - BOTTOM) * v / ymax;
            let _ = writeln!(
                s,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{}\"><title>{}</title></rect>",
                gx + bw * k as f64,
                H - BOTTOM - h,
                bw.max(1.0),
                COLORS[k % COLORS.len()],
                v
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            gx + gw * 0.4,
            H - BOTTOM + 16.0,
            esc(name)
        );
    }
    let names: Vec<&str> = series.iter().map(|(n, _)| n.as_str()).collect();
    legend(&mut s, &names);
    s.push_str("</svg>\n");
    s
}
