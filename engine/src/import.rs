//! CSV imports: the application journal of the existing system, and kindergarten groups.
//! Every row is checked before anything is written; errors name the row and the field.

use jiff::civil::{Date, DateTime};
use jiff::Timestamp;

use crate::calendar;
use crate::command::RegisterInput;
use crate::error::{EngineError, Result};
use crate::event::GroupRow;
use crate::model::{AppNo, Language};
use crate::rules::RuleSet;

/// The most bytes one CSV file may hold.
pub const MAX_CSV_BYTES: usize = 512 * 1024 * 1024;
const MAX_FIELD_CHARS: usize = 200;

fn norm(h: &str) -> String {
    h.trim()
        .trim_start_matches('\u{feff}')
        .to_lowercase()
        .replace(['_', '-'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The journal's columns and the header words that name them (English, Russian, Kazakh).
const APP_COLUMNS: &[(&str, &[&str])] = &[
    (
        "application_number",
        &[
            "application number",
            "application",
            "id",
            "номер заявления",
            "заявление",
            "өтініш нөмірі",
            "өтініш",
        ],
    ),
    (
        "child_iin",
        &[
            "child iin",
            "иин ребенка",
            "иин ребёнка",
            "баланың жсн",
            "бала жсн",
        ],
    ),
    (
        "birth_date",
        &[
            "child birth date",
            "birth date",
            "дата рождения",
            "дата рождения ребенка",
            "туған күні",
            "баланың туған күні",
        ],
    ),
    (
        "registered_at",
        &[
            "registration date and time",
            "registered at",
            "registration date",
            "дата регистрации",
            "дата и время регистрации",
            "тіркелген күні",
            "тіркеу күні",
        ],
    ),
    (
        "category",
        &[
            "category",
            "benefit",
            "льгота",
            "категория льготы",
            "вид льготы",
            "жеңілдік",
            "жеңілдік түрі",
        ],
    ),
    ("status", &["status", "статус", "мәртебе", "мәртебесі"]),
    (
        "applicant_iin",
        &[
            "applicant iin",
            "иин заявителя",
            "өтініш берушінің жсн",
            "өтініш беруші жсн",
        ],
    ),
    (
        "language",
        &["language", "язык", "язык обучения", "тіл", "оқыту тілі"],
    ),
    (
        "child_name",
        &["child name", "фио ребенка", "баланың аты жөні"],
    ),
    (
        "applicant_name",
        &[
            "applicant name",
            "фио заявителя",
            "өтініш берушінің аты жөні",
        ],
    ),
    (
        "email",
        &["email", "e mail", "электронная почта", "электрондық пошта"],
    ),
    ("phone", &["phone", "телефон"]),
];
const REQUIRED: &[&str] = &[
    "application_number",
    "child_iin",
    "birth_date",
    "registered_at",
    "category",
    "status",
    "applicant_iin",
    "language",
];

fn parse_date(s: &str) -> Option<Date> {
    let s = s.trim();
    if let Ok(d) = s.parse::<Date>() {
        return Some(d);
    }
    let p: Vec<&str> = s.split('.').collect();
    if p.len() == 3 && p[2].len() == 4 {
        return Date::new(p[2].parse().ok()?, p[1].parse().ok()?, p[0].parse().ok()?).ok();
    }
    None
}

/// An instant: RFC 3339 with an offset, or a local Almaty date and time
/// (`YYYY-MM-DD HH:MM[:SS]` or `DD.MM.YYYY HH:MM[:SS]`).
pub fn parse_instant(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if let Ok(t) = s.parse::<Timestamp>() {
        return Some(t);
    }
    let (d, t) = s.split_once([' ', 'T'])?;
    let date = parse_date(d)?;
    let time: jiff::civil::Time = t.trim().parse().ok()?;
    let dt = DateTime::from_parts(date, time);
    Some(calendar::instant(dt.date(), dt.time()))
}

fn category_code(s: &str, rules: &RuleSet) -> Option<String> {
    let n = norm(s);
    rules.params().categories.iter().find_map(|c| {
        [&c.code, &c.kk, &c.ru, &c.en]
            .iter()
            .any(|w| norm(w) == n)
            .then(|| c.code.clone())
    })
}

fn check_status(s: &str) -> bool {
    matches!(
        norm(s).as_str(),
        "queued" | "в очереди" | "кезекте" | "waiting"
    )
}

/// Normalized header names, and the data rows with their spreadsheet row numbers.
type Records = (Vec<String>, Vec<(usize, csv::StringRecord)>);

fn read_records(bytes: &[u8]) -> Result<Records> {
    if bytes.len() > MAX_CSV_BYTES {
        return Err(EngineError::invalid(
            "too_large",
            format!("the file is larger than {MAX_CSV_BYTES} bytes"),
        ));
    }
    let mut rdr = csv::ReaderBuilder::new().flexible(false).from_reader(bytes);
    let headers = rdr
        .headers()
        .map_err(|e| EngineError::invalid("invalid_csv", format!("header: {e}")))?
        .iter()
        .map(norm)
        .collect::<Vec<_>>();
    let mut rows = Vec::new();
    for (i, r) in rdr.records().enumerate() {
        // Row numbers count the header as row 1, as a spreadsheet shows them.
        let row = i + 2;
        let rec = r.map_err(|e| EngineError::invalid("invalid_csv", format!("row {row}: {e}")))?;
        if rec.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if let Some(f) = rec.iter().find(|f| f.chars().count() > MAX_FIELD_CHARS) {
            return Err(EngineError::invalid(
                "invalid_csv",
                format!(
                    "row {row}: a field is longer than {MAX_FIELD_CHARS} characters ({}…)",
                    f.chars().take(20).collect::<String>()
                ),
            ));
        }
        rows.push((row, rec));
        if rows.len() > crate::store::MAX_IMPORT_ROWS {
            return Err(EngineError::invalid(
                "too_many_rows",
                format!("more than {} rows", crate::store::MAX_IMPORT_ROWS),
            ));
        }
    }
    Ok((headers, rows))
}

/// Parses the application journal into registrations (rows paired with their row
/// numbers). Field checks that need the state (IIN checksums, duplicates) happen when the
/// store checks each registration.
pub fn parse_applications(bytes: &[u8], rules: &RuleSet) -> Result<Vec<(usize, RegisterInput)>> {
    let (headers, rows) = read_records(bytes)?;
    let mut col = std::collections::HashMap::new();
    for (i, h) in headers.iter().enumerate() {
        if let Some((name, _)) = APP_COLUMNS
            .iter()
            .find(|(_, words)| words.contains(&h.as_str()))
        {
            if col.insert(*name, i).is_some() {
                return Err(EngineError::invalid(
                    "invalid_csv",
                    format!("header: column {name} appears twice"),
                ));
            }
        }
    }
    if let Some(missing) = REQUIRED.iter().find(|c| !col.contains_key(*c)) {
        return Err(EngineError::invalid(
            "invalid_csv",
            format!(
                "header: no column for {missing} (found: {})",
                headers.join(", ")
            ),
        ));
    }
    let mut out = Vec::with_capacity(rows.len());
    for (row, rec) in rows {
        let get = |name: &str| {
            col.get(name)
                .and_then(|i| rec.get(*i))
                .map(str::trim)
                .unwrap_or("")
        };
        let bad = |field: &str, msg: String| {
            EngineError::invalid("invalid_input", format!("row {row}, {field}: {msg}"))
        };
        let app: AppNo = get("application_number")
            .parse()
            .map_err(|e: String| bad("application number", e))?;
        let birth_date = parse_date(get("birth_date")).ok_or_else(|| {
            bad(
                "birth date",
                format!(
                    "'{}' is not a date (YYYY-MM-DD or DD.MM.YYYY)",
                    get("birth_date")
                ),
            )
        })?;
        let registered_at = parse_instant(get("registered_at")).ok_or_else(|| {
            bad(
                "registration date and time",
                format!("'{}' is not a date and time", get("registered_at")),
            )
        })?;
        let category = category_code(get("category"), rules).ok_or_else(|| {
            bad(
                "category",
                format!("'{}' is not a category of the rules", get("category")),
            )
        })?;
        if !check_status(get("status")) {
            return Err(bad(
                "status",
                format!(
                    "'{}': only waiting (queued) applications are imported",
                    get("status")
                ),
            ));
        }
        let language: Language = get("language")
            .parse()
            .map_err(|e: String| bad("language", e))?;
        let opt = |name: &str| Some(get(name).to_string()).filter(|s| !s.is_empty());
        out.push((
            row,
            RegisterInput {
                app: Some(app),
                child_iin: get("child_iin").to_string(),
                birth_date,
                applicant_iin: get("applicant_iin").to_string(),
                child_name: opt("child_name"),
                applicant_name: opt("applicant_name"),
                category: Some(category),
                language: Some(language),
                email: opt("email"),
                phone: opt("phone"),
                registered_at: Some(registered_at),
            },
        ));
    }
    Ok(out)
}

/// Parses kindergarten groups: `id,name,district,cohort,language,capacity` (extra
/// columns are ignored).
pub fn parse_kindergartens(bytes: &[u8]) -> Result<Vec<GroupRow>> {
    let (headers, rows) = read_records(bytes)?;
    let idx = |name: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            EngineError::invalid("invalid_csv", format!("header: no column '{name}' (expected id,name,district,cohort,language,capacity)"))
        })
    };
    let (i_id, i_name, i_district, i_cohort, i_lang, i_cap) = (
        idx("id")?,
        idx("name")?,
        idx("district")?,
        idx("cohort")?,
        idx("language")?,
        idx("capacity")?,
    );
    let mut out = Vec::with_capacity(rows.len());
    for (row, rec) in rows {
        let get = |i: usize| rec.get(i).map(str::trim).unwrap_or("");
        let bad = |field: &str, msg: String| {
            EngineError::invalid("invalid_input", format!("row {row}, {field}: {msg}"))
        };
        let cohort: i32 = get(i_cohort)
            .parse()
            .map_err(|_| bad("cohort", format!("'{}' is not a year", get(i_cohort))))?;
        let language: Language = get(i_lang)
            .parse()
            .map_err(|e: String| bad("language", e))?;
        let capacity: u32 = get(i_cap).parse().map_err(|_| {
            bad(
                "capacity",
                format!("'{}' is not a whole number", get(i_cap)),
            )
        })?;
        if get(i_id).is_empty() {
            return Err(bad("id", "empty".into()));
        }
        if get(i_name).is_empty() {
            return Err(bad("name", "empty".into()));
        }
        out.push(GroupRow {
            kindergarten: get(i_id).to_string(),
            name: get(i_name).to_string(),
            district: get(i_district).to_string(),
            cohort,
            language,
            capacity,
        });
    }
    Ok(out)
}
