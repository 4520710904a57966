//! Local time and working days in Asia/Almaty. Instants are stored in UTC; dates and
//! times of day the rules speak of are local, through the tz database (Kazakhstan moved
//! from UTC+6 to UTC+5 on 1 March 2024).

use std::sync::OnceLock;

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use crate::rules::RuleParams;

pub const TIME_ZONE: &str = "Asia/Almaty";

/// Asia/Almaty from the bundled tz database.
pub fn tz() -> &'static TimeZone {
    static TZ: OnceLock<TimeZone> = OnceLock::new();
    TZ.get_or_init(|| TimeZone::get(TIME_ZONE).expect("the bundled tz database has Asia/Almaty"))
}

pub fn local_date(at: Timestamp) -> Date {
    at.to_zoned(tz().clone()).date()
}

pub fn local_datetime(at: Timestamp) -> DateTime {
    at.to_zoned(tz().clone()).datetime()
}

/// An instant as people in Almaty read it, for messages: `2025-03-06 06:57 (UTC+05)`.
pub fn show(at: Timestamp) -> String {
    let z = at.to_zoned(tz().clone());
    z.strftime("%Y-%m-%d %H:%M:%S (UTC%:z)").to_string()
}

/// The instant of a local date and time (the earlier one if ambiguous).
pub fn instant(date: Date, time: Time) -> Timestamp {
    tz().to_ambiguous_timestamp(date.to_datetime(time))
        .compatible()
        .expect("Almaty local times within the supported range are valid")
}

/// Adds calendar days, saturating at the end of jiff's range.
pub fn add_days(at: Timestamp, days: i64) -> Timestamp {
    at.to_zoned(tz().clone())
        .checked_add(days.days())
        .map(|z| z.timestamp())
        .unwrap_or(Timestamp::MAX)
}

pub fn is_working_day(params: &RuleParams, date: Date) -> bool {
    params
        .working_weekdays
        .contains(&date.weekday().to_monday_one_offset())
        && !params.holidays.contains(&date)
}

/// The `n`-th working day strictly after `date` (`n = 0` gives `date` itself).
pub fn nth_working_day_after(params: &RuleParams, date: Date, n: i64) -> Date {
    let mut d = date;
    let mut left = n;
    // A week has at least one working day (the rules check it), so this ends; the bound
    // is a guard against a calendar of holidays covering years.
    let mut guard = 0;
    while left > 0 && guard < 3_700 {
        d = d.tomorrow().unwrap_or(d);
        if is_working_day(params, d) {
            left -= 1;
        }
        guard += 1;
    }
    d
}

/// When a publication made at `published_at` opens to free access: the free-access time
/// of day on the `priority_phase_working_days`-th working day after the publication date.
/// With zero priority days, the publication opens to free access at once.
pub fn free_access_at(params: &RuleParams, published_at: Timestamp) -> Timestamp {
    if params.priority_phase_working_days == 0 {
        return published_at;
    }
    let day = nth_working_day_after(
        params,
        local_date(published_at),
        params.priority_phase_working_days,
    );
    instant(day, params.free_access_time)
}

/// Until when a referral issued at `issued_at` is valid: the end (24:00 local) of the
/// `referral_validity_working_days`-th working day after the issue date.
pub fn referral_valid_until(params: &RuleParams, issued_at: Timestamp) -> Timestamp {
    let last = nth_working_day_after(
        params,
        local_date(issued_at),
        params.referral_validity_working_days,
    );
    let next = last.tomorrow().unwrap_or(last);
    instant(next, Time::midnight())
}
