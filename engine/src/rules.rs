//! The rules host: the city's policy as Rhai scripts (`rules/*.rhai`).
//!
//! A rule set is a map `file name -> source`. It is compiled once ([`RuleSet::compile`]),
//! every required function is checked for presence and return type, parameter functions
//! (no arguments) are evaluated once and cached in [`RuleParams`], and the per-application
//! functions (`order_key`, `cohort`, `priority_eligible`, `lock_after_recall`,
//! `publication_allowed`) are called through the methods below with plain data.
//!
//! # Sandbox
//!
//! Each rule set owns one [`rhai::Engine`], built raw with only pure packages (no time, no
//! `sleep`, no blobs, no printing, no modules, no `eval`, no closures) and the limits in
//! [`limits`]. Each file is compiled once into its own AST; functions are called without
//! re-running top-level statements. A script that loops, recurses or grows data without
//! bound gets a [`RuleError`]; calls are also wrapped in `catch_unwind`, and a stack guard
//! stops a call that has used more than [`limits::STACK_BUDGET`] bytes of stack.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use jiff::civil::{Date, Time};
use jiff::Timestamp;
use rhai::packages::{
    ArithmeticPackage, BasicArrayPackage, BasicFnPackage, BasicIteratorPackage, BasicMapPackage,
    BasicMathPackage, BasicStringPackage, BitFieldPackage, LogicPackage, MoreStringPackage,
    Package,
};
use rhai::{CallFnOptions, Dynamic, Engine, EvalAltResult, Map, Position, Scope, AST};
use sha2::{Digest, Sha256};

/// A rule error: which file, which line (1-based, when known), what went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}", line = line.map(|l| l.to_string()).unwrap_or_else(|| "-".into()))]
pub struct RuleError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

/// One benefit category as the rules define it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CategoryDef {
    pub code: String,
    /// Smaller ranks come first in the queue.
    pub rank: i64,
    pub kk: String,
    pub ru: String,
    pub en: String,
}

/// Values of the parameter functions, evaluated once when the set is compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleParams {
    pub categories: Vec<CategoryDef>,
    pub recall_window_hours: i64,
    pub referral_validity_working_days: i64,
    pub extension_days: i64,
    pub max_extensions: i64,
    pub stop_list_days: i64,
    pub priority_phase_working_days: i64,
    /// Local (Asia/Almaty) time of day at which a publication opens to free access.
    pub free_access_time: Time,
    pub holidays: BTreeSet<Date>,
    /// ISO weekdays (1 = Monday .. 7 = Sunday) that are working days.
    pub working_weekdays: BTreeSet<i8>,
}

/// The facts about an application that `order_key` and `cohort` receive.
#[derive(Debug, Clone)]
pub struct AppFacts<'a> {
    pub id: &'a str,
    pub category: &'a str,
    pub language: &'a str,
    pub birth_date: Date,
    pub registered_at: Timestamp,
}

/// What `lock_after_recall` receives.
#[derive(Debug, Clone)]
pub struct LockFacts {
    pub recalled_at: Timestamp,
    /// When the publication the referral came from opens (or opened) to free access.
    pub free_access_at: Timestamp,
}

/// The sandbox limits every rule set runs under (documented in `rules/README.md`).
pub mod limits {
    /// Operations (statements, expressions, calls) per call of a rule function.
    pub const MAX_OPERATIONS: u64 = 100_000;
    /// Nested function calls (recursion depth) per call of a rule function.
    pub const MAX_CALL_LEVELS: usize = 32;
    /// Nesting depth of expressions at the top level of a file.
    pub const MAX_EXPR_DEPTH: usize = 64;
    /// Nesting depth of expressions inside a function body.
    pub const MAX_FUNCTION_EXPR_DEPTH: usize = 32;
    /// Length of a string, in bytes (all strings inside one value count together).
    pub const MAX_STRING_SIZE: usize = 16 * 1024;
    /// Elements of an array (nested arrays count together).
    pub const MAX_ARRAY_SIZE: usize = 4096;
    /// Entries of a map (nested maps count together).
    pub const MAX_MAP_SIZE: usize = 256;
    /// Variables alive at any one time (across the call stack).
    pub const MAX_VARIABLES: usize = 256;
    /// Functions defined in one file.
    pub const MAX_FUNCTIONS: usize = 128;
    /// Size of one rule file, in bytes.
    pub const MAX_FILE_BYTES: usize = 256 * 1024;
    /// Number of files in a rule set.
    pub const MAX_FILES: usize = 32;
    /// Stack a single call of a rule function may use, in bytes, measured from the call.
    /// Callers must run rule functions on a thread with at least this much stack to spare
    /// (plus some headroom): every thread Rust spawns by default (2 MiB) qualifies.
    pub const STACK_BUDGET: usize = 512 * 1024;
}

use limits::*;

// ---------------------------------------------------------------------------------------
// The contract: which file defines which function.

const CATEGORIES_FILE: &str = "categories.rhai";
const ORDER_FILE: &str = "order.rhai";
const REFERRAL_FILE: &str = "referral.rhai";
const PHASES_FILE: &str = "phases.rhai";
const CALENDAR_FILE: &str = "calendar.rhai";

/// The rule files, in name order.
const RULE_FILES: [&str; 5] = [
    CALENDAR_FILE,
    CATEGORIES_FILE,
    ORDER_FILE,
    PHASES_FILE,
    REFERRAL_FILE,
];

/// A required rule function.
struct FnSpec {
    file: &'static str,
    name: &'static str,
    params: &'static [&'static str],
}

impl FnSpec {
    fn signature(&self) -> String {
        format!("{}({})", self.name, self.params.join(", "))
    }
}

macro_rules! fn_spec {
    ($id:ident, $file:expr, $name:literal $(, $param:literal)*) => {
        const $id: FnSpec = FnSpec { file: $file, name: $name, params: &[$($param),*] };
    };
}

fn_spec!(F_CATEGORIES, CATEGORIES_FILE, "categories");
fn_spec!(F_ORDER_KEY, ORDER_FILE, "order_key", "app");
fn_spec!(F_COHORT, ORDER_FILE, "cohort", "app");
fn_spec!(F_RECALL_WINDOW, REFERRAL_FILE, "recall_window_hours");
fn_spec!(F_VALIDITY, REFERRAL_FILE, "referral_validity_working_days");
fn_spec!(F_EXTENSION_DAYS, REFERRAL_FILE, "extension_days");
fn_spec!(F_MAX_EXTENSIONS, REFERRAL_FILE, "max_extensions");
fn_spec!(F_STOP_LIST_DAYS, REFERRAL_FILE, "stop_list_days");
fn_spec!(F_LOCK, REFERRAL_FILE, "lock_after_recall", "facts");
fn_spec!(F_PRIORITY_DAYS, PHASES_FILE, "priority_phase_working_days");
fn_spec!(F_FREE_ACCESS, PHASES_FILE, "free_access_time");
fn_spec!(
    F_PRIORITY_ELIGIBLE,
    PHASES_FILE,
    "priority_eligible",
    "queue_position",
    "places_free"
);
fn_spec!(F_PUBLICATION, PHASES_FILE, "publication_allowed", "date");
fn_spec!(F_HOLIDAYS, CALENDAR_FILE, "holidays");
fn_spec!(F_WEEKDAYS, CALENDAR_FILE, "working_weekdays");

const REQUIRED: [&FnSpec; 15] = [
    &F_CATEGORIES,
    &F_ORDER_KEY,
    &F_COHORT,
    &F_RECALL_WINDOW,
    &F_VALIDITY,
    &F_EXTENSION_DAYS,
    &F_MAX_EXTENSIONS,
    &F_STOP_LIST_DAYS,
    &F_LOCK,
    &F_PRIORITY_DAYS,
    &F_FREE_ACCESS,
    &F_PRIORITY_ELIGIBLE,
    &F_PUBLICATION,
    &F_HOLIDAYS,
    &F_WEEKDAYS,
];

fn err(file: &str, line: Option<usize>, message: impl Into<String>) -> RuleError {
    RuleError {
        file: file.to_string(),
        line,
        message: message.into(),
    }
}

// ---------------------------------------------------------------------------------------
// Stack guard: Rhai aborts the process on a native stack overflow, so besides the call-level
// and expression-depth limits every call records where its stack starts, and the progress
// callback (run on every operation) stops the script once it has used STACK_BUDGET bytes.

thread_local! {
    static STACK_BASE: Cell<usize> = const { Cell::new(0) };
}

const STACK_TOKEN: &str = "kezek: stack budget exhausted";

#[inline(never)]
fn stack_address() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

struct StackGuard {
    previous: usize,
}

impl StackGuard {
    fn enter() -> StackGuard {
        let here = stack_address();
        let previous = STACK_BASE.with(|b| b.replace(here));
        StackGuard { previous }
    }
}

impl Drop for StackGuard {
    fn drop(&mut self) {
        let previous = self.previous;
        STACK_BASE.with(|b| b.set(previous));
    }
}

#[cfg(test)]
static MAX_STACK_SEEN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn stack_exhausted() -> bool {
    let base = STACK_BASE.with(|b| b.get());
    if base == 0 {
        return false;
    }
    let used = base.abs_diff(stack_address());
    #[cfg(test)]
    MAX_STACK_SEEN.fetch_max(used, std::sync::atomic::Ordering::Relaxed);
    used > STACK_BUDGET
}

fn build_engine() -> Engine {
    let mut engine = Engine::new_raw();
    // Pure packages only: no LanguageCorePackage (it has `sleep`, `exit`, `parse_json`),
    // no time (non-deterministic), no blobs, no debugging.
    engine.register_global_module(ArithmeticPackage::new().as_shared_module());
    engine.register_global_module(LogicPackage::new().as_shared_module());
    engine.register_global_module(BitFieldPackage::new().as_shared_module());
    engine.register_global_module(BasicMathPackage::new().as_shared_module());
    engine.register_global_module(BasicStringPackage::new().as_shared_module());
    engine.register_global_module(MoreStringPackage::new().as_shared_module());
    engine.register_global_module(BasicIteratorPackage::new().as_shared_module());
    engine.register_global_module(BasicFnPackage::new().as_shared_module());
    engine.register_global_module(BasicArrayPackage::new().as_shared_module());
    engine.register_global_module(BasicMapPackage::new().as_shared_module());

    engine
        .set_max_operations(MAX_OPERATIONS)
        .set_max_call_levels(MAX_CALL_LEVELS)
        .set_max_expr_depths(MAX_EXPR_DEPTH, MAX_FUNCTION_EXPR_DEPTH)
        .set_max_string_size(MAX_STRING_SIZE)
        .set_max_array_size(MAX_ARRAY_SIZE)
        .set_max_map_size(MAX_MAP_SIZE)
        .set_max_variables(MAX_VARIABLES)
        .set_max_functions(MAX_FUNCTIONS)
        .set_strict_variables(true)
        .set_fail_on_invalid_map_property(true)
        .set_allow_anonymous_fn(false)
        .disable_symbol("eval");
    engine.on_print(|_| {});
    engine.on_debug(|_, _, _| {});
    engine.on_progress(|_| {
        if stack_exhausted() {
            Some(Dynamic::from(STACK_TOKEN))
        } else {
            None
        }
    });
    engine
}

/// The line of `fn name` in a source (best effort), for errors about a returned value.
fn fn_line(source: &str, name: &str) -> Option<usize> {
    source.lines().enumerate().find_map(|(i, line)| {
        let rest = line.trim_start();
        let rest = rest.strip_prefix("private").map_or(rest, str::trim_start);
        let rest = rest.strip_prefix("fn")?;
        if !rest.starts_with(char::is_whitespace) {
            return None;
        }
        let rest = rest.trim_start().strip_prefix(name)?;
        rest.trim_start().starts_with('(').then_some(i + 1)
    })
}

/// A short description of a value for error messages (never recursive).
fn describe(value: &Dynamic) -> String {
    if value.is_unit() {
        "() (nothing)".into()
    } else if let Ok(v) = value.as_int() {
        format!("integer {v}")
    } else if let Ok(v) = value.as_bool() {
        format!("bool {v}")
    } else if let Ok(v) = value.as_float() {
        format!("float {v}")
    } else if let Ok(v) = value.as_char() {
        format!("char {v:?}")
    } else if value.is_string() {
        let s = value.clone().into_string().unwrap_or_default();
        let mut short: String = s.chars().take(40).collect();
        if short.len() < s.len() {
            short.push('…');
        }
        format!("string {short:?}")
    } else if value.is_array() {
        let n = value.read_lock::<rhai::Array>().map_or(0, |a| a.len());
        format!("array of {n} elements")
    } else if value.is_map() {
        let n = value.read_lock::<Map>().map_or(0, |m| m.len());
        format!("map of {n} entries")
    } else {
        value.type_name().to_string()
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".into()
    }
}

/// The innermost error of a chain of function calls, and the best position for it.
fn innermost(error: &EvalAltResult) -> (&EvalAltResult, Position) {
    match error {
        EvalAltResult::ErrorInFunctionCall(_, _, inner, pos) => {
            let (e, p) = innermost(inner);
            (e, if p.is_none() { *pos } else { p })
        }
        other => (other, other.position()),
    }
}

/// The compiled scripts and the engine that runs them.
struct Host {
    engine: Engine,
    asts: BTreeMap<&'static str, AST>,
    files: BTreeMap<String, String>,
}

impl Host {
    fn call(&self, spec: &FnSpec, args: Vec<Dynamic>) -> Result<Dynamic, RuleError> {
        let Some(ast) = self.asts.get(spec.file) else {
            return Err(err(spec.file, None, "missing rule file"));
        };
        let result = {
            let _guard = StackGuard::enter();
            catch_unwind(AssertUnwindSafe(|| {
                let mut scope = Scope::new();
                let options = CallFnOptions::new().eval_ast(false).rewind_scope(true);
                self.engine
                    .call_fn_with_options::<Dynamic>(options, &mut scope, ast, spec.name, args)
            }))
        };
        match result {
            Ok(Ok(value)) => Ok(value.flatten()),
            Ok(Err(e)) => Err(self.runtime_error(spec, &e)),
            Err(payload) => Err(err(
                spec.file,
                None,
                format!(
                    "{}: the script engine failed (panic: {})",
                    spec.signature(),
                    panic_message(payload.as_ref())
                ),
            )),
        }
    }

    fn runtime_error(&self, spec: &FnSpec, error: &EvalAltResult) -> RuleError {
        let sig = spec.signature();
        let (inner, pos) = innermost(error);
        let message = match inner {
            EvalAltResult::ErrorTooManyOperations(..) => format!(
                "{sig}: exceeded the limit of {MAX_OPERATIONS} operations per call (endless loop?)"
            ),
            EvalAltResult::ErrorStackOverflow(..) => format!(
                "{sig}: exceeded the limit of {MAX_CALL_LEVELS} nested function calls (endless recursion?)"
            ),
            EvalAltResult::ErrorDataTooLarge(what, ..) => format!(
                "{sig}: {what} exceeds the limit (strings {MAX_STRING_SIZE} bytes, arrays \
                 {MAX_ARRAY_SIZE} elements, maps {MAX_MAP_SIZE} entries)"
            ),
            EvalAltResult::ErrorTooManyVariables(..) => format!(
                "{sig}: exceeded the limit of {MAX_VARIABLES} variables"
            ),
            EvalAltResult::ErrorTerminated(token, ..)
                if token.clone().into_string().ok().as_deref() == Some(STACK_TOKEN) =>
            {
                format!(
                    "{sig}: exceeded the stack limit of {} KiB (recursion too deep?)",
                    STACK_BUDGET / 1024
                )
            }
            _ => format!("{sig}: {error}"),
        };
        err(spec.file, pos.line(), message)
    }

    fn type_error(&self, spec: &FnSpec, expected: &str, got: &str) -> RuleError {
        let line = self
            .files
            .get(spec.file)
            .and_then(|src| fn_line(src, spec.name));
        err(
            spec.file,
            line,
            format!("{} must return {expected}, got {got}", spec.signature()),
        )
    }

    fn value_error(&self, spec: &FnSpec, message: impl std::fmt::Display) -> RuleError {
        let line = self
            .files
            .get(spec.file)
            .and_then(|src| fn_line(src, spec.name));
        err(spec.file, line, format!("{}: {message}", spec.signature()))
    }

    fn call_int(&self, spec: &FnSpec, args: Vec<Dynamic>) -> Result<i64, RuleError> {
        let value = self.call(spec, args)?;
        value
            .as_int()
            .map_err(|_| self.type_error(spec, "an integer", &describe(&value)))
    }

    fn call_bool(&self, spec: &FnSpec, args: Vec<Dynamic>) -> Result<bool, RuleError> {
        let value = self.call(spec, args)?;
        value
            .as_bool()
            .map_err(|_| self.type_error(spec, "a bool (true or false)", &describe(&value)))
    }

    fn call_string(&self, spec: &FnSpec, args: Vec<Dynamic>) -> Result<String, RuleError> {
        let value = self.call(spec, args)?;
        if value.is_string() {
            if let Ok(s) = value.clone().into_string() {
                return Ok(s);
            }
        }
        Err(self.type_error(spec, "a string", &describe(&value)))
    }

    fn call_array(&self, spec: &FnSpec, args: Vec<Dynamic>) -> Result<rhai::Array, RuleError> {
        let value = self.call(spec, args)?;
        if value.is_array() {
            if let Ok(a) = value.clone().into_array() {
                return Ok(a);
            }
        }
        Err(self.type_error(spec, "an array", &describe(&value)))
    }

    /// A parameter: an integer within `range`.
    fn param_int(
        &self,
        spec: &FnSpec,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<i64, RuleError> {
        let v = self.call_int(spec, vec![])?;
        if range.contains(&v) {
            Ok(v)
        } else {
            Err(self.value_error(
                spec,
                format!(
                    "{v} is out of range (must be {} to {})",
                    range.start(),
                    range.end()
                ),
            ))
        }
    }

    fn categories(&self) -> Result<Vec<CategoryDef>, RuleError> {
        let spec = &F_CATEGORIES;
        let expected = "an array of maps #{code, rank, kk, ru, en}";
        let items = self.call_array(spec, vec![])?;
        if items.is_empty() {
            return Err(self.value_error(spec, "the list of categories is empty"));
        }
        let mut out: Vec<CategoryDef> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let Some(map) = item.read_lock::<Map>().filter(|_| item.is_map()) else {
                return Err(self.type_error(
                    spec,
                    expected,
                    &format!("element {i}: {}", describe(item)),
                ));
            };
            for key in map.keys() {
                if !["code", "rank", "kk", "ru", "en"].contains(&key.as_str()) {
                    return Err(self.value_error(
                        spec,
                        format!("element {i}: unknown key {key:?} (keys are code, rank, kk, ru, en)"),
                    ));
                }
            }
            let string = |key: &str| -> Result<String, RuleError> {
                match map.get(key) {
                    Some(v) if v.is_string() => Ok(v.clone().into_string().unwrap_or_default()),
                    Some(v) => Err(self.type_error(
                        spec,
                        expected,
                        &format!("element {i}: {key} is {}", describe(v)),
                    )),
                    None => Err(self.value_error(spec, format!("element {i}: missing key {key}"))),
                }
            };
            let code = string("code")?;
            let kk = string("kk")?;
            let ru = string("ru")?;
            let en = string("en")?;
            let rank = match map.get("rank") {
                Some(v) => v.as_int().map_err(|_| {
                    self.type_error(
                        spec,
                        expected,
                        &format!("element {i}: rank is {}", describe(v)),
                    )
                })?,
                None => return Err(self.value_error(spec, format!("element {i}: missing key rank"))),
            };
            let code_ok = (1..=32).contains(&code.len())
                && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
            if !code_ok {
                return Err(self.value_error(
                    spec,
                    format!("element {i}: code {code:?} must match [a-z_]{{1,32}}"),
                ));
            }
            for (key, name) in [("kk", &kk), ("ru", &ru), ("en", &en)] {
                let n = name.trim().chars().count();
                if n == 0 || n > 200 {
                    return Err(self.value_error(
                        spec,
                        format!("category {code}: name {key} must have 1 to 200 characters"),
                    ));
                }
            }
            if let Some(other) = out.iter().find(|c| c.code == code) {
                return Err(self.value_error(
                    spec,
                    format!("duplicate category code {:?}", other.code),
                ));
            }
            if let Some(other) = out.iter().find(|c| c.rank == rank) {
                return Err(self.value_error(
                    spec,
                    format!(
                        "duplicate rank {rank} (categories {:?} and {code:?})",
                        other.code
                    ),
                ));
            }
            out.push(CategoryDef {
                code,
                rank,
                kk,
                ru,
                en,
            });
        }
        if !out.iter().any(|c| c.code == "general") {
            return Err(self.value_error(
                spec,
                "the category \"general\" (no benefit) must be present",
            ));
        }
        Ok(out)
    }

    fn free_access_time(&self) -> Result<Time, RuleError> {
        let spec = &F_FREE_ACCESS;
        let s = self.call_string(spec, vec![])?;
        parse_hh_mm(&s).ok_or_else(|| {
            self.value_error(spec, format!("{s:?} is not a time of day \"HH:MM\" (00:00 to 23:59)"))
        })
    }

    fn holidays(&self) -> Result<BTreeSet<Date>, RuleError> {
        let spec = &F_HOLIDAYS;
        let items = self.call_array(spec, vec![])?;
        let mut out = BTreeSet::new();
        for (i, item) in items.iter().enumerate() {
            if !item.is_string() {
                return Err(self.type_error(
                    spec,
                    "an array of \"YYYY-MM-DD\" strings",
                    &format!("element {i}: {}", describe(item)),
                ));
            }
            let s = item.clone().into_string().unwrap_or_default();
            let date = parse_date(&s).ok_or_else(|| {
                self.value_error(spec, format!("element {i}: {s:?} is not a valid date \"YYYY-MM-DD\""))
            })?;
            out.insert(date);
        }
        Ok(out)
    }

    fn working_weekdays(&self) -> Result<BTreeSet<i8>, RuleError> {
        let spec = &F_WEEKDAYS;
        let items = self.call_array(spec, vec![])?;
        if items.is_empty() {
            return Err(self.value_error(spec, "the list of working weekdays is empty"));
        }
        let mut out = BTreeSet::new();
        for (i, item) in items.iter().enumerate() {
            let day = item.as_int().map_err(|_| {
                self.type_error(
                    spec,
                    "an array of integers 1 to 7",
                    &format!("element {i}: {}", describe(item)),
                )
            })?;
            if !(1..=7).contains(&day) {
                return Err(self.value_error(
                    spec,
                    format!("element {i}: weekday {day} is out of range (1 = Monday .. 7 = Sunday)"),
                ));
            }
            out.insert(day as i8);
        }
        Ok(out)
    }

    fn order_key(&self, app: Map) -> Result<Vec<i64>, RuleError> {
        let spec = &F_ORDER_KEY;
        let expected = "an array of 1 to 4 integers";
        let items = self.call_array(spec, vec![Dynamic::from_map(app)])?;
        if items.is_empty() || items.len() > 4 {
            return Err(self.type_error(
                spec,
                expected,
                &format!("array of {} elements", items.len()),
            ));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_int().map_err(|_| {
                    self.type_error(spec, expected, &format!("element {i}: {}", describe(v)))
                })
            })
            .collect()
    }

    fn cohort(&self, app: Map) -> Result<i32, RuleError> {
        let spec = &F_COHORT;
        let v = self.call_int(spec, vec![Dynamic::from_map(app)])?;
        i32::try_from(v).map_err(|_| self.value_error(spec, format!("{v} is out of range")))
    }

    fn priority_eligible(&self, position: u64, free: u64) -> Result<bool, RuleError> {
        let to_int = |v: u64| Dynamic::from_int(i64::try_from(v).unwrap_or(i64::MAX));
        self.call_bool(&F_PRIORITY_ELIGIBLE, vec![to_int(position), to_int(free)])
    }

    fn lock_after_recall(&self, facts: &LockFacts) -> Result<Timestamp, RuleError> {
        let spec = &F_LOCK;
        let mut map = Map::new();
        map.insert("recalled_at".into(), facts.recalled_at.as_second().into());
        map.insert("free_access_at".into(), facts.free_access_at.as_second().into());
        let v = self.call_int(spec, vec![Dynamic::from_map(map)])?;
        Timestamp::from_second(v).map_err(|_| {
            self.value_error(spec, format!("{v} is not a valid instant (Unix seconds)"))
        })
    }

    fn publication_allowed(&self, date: Date) -> Result<bool, RuleError> {
        let mut map = Map::new();
        map.insert("year".into(), i64::from(date.year()).into());
        map.insert("month".into(), i64::from(date.month()).into());
        map.insert("day".into(), i64::from(date.day()).into());
        map.insert(
            "weekday".into(),
            i64::from(date.weekday().to_monday_one_offset()).into(),
        );
        self.call_bool(&F_PUBLICATION, vec![Dynamic::from_map(map)])
    }
}

fn app_map(app: &AppFacts<'_>, rank: i64) -> Map {
    let mut map = Map::new();
    map.insert("id".into(), app.id.into());
    map.insert("category".into(), app.category.into());
    map.insert("category_rank".into(), rank.into());
    map.insert("language".into(), app.language.into());
    map.insert("birth_date".into(), app.birth_date.to_string().into());
    map.insert("birth_year".into(), i64::from(app.birth_date.year()).into());
    map.insert("registered_at".into(), app.registered_at.as_second().into());
    map
}

/// Strict "HH:MM".
fn parse_hh_mm(s: &str) -> Option<Time> {
    let b = s.as_bytes();
    if b.len() != 5 || b[2] != b':' {
        return None;
    }
    let two = |x: &[u8]| -> Option<i8> {
        if x.iter().all(u8::is_ascii_digit) {
            Some(((x[0] - b'0') * 10 + (x[1] - b'0')) as i8)
        } else {
            None
        }
    };
    let (h, m) = (two(&b[0..2])?, two(&b[3..5])?);
    Time::new(h, m, 0, 0).ok()
}

/// Strict "YYYY-MM-DD".
fn parse_date(s: &str) -> Option<Date> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let digits = |x: &[u8]| -> Option<i32> {
        x.iter().try_fold(0i32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i32::from(c - b'0'))
        })
    };
    let y = i16::try_from(digits(&b[0..4])?).ok()?;
    let m = i8::try_from(digits(&b[5..7])?).ok()?;
    let d = i8::try_from(digits(&b[8..10])?).ok()?;
    Date::new(y, m, d).ok()
}

struct Inner {
    host: Host,
    hash: String,
    params: RuleParams,
}

#[derive(Clone)]
pub struct RuleSet {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleSet")
            .field("hash", &self.inner.hash)
            .field("files", &self.inner.host.files.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl RuleSet {
    /// The default rule files shipped in `rules/` (embedded at build time).
    pub fn default_files() -> BTreeMap<String, String> {
        [
            (CALENDAR_FILE, include_str!("../../rules/calendar.rhai")),
            (CATEGORIES_FILE, include_str!("../../rules/categories.rhai")),
            (ORDER_FILE, include_str!("../../rules/order.rhai")),
            (PHASES_FILE, include_str!("../../rules/phases.rhai")),
            (REFERRAL_FILE, include_str!("../../rules/referral.rhai")),
        ]
        .into_iter()
        .map(|(name, src)| (name.to_string(), src.to_string()))
        .collect()
    }

    /// Reads every `*.rhai` file of a directory (not recursive).
    pub fn read_dir(dir: &std::path::Path) -> Result<BTreeMap<String, String>, RuleError> {
        use std::io::Read;
        let dir_name = dir.display().to_string();
        let entries = std::fs::read_dir(dir)
            .map_err(|e| err(&dir_name, None, format!("cannot read the rules directory: {e}")))?;
        let mut paths = Vec::new();
        for entry in entries {
            let entry = entry
                .map_err(|e| err(&dir_name, None, format!("cannot read the rules directory: {e}")))?;
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("rhai") {
                continue;
            }
            let shown = path.display().to_string();
            let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
                return Err(err(&shown, None, "the file name is not valid UTF-8"));
            };
            let meta = std::fs::metadata(&path)
                .map_err(|e| err(&shown, None, format!("cannot read: {e}")))?;
            if meta.is_file() {
                paths.push((name, path, meta.len()));
            }
        }
        paths.sort();
        if paths.len() > MAX_FILES {
            return Err(err(
                &dir_name,
                None,
                format!("too many rule files ({} > {MAX_FILES})", paths.len()),
            ));
        }
        let mut files = BTreeMap::new();
        for (name, path, len) in paths {
            let shown = path.display().to_string();
            let too_big = || {
                err(
                    &shown,
                    None,
                    format!("the file is larger than {} KiB", MAX_FILE_BYTES / 1024),
                )
            };
            if len > MAX_FILE_BYTES as u64 {
                return Err(too_big());
            }
            let mut bytes = Vec::new();
            std::fs::File::open(&path)
                .and_then(|f| f.take(MAX_FILE_BYTES as u64 + 1).read_to_end(&mut bytes))
                .map_err(|e| err(&shown, None, format!("cannot read: {e}")))?;
            if bytes.len() > MAX_FILE_BYTES {
                return Err(too_big());
            }
            let source = String::from_utf8(bytes)
                .map_err(|e| err(&shown, None, format!("not valid UTF-8: {e}")))?;
            files.insert(name, source);
        }
        Ok(files)
    }

    /// Compiles and checks a rule set; never panics, never loops forever.
    pub fn compile(files: &BTreeMap<String, String>) -> Result<RuleSet, RuleError> {
        if files.len() > MAX_FILES {
            return Err(err(
                "rules",
                None,
                format!("too many rule files ({} > {MAX_FILES})", files.len()),
            ));
        }
        for (name, source) in files {
            if !RULE_FILES.contains(&name.as_str()) {
                return Err(err(
                    name,
                    None,
                    format!("unknown rule file (expected {})", RULE_FILES.join(", ")),
                ));
            }
            if source.len() > MAX_FILE_BYTES {
                return Err(err(
                    name,
                    None,
                    format!("the file is larger than {} KiB", MAX_FILE_BYTES / 1024),
                ));
            }
        }

        let engine = build_engine();
        let mut asts = BTreeMap::new();
        for file in RULE_FILES {
            let required: Vec<String> = REQUIRED
                .iter()
                .filter(|f| f.file == file)
                .map(|f| format!("fn {}", f.signature()))
                .collect();
            let Some(source) = files.get(file) else {
                return Err(err(
                    file,
                    None,
                    format!("missing rule file (it must define {})", required.join(", ")),
                ));
            };
            let parsed = {
                let _guard = StackGuard::enter();
                catch_unwind(AssertUnwindSafe(|| engine.compile(source)))
            };
            let mut ast = match parsed {
                Ok(Ok(ast)) => ast,
                Ok(Err(e)) => {
                    return Err(err(file, e.position().line(), e.err_type().to_string()));
                }
                Err(payload) => {
                    return Err(err(
                        file,
                        None,
                        format!(
                            "the script compiler failed (panic: {})",
                            panic_message(payload.as_ref())
                        ),
                    ));
                }
            };
            // Top-level statements are never run: rule files only define functions.
            ast.clear_statements();
            ast.set_source(file);
            asts.insert(file, ast);
        }

        for spec in REQUIRED {
            let ast = &asts[spec.file];
            let found = ast
                .iter_functions()
                .any(|f| f.name == spec.name && f.params.len() == spec.params.len());
            if !found {
                return Err(err(
                    spec.file,
                    None,
                    format!("missing function {}", spec.signature()),
                ));
            }
        }

        let host = Host {
            engine,
            asts,
            files: files.clone(),
        };

        let params = RuleParams {
            categories: host.categories()?,
            recall_window_hours: host.param_int(&F_RECALL_WINDOW, 0..=720)?,
            referral_validity_working_days: host.param_int(&F_VALIDITY, 1..=60)?,
            extension_days: host.param_int(&F_EXTENSION_DAYS, 0..=365)?,
            max_extensions: host.param_int(&F_MAX_EXTENSIONS, 0..=10)?,
            stop_list_days: host.param_int(&F_STOP_LIST_DAYS, 0..=365)?,
            priority_phase_working_days: host.param_int(&F_PRIORITY_DAYS, 0..=30)?,
            free_access_time: host.free_access_time()?,
            holidays: host.holidays()?,
            working_weekdays: host.working_weekdays()?,
        };

        let set = RuleSet {
            inner: Arc::new(Inner {
                hash: hash_files(files),
                host,
                params,
            }),
        };
        set.check_samples()?;
        Ok(set)
    }

    /// Calls every function with arguments once with sample inputs, so that a wrong return
    /// type (or a loop, or a failure) is refused at compile time.
    fn check_samples(&self) -> Result<(), RuleError> {
        let birth = Date::constant(2021, 3, 15);
        let registered = Timestamp::from_second(1_641_805_200).unwrap_or(Timestamp::UNIX_EPOCH);
        for (i, cat) in self.params().categories.iter().enumerate() {
            let app = AppFacts {
                id: "A-000001",
                category: &cat.code,
                language: if i % 2 == 0 { "kk" } else { "ru" },
                birth_date: birth,
                registered_at: registered,
            };
            self.order_key(&app)?;
            self.cohort(&app)?;
        }
        for (position, free) in [(1, 1), (5, 3), (1, 0), (1000, 4000)] {
            self.priority_eligible(position, free)?;
        }
        let t = |s: i64| Timestamp::from_second(s).unwrap_or(Timestamp::UNIX_EPOCH);
        for (recalled, free) in [(1_700_000_000, 1_700_100_000), (1_700_100_000, 1_700_000_000)] {
            self.lock_after_recall(&LockFacts {
                recalled_at: t(recalled),
                free_access_at: t(free),
            })?;
        }
        for date in [Date::constant(2024, 8, 15), Date::constant(2024, 9, 2)] {
            self.publication_allowed(date)?;
        }
        Ok(())
    }

    /// SHA-256 (hex) over the files in name order: the version's identity.
    pub fn hash(&self) -> String {
        self.inner.hash.clone()
    }
    pub fn files(&self) -> &BTreeMap<String, String> {
        &self.inner.host.files
    }
    pub fn params(&self) -> &RuleParams {
        &self.inner.params
    }
    /// Rank of a category code, `None` if the rules do not know it.
    pub fn category_rank(&self, code: &str) -> Option<i64> {
        self.inner
            .params
            .categories
            .iter()
            .find(|c| c.code == code)
            .map(|c| c.rank)
    }

    fn app_facts_map(&self, app: &AppFacts<'_>) -> Result<Map, RuleError> {
        let rank = self.category_rank(app.category).ok_or_else(|| {
            err(
                CATEGORIES_FILE,
                None,
                format!("unknown category code {:?}", app.category),
            )
        })?;
        Ok(app_map(app, rank))
    }

    /// The order key the rules give an application (compared lexicographically; the
    /// engine appends the application number as the final tie-break).
    pub fn order_key(&self, app: &AppFacts<'_>) -> Result<Vec<i64>, RuleError> {
        let map = self.app_facts_map(app)?;
        self.inner.host.order_key(map)
    }
    /// The cohort (queue) a child belongs to: by default its birth year.
    pub fn cohort(&self, app: &AppFacts<'_>) -> Result<i32, RuleError> {
        let map = self.app_facts_map(app)?;
        self.inner.host.cohort(map)
    }
    /// May an application at `queue_position` (1-based) take a priority-phase place when
    /// `places_free` places are still free in its cohort's priority phase?
    pub fn priority_eligible(
        &self,
        queue_position: u64,
        places_free: u64,
    ) -> Result<bool, RuleError> {
        self.inner
            .host
            .priority_eligible(queue_position, places_free)
    }
    /// Until when a recaller is locked out of priority-phase places.
    pub fn lock_after_recall(&self, facts: &LockFacts) -> Result<Timestamp, RuleError> {
        self.inner.host.lock_after_recall(facts)
    }
    /// May places be published on this local date (the August blackout says no)?
    pub fn publication_allowed(&self, date: Date) -> Result<bool, RuleError> {
        self.inner.host.publication_allowed(date)
    }
}

fn hash_files(files: &BTreeMap<String, String>) -> String {
    let mut hasher = Sha256::new();
    for (name, source) in files {
        hasher.update(name.as_bytes());
        hasher.update([0u8]);
        hasher.update(source.as_bytes());
        hasher.update([0u8]);
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(file: &str, source: &str) -> BTreeMap<String, String> {
        let mut files = RuleSet::default_files();
        files.insert(file.to_string(), source.to_string());
        files
    }

    fn compile_err(files: &BTreeMap<String, String>) -> RuleError {
        match RuleSet::compile(files) {
            Ok(_) => panic!("the rule set compiled but should have been refused"),
            Err(e) => e,
        }
    }

    #[test]
    fn stack_experiment() {
        let order = r#"
            fn order_key(app) { [f(30), 1] }
            fn f(n) {
                if n <= 0 { return 0; }
                1 + (1 + (1 + (1 + (1 + (1 + (1 + (1 + (1 + (1 + (1 + (1 + (1 + (1 + (1 + (1 + (1 + (1 + (1 + (1 + (1 + (1 + (1 + (1 + f(n - 1)))))))))))))))))))))))
            }
            fn cohort(app) { app.birth_year }
        "#;
        let r = std::thread::Builder::new()
            .stack_size(8 << 20)
            .spawn(move || RuleSet::compile(&with("order.rhai", order)).map(|_| ()))
            .unwrap()
            .join()
            .unwrap();
        eprintln!("result {r:?}");
        eprintln!(
            "max stack seen {} KiB",
            MAX_STACK_SEEN.load(std::sync::atomic::Ordering::Relaxed) / 1024
        );
    }
}
