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
    pub const MAX_STRING_SIZE: usize = 64 * 1024;
    /// Elements of an array (nested arrays count together, which also bounds nesting).
    pub const MAX_ARRAY_SIZE: usize = 1024;
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
    /// Stack a single call of a rule function may use, in bytes, measured from the start of
    /// the call and checked on every operation: a script past it is stopped with an error.
    pub const STACK_BUDGET: usize = 1024 * 1024;
    /// Stack that must be free when a call starts; if the calling thread has less, the call
    /// runs on a fresh stack of [`STACK_SIZE`] bytes (same thread), so the caller's stack
    /// size never matters. Covers [`STACK_BUDGET`] plus what Rhai's native code may use
    /// within one operation (e.g. formatting or comparing data nested
    /// [`MAX_ARRAY_SIZE`] deep).
    pub const STACK_RED_ZONE: usize = 4 * 1024 * 1024;
    /// Size of the fresh stack a call gets when the caller's is short (virtual memory;
    /// only the pages touched are used).
    pub const STACK_SIZE: usize = 16 * 1024 * 1024;
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
// Stack: Rhai aborts the process on a native stack overflow. Besides the call-level and
// expression-depth limits, (1) every call (and every parse) runs with at least
// STACK_RED_ZONE bytes of stack free, on a fresh stack if need be (`stacker`), and (2) every
// call records where its stack starts, and the progress callback (run on every operation)
// stops the script once it has used STACK_BUDGET bytes: deterministic, whatever the caller.

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

/// Runs `f` with enough stack, the stack guard armed, and panics caught.
fn sandboxed<R>(f: impl FnOnce() -> R) -> std::thread::Result<R> {
    stacker::maybe_grow(STACK_RED_ZONE, STACK_SIZE, || {
        let _guard = StackGuard::enter();
        catch_unwind(AssertUnwindSafe(f))
    })
}

fn stack_exhausted() -> bool {
    let base = STACK_BASE.with(|b| b.get());
    base != 0 && base.abs_diff(stack_address()) > STACK_BUDGET
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
    /// Calls a rule function in the sandbox. `convert` checks and converts the returned value
    /// and runs in the sandbox too, so that no script value (possibly deeply nested) is ever
    /// formatted, compared or dropped on the caller's stack.
    fn call<T>(
        &self,
        spec: &FnSpec,
        args: Vec<Dynamic>,
        convert: impl FnOnce(Dynamic) -> Result<T, RuleError>,
    ) -> Result<T, RuleError> {
        let Some(ast) = self.asts.get(spec.file) else {
            return Err(err(spec.file, None, "missing rule file"));
        };
        let result = sandboxed(|| {
            let mut scope = Scope::new();
            let options = CallFnOptions::new().eval_ast(false).rewind_scope(true);
            match self
                .engine
                .call_fn_with_options::<Dynamic>(options, &mut scope, ast, spec.name, args)
            {
                Ok(value) => convert(value.flatten()),
                Err(e) => Err(self.runtime_error(spec, &e)),
            }
        });
        result.unwrap_or_else(|payload| {
            Err(err(
                spec.file,
                None,
                format!(
                    "{}: the script engine failed (panic: {})",
                    spec.signature(),
                    panic_message(payload.as_ref())
                ),
            ))
        })
    }

    fn runtime_error(&self, spec: &FnSpec, error: &EvalAltResult) -> RuleError {
        let sig = spec.signature();
        let (inner, pos) = innermost(error);
        let message = match inner {
            EvalAltResult::ErrorTooManyOperations(..) => format!(
                "{sig}: exceeded the limit of {MAX_OPERATIONS} operations per call (endless loop?)"
            ),
            EvalAltResult::ErrorStackOverflow(..) => format!(
                "{sig}: exceeded the limit of {MAX_CALL_LEVELS} nested function calls \
                 (endless recursion?)"
            ),
            EvalAltResult::ErrorDataTooLarge(what, ..) => format!(
                "{sig}: {what} exceeds the limit (strings {MAX_STRING_SIZE} bytes, arrays \
                 {MAX_ARRAY_SIZE} elements, maps {MAX_MAP_SIZE} entries)"
            ),
            EvalAltResult::ErrorTooManyVariables(..) => {
                format!("{sig}: exceeded the limit of {MAX_VARIABLES} variables")
            }
            EvalAltResult::ErrorTerminated(token, ..)
                if token.clone().into_string().ok().as_deref() == Some(STACK_TOKEN) =>
            {
                format!(
                    "{sig}: exceeded the stack limit of {} KiB (recursion or data nested too deep?)",
                    STACK_BUDGET / 1024
                )
            }
            _ => {
                let mut text = error.to_string();
                if text.len() > 500 {
                    let mut cut = 500;
                    while !text.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    text.truncate(cut);
                    text.push('…');
                }
                format!("{sig}: {text}")
            }
        };
        // Rhai drops the position of limit errors ("system exceptions") at the outermost
        // call: fall back to the line of the function that was called.
        let line = pos.line().or_else(|| {
            self.files
                .get(spec.file)
                .and_then(|src| fn_line(src, spec.name))
        });
        err(spec.file, line, message)
    }

    /// An error about a returned value: points at the line of the function definition.
    fn value_error(&self, spec: &FnSpec, message: impl std::fmt::Display) -> RuleError {
        let line = self
            .files
            .get(spec.file)
            .and_then(|src| fn_line(src, spec.name));
        err(spec.file, line, format!("{}: {message}", spec.signature()))
    }

    fn type_error(&self, spec: &FnSpec, expected: &str, got: impl std::fmt::Display) -> RuleError {
        self.value_error(spec, format_args!("must return {expected}, got {got}"))
    }

    fn call_int(&self, spec: &FnSpec, args: Vec<Dynamic>) -> Result<i64, RuleError> {
        self.call(spec, args, |v| {
            v.as_int()
                .map_err(|_| self.type_error(spec, "an integer", describe(&v)))
        })
    }

    fn call_bool(&self, spec: &FnSpec, args: Vec<Dynamic>) -> Result<bool, RuleError> {
        self.call(spec, args, |v| {
            v.as_bool()
                .map_err(|_| self.type_error(spec, "a bool (true or false)", describe(&v)))
        })
    }

    /// Calls a function that must return an array and converts it element by element.
    fn call_array<T>(
        &self,
        spec: &FnSpec,
        args: Vec<Dynamic>,
        expected: &str,
        convert: impl FnOnce(rhai::Array) -> Result<T, RuleError>,
    ) -> Result<T, RuleError> {
        self.call(spec, args, |v| {
            if !v.is_array() {
                return Err(self.type_error(spec, expected, describe(&v)));
            }
            let array = v
                .into_array()
                .map_err(|got| self.type_error(spec, expected, got))?;
            convert(array)
        })
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
        self.call_array(spec, vec![], expected, |items| {
            if items.is_empty() {
                return Err(self.value_error(spec, "the list of categories is empty"));
            }
            let mut out: Vec<CategoryDef> = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let Some(map) = item.read_lock::<Map>() else {
                    return Err(self.type_error(
                        spec,
                        expected,
                        format!("element {i}: {}", describe(item)),
                    ));
                };
                let category = self.category(spec, expected, i, &map)?;
                if out.iter().any(|c| c.code == category.code) {
                    return Err(self.value_error(
                        spec,
                        format!("duplicate category code {:?}", category.code),
                    ));
                }
                if let Some(other) = out.iter().find(|c| c.rank == category.rank) {
                    return Err(self.value_error(
                        spec,
                        format!(
                            "duplicate rank {} (categories {:?} and {:?})",
                            category.rank, other.code, category.code
                        ),
                    ));
                }
                out.push(category);
            }
            if !out.iter().any(|c| c.code == "general") {
                return Err(self.value_error(
                    spec,
                    "the category \"general\" (no benefit) must be present",
                ));
            }
            Ok(out)
        })
    }

    fn category(
        &self,
        spec: &FnSpec,
        expected: &str,
        i: usize,
        map: &Map,
    ) -> Result<CategoryDef, RuleError> {
        const KEYS: [&str; 5] = ["code", "rank", "kk", "ru", "en"];
        if let Some(key) = map.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(self.value_error(
                spec,
                format!("element {i}: unknown key {key:?} (the keys are code, rank, kk, ru, en)"),
            ));
        }
        let field = |key: &str| {
            map.get(key)
                .ok_or_else(|| self.value_error(spec, format!("element {i}: missing key {key}")))
        };
        let string = |key: &str| -> Result<String, RuleError> {
            let v = field(key)?;
            if v.is_string() {
                if let Ok(s) = v.clone().into_string() {
                    return Ok(s);
                }
            }
            Err(self.type_error(
                spec,
                expected,
                format!("element {i}: {key} is {}", describe(v)),
            ))
        };
        let code = string("code")?;
        let code_ok = (1..=32).contains(&code.len())
            && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        if !code_ok {
            return Err(self.value_error(
                spec,
                format!("element {i}: code {code:?} must match [a-z_]{{1,32}}"),
            ));
        }
        let rank_value = field("rank")?;
        let rank = rank_value.as_int().map_err(|_| {
            self.type_error(
                spec,
                expected,
                format!("element {i}: rank is {}", describe(rank_value)),
            )
        })?;
        let (kk, ru, en) = (string("kk")?, string("ru")?, string("en")?);
        for (key, name) in [("kk", &kk), ("ru", &ru), ("en", &en)] {
            let n = name.trim().chars().count();
            if n == 0 || n > 200 {
                return Err(self.value_error(
                    spec,
                    format!("category {code}: the name {key} must have 1 to 200 characters"),
                ));
            }
        }
        Ok(CategoryDef {
            code,
            rank,
            kk,
            ru,
            en,
        })
    }

    fn free_access_time(&self) -> Result<Time, RuleError> {
        let spec = &F_FREE_ACCESS;
        self.call(spec, vec![], |v| {
            let text = if v.is_string() {
                v.clone().into_string().ok()
            } else {
                None
            };
            let Some(text) = text else {
                return Err(self.type_error(spec, "a string \"HH:MM\"", describe(&v)));
            };
            parse_hh_mm(&text).ok_or_else(|| {
                self.value_error(
                    spec,
                    format!("{text:?} is not a time of day \"HH:MM\" (00:00 to 23:59)"),
                )
            })
        })
    }

    fn holidays(&self) -> Result<BTreeSet<Date>, RuleError> {
        let spec = &F_HOLIDAYS;
        let expected = "an array of \"YYYY-MM-DD\" strings";
        self.call_array(spec, vec![], expected, |items| {
            let mut out = BTreeSet::new();
            for (i, item) in items.iter().enumerate() {
                let text = if item.is_string() {
                    item.clone().into_string().ok()
                } else {
                    None
                };
                let Some(text) = text else {
                    return Err(self.type_error(
                        spec,
                        expected,
                        format!("element {i}: {}", describe(item)),
                    ));
                };
                let date = parse_date(&text).ok_or_else(|| {
                    self.value_error(
                        spec,
                        format!("element {i}: {text:?} is not a valid date \"YYYY-MM-DD\""),
                    )
                })?;
                out.insert(date);
            }
            Ok(out)
        })
    }

    fn working_weekdays(&self) -> Result<BTreeSet<i8>, RuleError> {
        let spec = &F_WEEKDAYS;
        let expected = "an array of integers 1 to 7";
        self.call_array(spec, vec![], expected, |items| {
            if items.is_empty() {
                return Err(self.value_error(spec, "the list of working weekdays is empty"));
            }
            let mut out = BTreeSet::new();
            for (i, item) in items.iter().enumerate() {
                let day = item.as_int().map_err(|_| {
                    self.type_error(spec, expected, format!("element {i}: {}", describe(item)))
                })?;
                let day = i8::try_from(day)
                    .ok()
                    .filter(|d| (1..=7).contains(d))
                    .ok_or_else(|| {
                        self.value_error(
                            spec,
                            format!(
                                "element {i}: weekday {day} is out of range \
                                 (1 = Monday .. 7 = Sunday)"
                            ),
                        )
                    })?;
                out.insert(day);
            }
            Ok(out)
        })
    }

    fn order_key(&self, app: Map) -> Result<Vec<i64>, RuleError> {
        let spec = &F_ORDER_KEY;
        let expected = "an array of 1 to 4 integers";
        self.call_array(spec, vec![Dynamic::from_map(app)], expected, |items| {
            if items.is_empty() || items.len() > 4 {
                return Err(self.type_error(
                    spec,
                    expected,
                    format!("an array of {} elements", items.len()),
                ));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_int().map_err(|_| {
                        self.type_error(spec, expected, format!("element {i}: {}", describe(v)))
                    })
                })
                .collect()
        })
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
        map.insert(
            "free_access_at".into(),
            facts.free_access_at.as_second().into(),
        );
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
        let entries = std::fs::read_dir(dir).map_err(|e| {
            err(
                &dir_name,
                None,
                format!("cannot read the rules directory: {e}"),
            )
        })?;
        let mut paths = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| {
                err(
                    &dir_name,
                    None,
                    format!("cannot read the rules directory: {e}"),
                )
            })?;
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("rhai") {
                continue;
            }
            let shown = path.display().to_string();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .map(str::to_string)
            else {
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
            // Rhai ends a line at a carriage return alone, editors and `str::lines` do
            // not: the line numbers of errors would point past the file as people see
            // it. Refused rather than rewritten: what is activated is what was written.
            let bytes = source.as_bytes();
            if let Some(at) =
                (0..bytes.len()).find(|&i| bytes[i] == b'\r' && bytes.get(i + 1) != Some(&b'\n'))
            {
                let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
                return Err(err(
                    name,
                    Some(line),
                    "a carriage return without a line feed: save the file with LF (or CRLF) line endings".to_string(),
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
            let parsed = sandboxed(|| engine.compile(source));
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
        for (recalled, free) in [
            (1_700_000_000, 1_700_100_000),
            (1_700_100_000, 1_700_000_000),
        ] {
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

    /// Runs `f` on a stack with room for many rule calls.
    ///
    /// Every rule call needs [`limits::STACK_RED_ZONE`] bytes of free stack and, on a thread
    /// with less (any thread Rust spawns with the default 2 MiB), allocates a fresh stack for
    /// itself (about 30 µs). Wrap bulk work, such as recomputing every order key when a
    /// rule set is activated, in `with_stack` so the calls inside share one big stack.
    /// Panics in `f` propagate as usual.
    pub fn with_stack<R>(f: impl FnOnce() -> R) -> R {
        stacker::maybe_grow(2 * STACK_RED_ZONE, 2 * STACK_SIZE, f)
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

    fn refused(files: &BTreeMap<String, String>) -> RuleError {
        match RuleSet::compile(files) {
            Ok(_) => panic!("the rule set compiled but should have been refused"),
            Err(e) => e,
        }
    }

    fn defaults() -> RuleSet {
        RuleSet::compile(&RuleSet::default_files()).expect("the defaults compile")
    }

    /// Found by the rule_loader fuzz target: Rhai ends a line at a lone CR, so its error
    /// lines pointed past the file as editors show it. Lone CRs are refused, naming the
    /// line; CRLF files compile.
    #[test]
    fn a_lone_carriage_return_is_refused_with_its_line() {
        let phases = RuleSet::default_files()["phases.rhai"].clone();
        let e = refused(&with("phases.rhai", &format!("// a\n// b\r// c\n{phases}")));
        assert_eq!((e.file.as_str(), e.line), ("phases.rhai", Some(2)), "{e:?}");
        assert!(e.message.contains("carriage return"), "{e:?}");
        let crlf: BTreeMap<String, String> = RuleSet::default_files()
            .into_iter()
            .map(|(k, v)| (k, v.replace('\n', "\r\n")))
            .collect();
        RuleSet::compile(&crlf).expect("CRLF line endings compile");
    }

    fn app<'a>(category: &'a str, registered_at: i64) -> AppFacts<'a> {
        AppFacts {
            id: "A-1",
            category,
            language: "kk",
            birth_date: Date::constant(2021, 6, 30),
            registered_at: Timestamp::from_second(registered_at).unwrap(),
        }
    }

    const ORDER_OK_COHORT: &str = "fn cohort(app) { app.birth_year }\n";

    fn assert_mentions(e: &RuleError, words: &[&str]) {
        for w in words {
            assert!(
                e.message.to_lowercase().contains(&w.to_lowercase()),
                "error {e} does not mention {w:?}"
            );
        }
    }

    #[test]
    fn rule_set_is_clone_send_sync() {
        fn check<T: Clone + Send + Sync + 'static>() {}
        check::<RuleSet>();
    }

    #[test]
    fn defaults_compile_and_give_the_defaults() {
        let set = defaults();
        let p = set.params();
        let codes: Vec<&str> = p.categories.iter().map(|c| c.code.as_str()).collect();
        assert_eq!(
            codes,
            [
                "military",
                "special_bodies",
                "disability",
                "large_family",
                "orphan",
                "teacher",
                "general"
            ]
        );
        let ranks: Vec<i64> = p.categories.iter().map(|c| c.rank).collect();
        assert_eq!(ranks, [1, 2, 3, 4, 5, 6, 7]);
        let general = p.categories.last().unwrap();
        assert_eq!(
            (
                general.kk.as_str(),
                general.ru.as_str(),
                general.en.as_str()
            ),
            ("Жеңілдіксіз", "Без льготы", "No benefit")
        );
        assert_eq!(p.recall_window_hours, 24);
        assert_eq!(p.referral_validity_working_days, 5);
        assert_eq!(p.extension_days, 30);
        assert_eq!(p.max_extensions, 1);
        assert_eq!(p.stop_list_days, 10);
        assert_eq!(p.priority_phase_working_days, 3);
        assert_eq!(p.free_access_time, Time::constant(6, 57, 0, 0));
        assert_eq!(p.working_weekdays, BTreeSet::from([1, 2, 3, 4, 5]));
        for d in [
            Date::constant(2018, 1, 1),
            Date::constant(2021, 12, 17),
            Date::constant(2023, 3, 22),
            Date::constant(2023, 6, 28),
            Date::constant(2024, 10, 25),
            Date::constant(2027, 12, 16),
        ] {
            assert!(p.holidays.contains(&d), "{d} should be a holiday");
        }
        for d in [
            Date::constant(2021, 10, 25),
            Date::constant(2022, 12, 17),
            Date::constant(2024, 3, 25),
        ] {
            assert!(!p.holidays.contains(&d), "{d} should not be a holiday");
        }
        assert_eq!(set.category_rank("military"), Some(1));
        assert_eq!(set.category_rank("general"), Some(7));
        assert_eq!(set.category_rank("nobody"), None);
    }

    #[test]
    fn default_order_key_and_cohort() {
        let set = defaults();
        let military = set.order_key(&app("military", 2_000)).unwrap();
        let general = set.order_key(&app("general", 1_000)).unwrap();
        assert_eq!(military, vec![1, 2_000]);
        assert_eq!(general, vec![7, 1_000]);
        assert!(military < general, "military ranks before general");
        let earlier = set.order_key(&app("teacher", 1_000)).unwrap();
        let later = set.order_key(&app("teacher", 1_001)).unwrap();
        assert!(earlier < later, "earlier registration first");
        assert_eq!(set.cohort(&app("general", 0)).unwrap(), 2021);
        let e = set.order_key(&app("astronaut", 0)).unwrap_err();
        assert_eq!(e.file, "categories.rhai");
        assert_mentions(&e, &["unknown category", "astronaut"]);
    }

    #[test]
    fn default_phase_and_referral_functions() {
        let set = defaults();
        assert!(set.priority_eligible(1, 1).unwrap());
        assert!(set.priority_eligible(4000, 4000).unwrap());
        assert!(!set.priority_eligible(4001, 4000).unwrap());
        assert!(!set.priority_eligible(1, 0).unwrap());
        assert!(set.priority_eligible(u64::MAX, u64::MAX).unwrap());
        let t = |s| Timestamp::from_second(s).unwrap();
        let lock = LockFacts {
            recalled_at: t(1_000),
            free_access_at: t(5_000),
        };
        assert_eq!(set.lock_after_recall(&lock).unwrap(), t(5_000));
        let late = LockFacts {
            recalled_at: t(9_000),
            free_access_at: t(5_000),
        };
        assert_eq!(set.lock_after_recall(&late).unwrap(), t(9_000));
        assert!(!set.publication_allowed(Date::constant(2024, 8, 1)).unwrap());
        assert!(!set
            .publication_allowed(Date::constant(2024, 8, 31))
            .unwrap());
        assert!(set
            .publication_allowed(Date::constant(2024, 7, 31))
            .unwrap());
        assert!(set.publication_allowed(Date::constant(2024, 9, 1)).unwrap());
    }

    #[test]
    fn publication_allowed_sees_the_iso_weekday() {
        let phases = RuleSet::default_files()["phases.rhai"].replace(
            "date.month != 8",
            "date.weekday <= 5 && date.year > 2000 && date.day > 0",
        );
        let set = RuleSet::compile(&with("phases.rhai", &phases)).unwrap();
        // 2024-09-02 is a Monday, 2024-09-08 a Sunday.
        assert!(set.publication_allowed(Date::constant(2024, 9, 2)).unwrap());
        assert!(!set.publication_allowed(Date::constant(2024, 9, 8)).unwrap());
    }

    #[test]
    fn hash_is_sha256_over_names_and_sources() {
        let files = RuleSet::default_files();
        let set = RuleSet::compile(&files).unwrap();
        let mut h = Sha256::new();
        for (name, src) in &files {
            h.update(name.as_bytes());
            h.update([0]);
            h.update(src.as_bytes());
            h.update([0]);
        }
        assert_eq!(set.hash(), hex::encode(h.finalize()));
        assert_eq!(set.hash().len(), 64);
        assert_eq!(set.files(), &files);
        let changed = with("order.rhai", &format!("{}\n", files["order.rhai"]));
        assert_ne!(RuleSet::compile(&changed).unwrap().hash(), set.hash());
    }

    #[test]
    fn broken_syntax_names_file_and_line() {
        let src = "fn order_key(app) {\n    [app.category_rank,\n    let x = 1;\n}\n";
        let e = refused(&with("order.rhai", src));
        assert_eq!(e.file, "order.rhai");
        assert_eq!(e.line, Some(3), "{e}");
        assert!(!e.message.is_empty());
        let e = refused(&with("calendar.rhai", "fn holidays() { [ }"));
        assert_eq!(e.file, "calendar.rhai");
        assert_eq!(e.line, Some(1), "{e}");
    }

    #[test]
    fn wrong_return_type_of_a_parameter_is_refused() {
        let referral = RuleSet::default_files()["referral.rhai"].replace(
            "fn recall_window_hours() {\n    24\n}",
            "fn recall_window_hours() {\n    \"x\"\n}",
        );
        let e = refused(&with("referral.rhai", &referral));
        assert_eq!(e.file, "referral.rhai");
        let line = referral
            .lines()
            .position(|l| l.starts_with("fn recall_window_hours"))
            .unwrap()
            + 1;
        assert_eq!(e.line, Some(line), "{e}");
        assert_mentions(&e, &["recall_window_hours()", "integer", "string \"x\""]);
    }

    #[test]
    fn wrong_return_type_of_order_key_is_refused() {
        let src = format!("fn order_key(app) {{ \"first\" }}\n{ORDER_OK_COHORT}");
        let e = refused(&with("order.rhai", &src));
        assert_eq!(e.file, "order.rhai");
        assert_eq!(e.line, Some(1));
        assert_mentions(&e, &["order_key(app)", "array", "string"]);

        let src = format!("fn order_key(app) {{ [1, \"x\"] }}\n{ORDER_OK_COHORT}");
        let e = refused(&with("order.rhai", &src));
        assert_mentions(&e, &["order_key(app)", "element 1", "string"]);

        let src = format!("fn order_key(app) {{ [1, 2, 3, 4, 5] }}\n{ORDER_OK_COHORT}");
        let e = refused(&with("order.rhai", &src));
        assert_mentions(&e, &["1 to 4 integers", "5 elements"]);

        let src = "fn order_key(app) { [1] }\nfn cohort(app) { true }\n";
        let e = refused(&with("order.rhai", src));
        assert_eq!(e.line, Some(2));
        assert_mentions(&e, &["cohort(app)", "integer", "bool"]);

        let phases = RuleSet::default_files()["phases.rhai"]
            .replace("queue_position <= places_free", "queue_position");
        let e = refused(&with("phases.rhai", &phases));
        assert_eq!(e.file, "phases.rhai");
        assert_mentions(
            &e,
            &["priority_eligible(queue_position, places_free)", "bool"],
        );
    }

    #[test]
    fn missing_function_or_file_is_refused() {
        let src = "fn order_key(app) { [app.category_rank] }\n";
        let e = refused(&with("order.rhai", src));
        assert_eq!(e.file, "order.rhai");
        assert_eq!(e.line, None);
        assert_eq!(e.message, "missing function cohort(app)");

        // Right name, wrong number of parameters.
        let src = "fn order_key(app, extra) { [1] }\nfn cohort(app) { 1 }\n";
        let e = refused(&with("order.rhai", src));
        assert_eq!(e.message, "missing function order_key(app)");

        let mut files = RuleSet::default_files();
        files.remove("calendar.rhai");
        let e = refused(&files);
        assert_eq!(e.file, "calendar.rhai");
        assert_mentions(&e, &["missing rule file", "holidays()"]);

        let e = refused(&with("calender.rhai", "fn holidays() { [] }"));
        assert_eq!(e.file, "calender.rhai");
        assert_mentions(&e, &["unknown rule file"]);
    }

    #[test]
    fn endless_loop_hits_the_operations_limit() {
        let src = format!("fn order_key(app) {{\n    loop {{}}\n}}\n{ORDER_OK_COHORT}");
        let e = refused(&with("order.rhai", &src));
        assert_eq!(e.file, "order.rhai");
        assert_eq!(e.line, Some(1), "{e}");
        assert_mentions(&e, &["order_key(app)", "operations", "limit"]);
        // Still alive, and a parameter function that loops is refused the same way.
        let calendar = "fn holidays() { let x = 0; while true { x += 1; } [] }\n\
                        fn working_weekdays() { [1] }";
        let e = refused(&with("calendar.rhai", calendar));
        assert_eq!(e.file, "calendar.rhai");
        assert_mentions(&e, &["holidays()", "operations"]);
    }

    #[test]
    fn deep_recursion_is_an_error_not_an_abort() {
        let src = format!(
            "fn order_key(app) {{ [f(0)] }}\nfn f(n) {{\n    f(n + 1)\n}}\n{ORDER_OK_COHORT}"
        );
        let e = refused(&with("order.rhai", &src));
        assert_eq!(e.file, "order.rhai");
        assert_mentions(
            &e,
            &["order_key(app)", "nested function calls", "recursion"],
        );
        assert_eq!(e.line, Some(1), "{e}");
    }

    #[test]
    fn heavy_work_on_a_tiny_thread_is_contained() {
        // Each of these would overflow a 64 KiB thread without the sandbox's own stack.
        let nest = format!("{}f(n - 1){}", "1 + (".repeat(10), ")".repeat(10));
        let deep = "let a = []; for i in 0..1020 { a = [a]; }";
        let cases = [
            // Recursion with big expressions: stopped by the call-level limit.
            (
                format!("fn f(n) {{ if n <= 0 {{ return 0; }} {nest} }}\nfn order_key(app) {{ [f(1000)] }}"),
                Some("nested function calls"),
            ),
            // The same within the limit: fine.
            (
                format!("fn f(n) {{ if n <= 0 {{ return 0; }} {nest} }}\nfn order_key(app) {{ [f(25)] }}"),
                None,
            ),
            // Data nested as deep as the limits allow, formatted: fine.
            (
                format!("fn order_key(app) {{ {deep} [a.to_string().len()] }}"),
                None,
            ),
            // ... compared: Rhai recurses through the engine, the stack guard stops it.
            (
                format!("fn order_key(app) {{ {deep} let b = a; [if a == b {{ 1 }} else {{ 2 }}] }}"),
                Some("stack limit"),
            ),
            // ... thrown as an error value, returned as a key element.
            (format!("fn order_key(app) {{ {deep} throw a; }}"), Some("[[[[")),
            (format!("fn order_key(app) {{ {deep} [a] }}"), Some("element 0: array of 1 elements")),
        ];
        for (src, expected) in cases {
            let src = format!("{src}\n{ORDER_OK_COHORT}");
            let result = std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || RuleSet::compile(&with("order.rhai", &src)).map(|_| ()))
                .unwrap()
                .join()
                .expect("the thread did not panic");
            match (result, expected) {
                (Ok(()), None) => {}
                (Err(e), Some(words)) => {
                    assert_eq!(e.file, "order.rhai");
                    assert_mentions(&e, &["order_key(app)", words]);
                    assert!(e.message.len() < 700, "long message: {e}");
                }
                (result, expected) => panic!("expected {expected:?}, got {result:?}"),
            }
        }
    }

    #[test]
    fn unbounded_string_and_array_growth_is_an_error() {
        let src = format!(
            "fn order_key(app) {{\n    let s = \"x\";\n    loop {{ s += s; }}\n}}\n{ORDER_OK_COHORT}"
        );
        let e = refused(&with("order.rhai", &src));
        assert_eq!(e.line, Some(1), "{e}");
        assert_mentions(&e, &["order_key(app)", "string", "exceeds the limit"]);

        let src =
            format!("fn order_key(app) {{ let a = []; loop {{ a.push(1); }} }}\n{ORDER_OK_COHORT}");
        let e = refused(&with("order.rhai", &src));
        assert_mentions(&e, &["array", "exceeds the limit"]);

        let src =
            format!("fn order_key(app) {{ let a = []; loop {{ a = [a]; }} }}\n{ORDER_OK_COHORT}");
        let e = refused(&with("order.rhai", &src));
        assert_mentions(&e, &["array", "exceeds the limit"]);

        let src = format!(
            "fn order_key(app) {{ let s = \"x\"; s.pad(100000000, \"y\"); [1] }}\n{ORDER_OK_COHORT}"
        );
        let e = refused(&with("order.rhai", &src));
        assert_mentions(&e, &["exceeds the limit"]);
    }

    #[test]
    fn eval_is_refused() {
        let src = format!("fn order_key(app) {{ [eval(\"1\")] }}\n{ORDER_OK_COHORT}");
        let e = refused(&with("order.rhai", &src));
        assert_eq!(e.file, "order.rhai");
        assert_eq!(e.line, Some(1));
        assert_mentions(&e, &["eval"]);

        let src = format!("fn order_key(app) {{ [call(Fn(\"eval\"), \"1\")] }}\n{ORDER_OK_COHORT}");
        let e = refused(&with("order.rhai", &src));
        assert_mentions(&e, &["eval"]);
    }

    #[test]
    fn no_time_no_sleep_no_closures() {
        let src = format!("fn order_key(app) {{ sleep(100); [1] }}\n{ORDER_OK_COHORT}");
        let e = refused(&with("order.rhai", &src));
        assert_mentions(&e, &["function not found", "sleep"]);

        let src = format!("fn order_key(app) {{ [timestamp().elapsed] }}\n{ORDER_OK_COHORT}");
        let e = refused(&with("order.rhai", &src));
        assert_mentions(&e, &["function not found", "timestamp"]);

        let src =
            format!("fn order_key(app) {{ let f = |x| x + 1; [f.call(1)] }}\n{ORDER_OK_COHORT}");
        let e = refused(&with("order.rhai", &src));
        assert_eq!(e.line, Some(1));
        assert_mentions(&e, &["'|'"]);

        // print and debug are accepted and go nowhere.
        let src = format!(
            "fn order_key(app) {{ print(app.id); debug(app); [app.category_rank] }}\n{ORDER_OK_COHORT}"
        );
        let set = RuleSet::compile(&with("order.rhai", &src)).unwrap();
        assert_eq!(set.order_key(&app("general", 5)).unwrap(), vec![7]);
    }

    #[test]
    fn typos_in_scripts_are_caught_at_compile() {
        // Undefined variable: refused by the parser (strict variables).
        let src = format!("fn order_key(app) {{\n  [ap.category_rank]\n}}\n{ORDER_OK_COHORT}");
        let e = refused(&with("order.rhai", &src));
        assert_eq!(e.line, Some(2), "{e}");
        assert_mentions(&e, &["ap"]);
        // Unknown property: refused when compile calls the function.
        let src = format!("fn order_key(app) {{\n  [app.rank]\n}}\n{ORDER_OK_COHORT}");
        let e = refused(&with("order.rhai", &src));
        assert_eq!(e.line, Some(2), "{e}");
        assert_mentions(&e, &["order_key(app)", "rank"]);
    }

    #[test]
    fn top_level_statements_are_never_run() {
        let src =
            format!("loop {{}}\nfn order_key(app) {{ [app.category_rank] }}\n{ORDER_OK_COHORT}");
        let set = RuleSet::compile(&with("order.rhai", &src)).unwrap();
        assert_eq!(set.order_key(&app("military", 5)).unwrap(), vec![1]);
    }

    #[test]
    fn bad_categories_are_refused() {
        let cats = RuleSet::default_files()["categories.rhai"].replace("\"teacher\"", "\"orphan\"");
        let e = refused(&with("categories.rhai", &cats));
        assert_eq!(e.file, "categories.rhai");
        assert_mentions(&e, &["categories()", "duplicate category code", "orphan"]);

        let cats = RuleSet::default_files()["categories.rhai"].replace("rank: 6", "rank: 5");
        let e = refused(&with("categories.rhai", &cats));
        assert_mentions(&e, &["duplicate rank 5"]);

        let cats = RuleSet::default_files()["categories.rhai"].replace("\"general\"", "\"others\"");
        let e = refused(&with("categories.rhai", &cats));
        assert_mentions(&e, &["\"general\"", "must be present"]);

        let cats =
            RuleSet::default_files()["categories.rhai"].replace("\"teacher\"", "\"Teacher\"");
        let e = refused(&with("categories.rhai", &cats));
        assert_mentions(&e, &["\"Teacher\"", "[a-z_]{1,32}"]);

        let e = refused(&with("categories.rhai", "fn categories() { [] }"));
        assert_eq!(e.line, Some(1));
        assert_mentions(&e, &["empty"]);

        let e = refused(&with(
            "categories.rhai",
            "fn categories() { [#{code: \"general\", rank: \"1\", kk: \"a\", ru: \"b\", en: \"c\"}] }",
        ));
        assert_mentions(&e, &["rank is string"]);

        let e = refused(&with(
            "categories.rhai",
            "fn categories() { [#{code: \"general\", rank: 1, kk: \"a\", ru: \"b\"}] }",
        ));
        assert_mentions(&e, &["missing key en"]);

        let e = refused(&with("categories.rhai", "fn categories() { [1] }"));
        assert_mentions(&e, &["element 0", "integer 1"]);
    }

    #[test]
    fn out_of_range_parameters_are_refused() {
        let referral = RuleSet::default_files()["referral.rhai"].replace(
            "fn stop_list_days() {\n    10\n}",
            "fn stop_list_days() {\n    1000\n}",
        );
        let e = refused(&with("referral.rhai", &referral));
        assert_eq!(e.file, "referral.rhai");
        assert!(e.line.is_some());
        assert_mentions(
            &e,
            &["stop_list_days()", "1000", "out of range", "0 to 365"],
        );

        let referral = RuleSet::default_files()["referral.rhai"].replace(
            "fn referral_validity_working_days() {\n    5\n}",
            "fn referral_validity_working_days() {\n    0\n}",
        );
        let e = refused(&with("referral.rhai", &referral));
        assert_mentions(&e, &["referral_validity_working_days()", "1 to 60"]);

        let phases = RuleSet::default_files()["phases.rhai"].replace("\"06:57\"", "\"24:00\"");
        let e = refused(&with("phases.rhai", &phases));
        assert_mentions(&e, &["free_access_time()", "24:00", "HH:MM"]);

        let phases = RuleSet::default_files()["phases.rhai"].replace("\"06:57\"", "\"6:57\"");
        let e = refused(&with("phases.rhai", &phases));
        assert_mentions(&e, &["free_access_time()", "6:57"]);

        let calendar = "fn holidays() { [\"2024-02-30\"] }\nfn working_weekdays() { [1] }";
        let e = refused(&with("calendar.rhai", calendar));
        assert_eq!(e.line, Some(1));
        assert_mentions(&e, &["holidays()", "2024-02-30", "not a valid date"]);

        let calendar = "fn holidays() { [] }\nfn working_weekdays() { [1, 8] }";
        let e = refused(&with("calendar.rhai", calendar));
        assert_eq!(e.line, Some(2));
        assert_mentions(&e, &["working_weekdays()", "weekday 8", "out of range"]);

        let calendar = "fn holidays() { [] }\nfn working_weekdays() { [] }";
        let e = refused(&with("calendar.rhai", calendar));
        assert_mentions(&e, &["working_weekdays()", "empty"]);

        let referral = RuleSet::default_files()["referral.rhai"].replace(
            "facts.free_access_at\n    } else",
            "9223372036854775807\n    } else",
        );
        let e = refused(&with("referral.rhai", &referral));
        assert_mentions(&e, &["lock_after_recall(facts)", "not a valid instant"]);
    }

    #[test]
    fn runtime_errors_name_the_line_inside_helpers() {
        let src = format!(
            "fn order_key(app) {{ [helper(app)] }}\nfn helper(app) {{\n    app.category_rank / 0\n}}\n{ORDER_OK_COHORT}"
        );
        let e = refused(&with("order.rhai", &src));
        assert_eq!(e.file, "order.rhai");
        assert_eq!(e.line, Some(3), "{e}");
        assert_mentions(&e, &["order_key(app)", "division by zero"]);
    }

    #[test]
    fn usable_from_many_threads() {
        let set = Arc::new(defaults());
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let set = Arc::clone(&set);
                std::thread::spawn(move || {
                    (0..200)
                        .map(|k| set.order_key(&app("large_family", i * 1000 + k)).unwrap()[1])
                        .sum::<i64>()
                })
            })
            .collect();
        let sums: Vec<i64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(sums[0], (0..200).sum::<i64>());
        assert_eq!(sums[3], (3000..3200).sum::<i64>());
        let inside = RuleSet::with_stack(|| set.cohort(&app("general", 1)).unwrap());
        assert_eq!(inside, 2021);
    }

    #[test]
    fn read_dir_reads_rhai_files_only_and_checks_sizes() {
        let dir = tempfile::tempdir().unwrap();
        for (name, src) in RuleSet::default_files() {
            std::fs::write(dir.path().join(name), src).unwrap();
        }
        std::fs::write(dir.path().join("README.md"), "not a rule").unwrap();
        let files = RuleSet::read_dir(dir.path()).unwrap();
        assert_eq!(files, RuleSet::default_files());
        assert_eq!(RuleSet::compile(&files).unwrap().hash(), defaults().hash());

        std::fs::write(
            dir.path().join("order.rhai"),
            "x".repeat(limits::MAX_FILE_BYTES + 1),
        )
        .unwrap();
        let e = RuleSet::read_dir(dir.path()).unwrap_err();
        assert!(e.file.ends_with("order.rhai"), "{e}");
        assert_mentions(&e, &["larger than 256 KiB"]);

        std::fs::write(dir.path().join("order.rhai"), [0xff, 0xfe, b'x']).unwrap();
        let e = RuleSet::read_dir(dir.path()).unwrap_err();
        assert!(e.file.ends_with("order.rhai"), "{e}");
        assert_mentions(&e, &["utf-8"]);

        let many = tempfile::tempdir().unwrap();
        for i in 0..=limits::MAX_FILES {
            std::fs::write(many.path().join(format!("f{i:02}.rhai")), "").unwrap();
        }
        let e = RuleSet::read_dir(many.path()).unwrap_err();
        assert_mentions(&e, &["too many rule files", "33 > 32"]);

        let e = RuleSet::read_dir(&dir.path().join("absent")).unwrap_err();
        assert!(e.file.ends_with("absent"), "{e}");
        assert_mentions(&e, &["cannot read the rules directory"]);
    }

    #[test]
    fn oversized_file_is_refused_by_compile_too() {
        let big = format!(
            "// {}\n{}",
            "x".repeat(limits::MAX_FILE_BYTES),
            "fn holidays() { [] }"
        );
        let e = refused(&with("calendar.rhai", &big));
        assert_eq!(e.file, "calendar.rhai");
        assert_mentions(&e, &["larger than 256 KiB"]);
    }

    #[test]
    fn fn_line_finds_definitions() {
        let src = "// fn a() in a comment\nfn a() {}\n  private fn b(x) {}\nfn ab() {}";
        assert_eq!(fn_line(src, "a"), Some(2));
        assert_eq!(fn_line(src, "b"), Some(3));
        assert_eq!(fn_line(src, "ab"), Some(4));
        assert_eq!(fn_line(src, "c"), None);
    }
}
