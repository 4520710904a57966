//! Browser sessions: the session store, CSRF tokens, the login throttle and the cookies.
//!
//! - A session is a random 256-bit id in an `HttpOnly; SameSite=Strict` cookie
//!   (`kezek_session`), mapped in memory to the account, its role, a CSRF token and
//!   its expiry (idle and absolute). A restart signs everybody out. The store holds at
//!   most [`SessionLimits::max_sessions`]; the oldest is dropped beyond that.
//! - Every form carries the session's CSRF token in the field `csrf`; the JSON API takes it
//!   in the header `X-CSRF-Token`. The login form, before there is a session, uses a
//!   double-submit token: a random value in the cookie `kezek_login` and the same value
//!   in the form.
//! - Failed logins are counted per account name and per client address. Past
//!   [`SessionLimits::free_failures`] (per name) or [`SessionLimits::free_failures_per_ip`]
//!   (per address) every further attempt is refused without checking the password until a
//!   lock ends; the lock doubles with each failure (from [`SessionLimits::lock_base`] up to
//!   [`SessionLimits::lock_max`]). A successful login clears the name's count.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use rand::RngCore;

use super::accounts::{Caller, Role};
use super::i18n::Lang;

pub const SESSION_COOKIE: &str = "kezek_session";
pub const LOGIN_COOKIE: &str = "kezek_login";
pub const LANG_COOKIE: &str = "kezek_lang";
pub const CSRF_HEADER: &str = "x-csrf-token";
pub const CSRF_FIELD: &str = "csrf";

/// The limits of browser sessions and of the login throttle.
#[derive(Debug, Clone)]
pub struct SessionLimits {
    /// A session unused this long ends.
    pub idle: Duration,
    /// A session ends this long after the login, used or not.
    pub absolute: Duration,
    /// Sessions held at once (the oldest is dropped beyond this).
    pub max_sessions: usize,
    /// Failed logins of one account name before attempts are locked out.
    pub free_failures: u32,
    /// Failed logins from one address before attempts from it are locked out.
    pub free_failures_per_ip: u32,
    /// The first lock; each further failure doubles it.
    pub lock_base: Duration,
    pub lock_max: Duration,
    /// Names and addresses the throttle remembers at once.
    pub max_throttle_entries: usize,
    /// Add `Secure` to the cookies (set when the console is served behind HTTPS).
    pub secure_cookies: bool,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            idle: Duration::from_secs(30 * 60),
            absolute: Duration::from_secs(12 * 3600),
            max_sessions: 10_000,
            free_failures: 5,
            free_failures_per_ip: 20,
            lock_base: Duration::from_secs(2),
            lock_max: Duration::from_secs(15 * 60),
            max_throttle_entries: 10_000,
            secure_cookies: false,
        }
    }
}

/// A flash message shown once on the next page (after a form's redirect).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    pub ok: bool,
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct Session {
    pub caller: Caller,
    pub csrf: String,
    created: Instant,
    last_used: Instant,
    pub flash: Option<Flash>,
}

#[derive(Debug, Default)]
struct Failures {
    count: u32,
    last: Option<Instant>,
}

impl Failures {
    fn locked_until(&self, free: u32, l: &SessionLimits) -> Option<Instant> {
        if self.count < free {
            return None;
        }
        let doublings = (self.count - free).min(20);
        let lock = l
            .lock_base
            .checked_mul(1u32 << doublings)
            .unwrap_or(l.lock_max)
            .min(l.lock_max);
        self.last.map(|t| t + lock)
    }
}

/// What a signed-in request knows about its session.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub id: String,
    pub caller: Caller,
    pub csrf: String,
    pub flash: Option<Flash>,
}

pub struct Sessions {
    limits: SessionLimits,
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<String, Failures>>,
}

/// A random 256-bit value as hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() || a.is_empty() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why a login was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginRefusal {
    /// Locked out for this long (no password was checked).
    Throttled(Duration),
    BadCredentials,
}

impl Sessions {
    pub fn new(limits: SessionLimits) -> Sessions {
        Sessions {
            limits,
            sessions: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
        }
    }

    pub fn limits(&self) -> &SessionLimits {
        &self.limits
    }

    fn expired(&self, s: &Session, now: Instant) -> bool {
        now.duration_since(s.last_used) > self.limits.idle
            || now.duration_since(s.created) > self.limits.absolute
    }

    /// Starts a session for a caller; returns its id.
    pub fn create(&self, caller: Caller) -> String {
        let now = Instant::now();
        let id = random_token();
        let Ok(mut map) = self.sessions.lock() else {
            return id;
        };
        if map.len() >= self.limits.max_sessions {
            map.retain(|_, s| !self.expired(s, now));
        }
        while map.len() >= self.limits.max_sessions.max(1) {
            let oldest = map
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => map.remove(&k),
                None => break,
            };
        }
        map.insert(
            id.clone(),
            Session {
                caller,
                csrf: random_token(),
                created: now,
                last_used: now,
                flash: None,
            },
        );
        id
    }

    /// The live session of an id (its flash is taken: shown once). Touches it.
    pub fn get(&self, id: &str, take_flash: bool) -> Option<SessionInfo> {
        if id.len() != 64 {
            return None;
        }
        let now = Instant::now();
        let mut map = self.sessions.lock().ok()?;
        let s = map.get_mut(id)?;
        if self.expired(s, now) {
            map.remove(id);
            return None;
        }
        s.last_used = now;
        let flash = if take_flash { s.flash.take() } else { None };
        Some(SessionInfo {
            id: id.to_string(),
            caller: s.caller.clone(),
            csrf: s.csrf.clone(),
            flash,
        })
    }

    pub fn set_flash(&self, id: &str, ok: bool, text: impl Into<String>) {
        if let Ok(mut map) = self.sessions.lock() {
            if let Some(s) = map.get_mut(id) {
                let mut text: String = text.into();
                if text.len() > 2000 {
                    let mut cut = 2000;
                    while !text.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    text.truncate(cut);
                }
                s.flash = Some(Flash { ok, text });
            }
        }
    }

    pub fn remove(&self, id: &str) {
        if let Ok(mut map) = self.sessions.lock() {
            map.remove(id);
        }
    }

    /// Sessions held now.
    pub fn len(&self) -> usize {
        self.sessions.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn keys(name: &str, ip: Option<&str>) -> (String, Option<String>) {
        (format!("user:{name}"), ip.map(|i| format!("ip:{i}")))
    }

    /// Refuses an attempt while its name or address is locked out.
    pub fn check_throttle(&self, name: &str, ip: Option<&str>) -> Result<(), LoginRefusal> {
        let now = Instant::now();
        let (user_key, ip_key) = Self::keys(name, ip);
        let Ok(map) = self.failures.lock() else {
            return Ok(());
        };
        let mut until: Option<Instant> = None;
        if let Some(f) = map.get(&user_key) {
            until = until.max(f.locked_until(self.limits.free_failures, &self.limits));
        }
        if let Some(f) = ip_key.as_ref().and_then(|k| map.get(k)) {
            until = until.max(f.locked_until(self.limits.free_failures_per_ip, &self.limits));
        }
        match until {
            Some(t) if t > now => Err(LoginRefusal::Throttled(t - now)),
            _ => Ok(()),
        }
    }

    pub fn record_failure(&self, name: &str, ip: Option<&str>) {
        let now = Instant::now();
        let (user_key, ip_key) = Self::keys(name, ip);
        let Ok(mut map) = self.failures.lock() else {
            return;
        };
        if map.len() >= self.limits.max_throttle_entries {
            let max = self.limits.lock_max;
            map.retain(|_, f| f.last.is_some_and(|t| now.duration_since(t) < max));
        }
        for key in std::iter::once(user_key).chain(ip_key) {
            if map.len() >= self.limits.max_throttle_entries && !map.contains_key(&key) {
                continue;
            }
            let f = map.entry(key).or_default();
            // A count older than the longest lock starts again.
            if f.last
                .is_some_and(|t| now.duration_since(t) > self.limits.lock_max)
            {
                f.count = 0;
            }
            f.count = f.count.saturating_add(1);
            f.last = Some(now);
        }
    }

    pub fn record_success(&self, name: &str) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(&format!("user:{name}"));
        }
    }
}

/// The value of a cookie in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, Path=/; `max_age` None ends it now.
pub fn set_cookie(name: &str, value: &str, max_age: Option<Duration>, secure: bool) -> String {
    let age = max_age.map_or(0, |d| d.as_secs());
    format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={age}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The language cookie (not HttpOnly-relevant, but kept the same way).
pub fn lang_cookie(lang: Lang, secure: bool) -> String {
    set_cookie(
        LANG_COOKIE,
        lang.code(),
        Some(Duration::from_secs(365 * 24 * 3600)),
        secure,
    )
}

/// A role check for pages and forms.
pub fn has_role(c: &Caller, need: Role) -> bool {
    c.role >= need
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller() -> Caller {
        Caller {
            name: "ops".into(),
            role: Role::Operator,
        }
    }

    #[test]
    fn sessions_expire_and_are_bounded() {
        let s = Sessions::new(SessionLimits {
            idle: Duration::from_millis(50),
            max_sessions: 2,
            ..SessionLimits::default()
        });
        let a = s.create(caller());
        assert!(s.get(&a, false).is_some());
        assert!(s.get("short", false).is_none());
        let b = s.create(caller());
        let c = s.create(caller());
        assert_eq!(s.len(), 2);
        assert!(s.get(&c, false).is_some() && s.get(&b, false).is_some());
        std::thread::sleep(Duration::from_millis(80));
        assert!(s.get(&c, false).is_none(), "idle session ended");
    }

    #[test]
    fn throttle_locks_after_free_failures_and_doubles() {
        let l = SessionLimits {
            free_failures: 2,
            lock_base: Duration::from_secs(10),
            ..SessionLimits::default()
        };
        let s = Sessions::new(l);
        assert!(s.check_throttle("ops", Some("1.2.3.4")).is_ok());
        s.record_failure("ops", Some("1.2.3.4"));
        assert!(s.check_throttle("ops", None).is_ok());
        s.record_failure("ops", Some("1.2.3.4"));
        let Err(LoginRefusal::Throttled(d)) = s.check_throttle("ops", None) else {
            panic!("locked")
        };
        assert!(d <= Duration::from_secs(10) && d > Duration::from_secs(8));
        s.record_failure("ops", None);
        let Err(LoginRefusal::Throttled(d)) = s.check_throttle("ops", None) else {
            panic!("locked")
        };
        assert!(d > Duration::from_secs(18), "doubled: {d:?}");
        // Another name from elsewhere is not locked; success clears the name.
        assert!(s.check_throttle("other", Some("5.6.7.8")).is_ok());
        s.record_success("ops");
        assert!(s.check_throttle("ops", None).is_ok());
    }

    #[test]
    fn cookies_and_secrets() {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::COOKIE,
            "a=1; kezek_session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&h, "kezek_session"), Some("abc"));
        assert_eq!(cookie(&h, "nope"), None);
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd") && !same_secret("", "") && !same_secret("a", "ab"));
        let c = set_cookie("x", "v", Some(Duration::from_secs(5)), false);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Max-Age=5"));
    }
}
