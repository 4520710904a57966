//! The administrator's Rhai console: scripts that ask questions of the queue and cannot
//! change anything.
//!
//! A script runs in its own raw [`rhai::Engine`] with pure packages only (no time, no
//! `sleep`, no printing to the terminal, no modules, no `eval`) and the
//! [`Limits`]: operations, call levels, expression depth, string / array / map sizes,
//! variables, functions, script size, wall-clock time (checked on every operation, so a
//! `loop {}` stops after [`Limits::max_time`]) and the size of the result.
//!
//! The state reaches a script only through the functions below, each of which reads the
//! state through a [`StateSource`] and returns plain copies (maps, arrays, numbers,
//! strings): there is no function that changes anything, and nothing a script holds
//! refers back to the engine. Each call is one consistent read; a script that makes
//! several calls may see writes that happened between them.
//!
//! # Functions
//!
//! | function | returns |
//! |---|---|
//! | `app(id)` | the card summary of an application as a map (`id`, `status`, `cohort`, `language`, `category`, `registered_at`, `queue_position`, `category_position`, `referral`, `locked_until`, `stop_listed_until`, child and applicant fields), or `()` if there is none |
//! | `position(id)` | the queue position of a waiting application, or `()` |
//! | `queue(cohort, from, limit)` | a page of a cohort's queue in order: an array of card maps; `from` is the 1-based position of the first, `limit` at most 1000 |
//! | `queue_category(cohort, category, from, limit)` | the same within one category |
//! | `count(cohort)` | how many wait in a cohort |
//! | `count_category(cohort, category)` | how many of a category wait in a cohort |
//! | `cohorts()` | the cohorts that have a queue, as an array of integers |
//! | `categories()` | the active rules' categories: maps `code`, `rank`, `kk`, `ru`, `en` |
//! | `publications()` | every publication: maps `id`, `kindergarten`, `kindergarten_name`, `cohort`, `language`, `places`, `places_left`, `phase`, `published_at`, `free_access_at` |
//! | `kindergarten(id)` | a kindergarten: map `id`, `name`, `district`, `groups` (maps `cohort`, `language`, `capacity`, `published`), or `()` |
//!
//! Times are RFC 3339 strings (UTC). `print(x)` adds a line to the run's output.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rhai::packages::{
    ArithmeticPackage, BasicArrayPackage, BasicFnPackage, BasicIteratorPackage, BasicMapPackage,
    BasicMathPackage, BasicStringPackage, BitFieldPackage, LogicPackage, MoreStringPackage,
    Package,
};
use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, Map, Scope};
use serde::Serialize;
use serde_json::Value;

use crate::error::{EngineError, Result};
use crate::model::AppNo;
use crate::rules::RuleSet;
use crate::state::State;
use crate::view;

/// Where the console reads the state: the interface decides how (a lock, a snapshot).
/// `with_state` must call `f` exactly once with a consistent state.
pub trait StateSource: Send + Sync + 'static {
    fn with_state(&self, f: &mut dyn FnMut(&State));
}

/// A state owned outright, read-only (tests, tools).
impl StateSource for State {
    fn with_state(&self, f: &mut dyn FnMut(&State)) {
        f(self)
    }
}

impl<T: StateSource + ?Sized> StateSource for Arc<T> {
    fn with_state(&self, f: &mut dyn FnMut(&State)) {
        (**self).with_state(f)
    }
}

/// The bounds of one run.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Operations (statements, expressions, function calls).
    pub max_operations: u64,
    /// Wall-clock time, checked on every operation.
    pub max_time: Duration,
    pub max_call_levels: usize,
    pub max_expr_depth: usize,
    pub max_function_expr_depth: usize,
    /// Bytes of one string value.
    pub max_string_size: usize,
    /// Elements of an array (nested arrays count together).
    pub max_array_size: usize,
    /// Entries of a map (nested maps count together: a page of 1,000 cards holds about
    /// 21,000 entries).
    pub max_map_size: usize,
    pub max_variables: usize,
    pub max_functions: usize,
    /// Bytes of the script itself.
    pub max_script_bytes: usize,
    /// Bytes of the result rendered as JSON.
    pub max_output_bytes: usize,
    /// Array elements in the result, all levels together (map entries count towards the
    /// bytes).
    pub max_output_items: usize,
    /// Nesting of arrays and maps in the result.
    pub max_output_depth: usize,
    /// Lines and bytes `print` may add to the output.
    pub max_print_lines: usize,
    pub max_print_bytes: usize,
    /// Rows one `queue` call may return.
    pub max_page: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_operations: 1_000_000,
            max_time: Duration::from_secs(2),
            max_call_levels: 32,
            max_expr_depth: 64,
            max_function_expr_depth: 32,
            max_string_size: 1024 * 1024,
            max_array_size: 10_000,
            max_map_size: 250_000,
            max_variables: 1_000,
            max_functions: 100,
            max_script_bytes: 64 * 1024,
            max_output_bytes: 1024 * 1024,
            max_output_items: 10_000,
            max_output_depth: 32,
            max_print_lines: 1_000,
            max_print_bytes: 64 * 1024,
            max_page: 1_000,
        }
    }
}

/// What a run produced.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The value of the script's last expression, as JSON (`()` is `null`).
    pub result: Value,
    /// Lines the script printed (capped).
    pub output: Vec<String>,
    pub operations: u64,
    pub elapsed_ms: u64,
}

/// The documented functions, as (signature, description): for help pages.
pub const FUNCTIONS: &[(&str, &str)] = &[
    (
        "app(id)",
        "an application's card summary as a map, or () if there is none",
    ),
    (
        "position(id)",
        "the queue position of a waiting application, or ()",
    ),
    (
        "queue(cohort, from, limit)",
        "a page of a cohort's queue in order (array of card maps); limit at most 1000",
    ),
    (
        "queue_category(cohort, category, from, limit)",
        "a page of one category of a cohort's queue",
    ),
    ("count(cohort)", "how many wait in a cohort"),
    (
        "count_category(cohort, category)",
        "how many of a category wait in a cohort",
    ),
    ("cohorts()", "the cohorts that have a queue"),
    (
        "categories()",
        "the categories of the active rules (code, rank, kk, ru, en)",
    ),
    (
        "publications()",
        "every publication (id, kindergarten, cohort, language, places, places_left, phase, ...)",
    ),
    ("kindergarten(id)", "a kindergarten with its groups, or ()"),
];

const TIME_LIMIT_TOKEN: &str = "kezek: console time limit";

type Fallible<T> = std::result::Result<T, Box<EvalAltResult>>;

fn read<R>(src: &dyn StateSource, f: impl FnOnce(&State) -> R) -> Fallible<R> {
    let mut f = Some(f);
    let mut out = None;
    src.with_state(&mut |s| {
        if let Some(f) = f.take() {
            out = Some(f(s));
        }
    });
    out.ok_or_else(|| "the state is not available".into())
}

fn parse_app(id: &str) -> Fallible<AppNo> {
    id.parse::<AppNo>().map_err(|e| e.into())
}

fn cohort_arg(c: i64) -> Fallible<i32> {
    i32::try_from(c).map_err(|_| format!("{c} is not a cohort (a birth year)").into())
}

/// JSON to a script value (plain copies).
fn to_dynamic(v: Value) -> Dynamic {
    match v {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from_bool(b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Dynamic::from_int(i),
            None => Dynamic::from_float(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => Dynamic::from(s),
        Value::Array(a) => Dynamic::from_array(a.into_iter().map(to_dynamic).collect()),
        Value::Object(o) => {
            let mut m = Map::new();
            for (k, v) in o {
                m.insert(k.into(), to_dynamic(v));
            }
            Dynamic::from_map(m)
        }
    }
}

fn serialized(v: &impl Serialize) -> Dynamic {
    serde_json::to_value(v)
        .map(to_dynamic)
        .unwrap_or(Dynamic::UNIT)
}

fn card_map(state: &State, a: &crate::model::Application) -> Dynamic {
    let mut v = serde_json::to_value(view::card_summary(state, a)).unwrap_or(Value::Null);
    if let Value::Object(o) = &mut v {
        o.remove("history");
    }
    to_dynamic(v)
}

fn page(
    state: &State,
    cohort: i32,
    category: Option<&str>,
    from: i64,
    limit: i64,
    max: i64,
) -> Fallible<Array> {
    if from < 1 {
        return Err(format!("from: {from} is not a position (positions start at 1)").into());
    }
    if !(0..=max).contains(&limit) {
        return Err(format!("limit: {limit} is not between 0 and {max}").into());
    }
    Ok(
        view::queue_page(state, cohort, category, from as u64, limit as u64)
            .items
            .into_iter()
            .map(|c| {
                let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
                if let Value::Object(o) = &mut v {
                    o.remove("history");
                }
                to_dynamic(v)
            })
            .collect(),
    )
}

fn register_functions(engine: &mut Engine, src: Arc<dyn StateSource>, max_page: i64) {
    let s = src.clone();
    engine.register_fn("app", move |id: ImmutableString| -> Fallible<Dynamic> {
        let id = parse_app(&id)?;
        read(&*s, |st| {
            st.app(id).map_or(Dynamic::UNIT, |a| card_map(st, a))
        })
    });
    let s = src.clone();
    engine.register_fn(
        "position",
        move |id: ImmutableString| -> Fallible<Dynamic> {
            let id = parse_app(&id)?;
            read(&*s, |st| {
                st.app(id)
                    .and_then(|a| st.queue_position(a))
                    .map_or(Dynamic::UNIT, |p| Dynamic::from_int(p as i64))
            })
        },
    );
    let s = src.clone();
    engine.register_fn(
        "queue",
        move |cohort: i64, from: i64, limit: i64| -> Fallible<Array> {
            let cohort = cohort_arg(cohort)?;
            read(&*s, |st| page(st, cohort, None, from, limit, max_page))?
        },
    );
    let s = src.clone();
    engine.register_fn(
        "queue_category",
        move |cohort: i64, category: ImmutableString, from: i64, limit: i64| -> Fallible<Array> {
            let cohort = cohort_arg(cohort)?;
            read(&*s, |st| {
                page(st, cohort, Some(category.as_str()), from, limit, max_page)
            })?
        },
    );
    let s = src.clone();
    engine.register_fn("count", move |cohort: i64| -> Fallible<i64> {
        let cohort = cohort_arg(cohort)?;
        read(&*s, |st| st.queue(cohort).map_or(0, |q| q.len() as i64))
    });
    let s = src.clone();
    engine.register_fn(
        "count_category",
        move |cohort: i64, category: ImmutableString| -> Fallible<i64> {
            let cohort = cohort_arg(cohort)?;
            read(&*s, |st| {
                st.queue(cohort)
                    .map_or(0, |q| q.category_len(&category) as i64)
            })
        },
    );
    let s = src.clone();
    engine.register_fn("cohorts", move || -> Fallible<Array> {
        read(&*s, |st| {
            st.cohorts()
                .into_iter()
                .map(|c| Dynamic::from_int(c as i64))
                .collect()
        })
    });
    let s = src.clone();
    engine.register_fn("categories", move || -> Fallible<Array> {
        read(&*s, |st| {
            st.rules()
                .map(|r| r.params().categories.iter().map(serialized).collect())
                .unwrap_or_default()
        })
    });
    let s = src.clone();
    engine.register_fn("publications", move || -> Fallible<Array> {
        read(&*s, |st| {
            st.data
                .publications
                .values()
                .map(|p| {
                    let name = st
                        .data
                        .kindergartens
                        .get(&p.kindergarten)
                        .map(|k| k.name.clone())
                        .unwrap_or_default();
                    to_dynamic(serde_json::json!({
                        "id": p.id,
                        "kindergarten": p.kindergarten,
                        "kindergarten_name": name,
                        "cohort": p.cohort,
                        "language": p.language.code(),
                        "places": p.places,
                        "places_left": p.places_left,
                        "phase": p.phase.code(),
                        "published_at": p.published_at,
                        "free_access_at": p.free_access_at,
                    }))
                })
                .collect()
        })
    });
    let s = src;
    engine.register_fn(
        "kindergarten",
        move |id: ImmutableString| -> Fallible<Dynamic> {
            read(&*s, |st| {
                st.data
                    .kindergartens
                    .get(id.as_str())
                    .map_or(Dynamic::UNIT, |k| {
                        to_dynamic(serde_json::json!({
                            "id": k.id,
                            "name": k.name,
                            "district": k.district,
                            "groups": k.groups.iter().map(|g| serde_json::json!({
                                "cohort": g.cohort,
                                "language": g.language.code(),
                                "capacity": g.capacity,
                                "published": g.published,
                            })).collect::<Vec<_>>(),
                        }))
                    })
            })
        },
    );
}

struct Printed {
    lines: Vec<String>,
    bytes: usize,
    dropped: usize,
}

fn build_engine(
    limits: &Limits,
    src: Arc<dyn StateSource>,
    ops: Arc<AtomicU64>,
    printed: Arc<Mutex<Printed>>,
) -> Engine {
    let mut engine = Engine::new_raw();
    // Pure packages only: no LanguageCorePackage (`sleep`, `exit`, `parse_json`), no time,
    // no blobs, no debugging.
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
        .set_max_operations(limits.max_operations)
        .set_max_call_levels(limits.max_call_levels)
        .set_max_expr_depths(limits.max_expr_depth, limits.max_function_expr_depth)
        .set_max_string_size(limits.max_string_size)
        .set_max_array_size(limits.max_array_size)
        .set_max_map_size(limits.max_map_size)
        .set_max_variables(limits.max_variables)
        .set_max_functions(limits.max_functions)
        .disable_symbol("eval");
    let (max_lines, max_bytes) = (limits.max_print_lines, limits.max_print_bytes);
    let sink = move |line: String| {
        if let Ok(mut p) = printed.lock() {
            if p.lines.len() < max_lines && p.bytes + line.len() <= max_bytes {
                p.bytes += line.len();
                p.lines.push(line);
            } else {
                p.dropped += 1;
            }
        }
    };
    let sink2 = sink.clone();
    engine.on_print(move |s| sink(s.to_string()));
    engine.on_debug(move |s, _, pos| sink2(format!("[line {}] {s}", pos.line().unwrap_or(0))));
    let deadline = Instant::now() + limits.max_time;
    engine.on_progress(move |n| {
        ops.store(n, Ordering::Relaxed);
        if Instant::now() > deadline {
            Some(Dynamic::from(TIME_LIMIT_TOKEN))
        } else {
            None
        }
    });
    register_functions(&mut engine, src, limits.max_page);
    engine
}

fn at_line(pos: rhai::Position) -> String {
    pos.line()
        .map(|l| format!("line {l}: "))
        .unwrap_or_default()
}

fn eval_error(e: &EvalAltResult, limits: &Limits) -> EngineError {
    let pos = e.position();
    match e {
        EvalAltResult::ErrorTerminated(..) => EngineError::invalid(
            "console_time_limit",
            format!(
                "{}the script ran longer than {} ms and was stopped",
                at_line(pos),
                limits.max_time.as_millis()
            ),
        ),
        EvalAltResult::ErrorTooManyOperations(..) => EngineError::invalid(
            "console_operation_limit",
            format!(
                "{}the script used more than {} operations and was stopped",
                at_line(pos),
                limits.max_operations
            ),
        ),
        EvalAltResult::ErrorDataTooLarge(what, ..) => EngineError::invalid(
            "console_data_limit",
            format!(
                "{}{what} too large (strings up to {} bytes, arrays up to {} elements, maps up to {} entries)",
                at_line(pos),
                limits.max_string_size,
                limits.max_array_size,
                limits.max_map_size
            ),
        ),
        EvalAltResult::ErrorStackOverflow(..) | EvalAltResult::ErrorTooManyVariables(..) => {
            EngineError::invalid("console_limit", format!("{}{e}", at_line(pos)))
        }
        _ => EngineError::invalid("console_error", format!("{}{e}", at_line(pos))),
    }
}

/// Renders a script value as JSON within the output limits.
struct Render<'a> {
    limits: &'a Limits,
    items: usize,
    bytes: usize,
}

impl Render<'_> {
    fn too_large(&self, what: &str) -> EngineError {
        EngineError::invalid(
            "console_output_too_large",
            format!(
                "the result is too large: {what} (at most {} array items, {} bytes of JSON, {} levels of nesting)",
                self.limits.max_output_items, self.limits.max_output_bytes, self.limits.max_output_depth
            ),
        )
    }

    fn count(&mut self, items: usize, bytes: usize) -> Result<()> {
        self.items += items;
        self.bytes += bytes;
        if self.items > self.limits.max_output_items {
            return Err(self.too_large("too many items"));
        }
        if self.bytes > self.limits.max_output_bytes {
            return Err(self.too_large("too many bytes"));
        }
        Ok(())
    }

    fn value(&mut self, d: &Dynamic, depth: usize) -> Result<Value> {
        if depth > self.limits.max_output_depth {
            return Err(self.too_large("nested too deeply"));
        }
        if d.is_unit() {
            self.count(0, 4)?;
            return Ok(Value::Null);
        }
        if let Ok(b) = d.as_bool() {
            self.count(0, 5)?;
            return Ok(Value::Bool(b));
        }
        if let Ok(i) = d.as_int() {
            self.count(0, 20)?;
            return Ok(Value::from(i));
        }
        if let Ok(f) = d.as_float() {
            self.count(0, 24)?;
            return Ok(serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number));
        }
        if let Ok(c) = d.as_char() {
            self.count(0, 6)?;
            return Ok(Value::String(c.to_string()));
        }
        if let Some(s) = d.read_lock::<ImmutableString>() {
            self.count(0, s.len() + 2)?;
            return Ok(Value::String(s.to_string()));
        }
        if let Some(a) = d.read_lock::<Array>() {
            self.count(a.len(), 2)?;
            let mut out = Vec::with_capacity(a.len());
            for x in a.iter() {
                out.push(self.value(x, depth + 1)?);
            }
            return Ok(Value::Array(out));
        }
        if let Some(m) = d.read_lock::<Map>() {
            self.count(0, 2)?;
            let mut out = serde_json::Map::new();
            for (k, x) in m.iter() {
                self.count(0, k.len() + 4)?;
                out.insert(k.to_string(), self.value(x, depth + 1)?);
            }
            return Ok(Value::Object(out));
        }
        let s = d.to_string();
        self.count(0, s.len() + 2)?;
        Ok(Value::String(s))
    }
}

/// Runs a console script against the state `src` gives, within `limits`.
///
/// Errors (all `Invalid`): `console_script_too_large`, `console_syntax` (with the line),
/// `console_error` (a runtime error, with the line), `console_time_limit`,
/// `console_operation_limit`, `console_data_limit`, `console_limit`,
/// `console_output_too_large`, `console_failed` (the script engine panicked).
pub fn run(src: Arc<dyn StateSource>, script: &str, limits: &Limits) -> Result<Outcome> {
    if script.len() > limits.max_script_bytes {
        return Err(EngineError::invalid(
            "console_script_too_large",
            format!(
                "the script is {} bytes; at most {} are allowed",
                script.len(),
                limits.max_script_bytes
            ),
        ));
    }
    let started = Instant::now();
    let ops = Arc::new(AtomicU64::new(0));
    let printed = Arc::new(Mutex::new(Printed {
        lines: Vec::new(),
        bytes: 0,
        dropped: 0,
    }));
    let outcome = RuleSet::with_stack(|| {
        catch_unwind(AssertUnwindSafe(|| -> Result<Value> {
            let engine = build_engine(limits, src, ops.clone(), printed.clone());
            let ast = engine.compile(script).map_err(|e| {
                EngineError::invalid(
                    "console_syntax",
                    format!("{}{}", at_line(e.position()), e.err_type()),
                )
            })?;
            let mut scope = Scope::new();
            let value = engine
                .eval_ast_with_scope::<Dynamic>(&mut scope, &ast)
                .map_err(|e| eval_error(&e, limits))?;
            let json = Render {
                limits,
                items: 0,
                bytes: 0,
            }
            .value(&value, 0)?;
            // The estimate above is close; the rendered size is the bound.
            let size = serde_json::to_vec(&json)
                .map(|v| v.len())
                .unwrap_or(usize::MAX);
            if size > limits.max_output_bytes {
                return Err(EngineError::invalid(
                    "console_output_too_large",
                    format!(
                        "the result is {size} bytes of JSON; at most {} are allowed",
                        limits.max_output_bytes
                    ),
                ));
            }
            Ok(json)
        }))
    });
    let result = match outcome {
        Ok(r) => r?,
        Err(_) => {
            return Err(EngineError::invalid(
                "console_failed",
                "the script engine failed on this script",
            ))
        }
    };
    let mut output = Vec::new();
    if let Ok(mut p) = printed.lock() {
        output = std::mem::take(&mut p.lines);
        if p.dropped > 0 {
            output.push(format!("… {} more line(s) not shown", p.dropped));
        }
    }
    Ok(Outcome {
        result,
        output,
        operations: ops.load(Ordering::Relaxed),
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::{self, Scale};
    use crate::event::Actor;
    use crate::store::{ClockMode, Store};
    use jiff::Timestamp;

    fn state() -> (tempfile::TempDir, Arc<State>) {
        let dir = tempfile::tempdir().unwrap();
        let now: Timestamp = "2026-12-02T04:00:00Z".parse().unwrap();
        let mut s = Store::init(
            dir.path(),
            &RuleSet::default_files(),
            ClockMode::Manual,
            now,
            Actor::System,
        )
        .unwrap();
        demo::build(&mut s, 3, Scale::Small, now).unwrap();
        let data = s.state().data.clone();
        (dir, Arc::new(State::from_data(data).unwrap()))
    }

    fn go(st: &Arc<State>, script: &str) -> Result<Outcome> {
        let limits = Limits {
            max_time: Duration::from_millis(500),
            ..Limits::default()
        };
        run(st.clone(), script, &limits)
    }

    #[test]
    fn queries_answer_with_plain_values() {
        let (_d, st) = state();
        let c = st.cohorts()[0];
        let out = go(&st, &format!("let q = queue({c}, 1, 3); [q.len(), q[0].queue_position, count({c}) > 0, cohorts().len()]")).unwrap();
        assert_eq!(
            out.result,
            serde_json::json!([3, 1, true, st.cohorts().len()])
        );
        let first = go(&st, &format!("queue({c}, 1, 1)[0].id")).unwrap().result;
        let id = first.as_str().unwrap();
        let out = go(
            &st,
            &format!("let a = app(\"{id}\"); print(a.status); [a.id, position(\"{id}\")]"),
        )
        .unwrap();
        assert_eq!(out.result, serde_json::json!([id, 1]));
        assert_eq!(out.output, vec!["queued".to_string()]);
        assert!(go(&st, "app(\"UO.2020.1.1\")").unwrap().result.is_null());
        assert!(
            go(&st, "categories().len()")
                .unwrap()
                .result
                .as_i64()
                .unwrap()
                >= 2
        );
        assert!(go(&st, "publications()").unwrap().result.is_array());
        // Closures for filters.
        let n = go(
            &st,
            &format!("queue({c}, 1, 1000).filter(|a| a.category == \"general\").len()"),
        )
        .unwrap()
        .result;
        let expected = st.queue(c).unwrap().category_len("general").min(1000) as i64;
        assert!(n.as_i64().unwrap() <= expected && n.as_i64().unwrap() > 0);
        let ids = go(&st, &format!("queue({c}, 1, 2).map(|a| a.id)"))
            .unwrap()
            .result;
        assert_eq!(ids.as_array().unwrap().len(), 2);
    }

    #[test]
    fn limits_and_refusals() {
        let (_d, st) = state();
        let t = Instant::now();
        let e = go(&st, "loop {}").unwrap_err();
        assert!(
            matches!(e.code, "console_time_limit" | "console_operation_limit"),
            "{e:?}"
        );
        assert!(t.elapsed() < Duration::from_secs(5));
        // Without an operation limit, the wall clock stops it.
        let t = Instant::now();
        let unlimited = Limits {
            max_operations: 0,
            max_time: Duration::from_millis(300),
            ..Limits::default()
        };
        let e = run(
            st.clone(),
            "let n = 0; loop { n += count(2021); }",
            &unlimited,
        )
        .unwrap_err();
        assert_eq!(e.code, "console_time_limit", "{e:?}");
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        assert_eq!(go(&st, "eval(\"1\")").unwrap_err().code, "console_syntax");
        assert_eq!(go(&st, "let x = ").unwrap_err().code, "console_syntax");
        let e = go(&st, "let a = []; for i in 0..20000 { a.push(i) } a").unwrap_err();
        assert_eq!(e.code, "console_data_limit", "{e:?}");
        let e = go(&st, "queue(2020, 1, 5000)").unwrap_err();
        assert_eq!(e.code, "console_error");
        assert!(e.message.contains("limit"), "{}", e.message);
        let e = go(&st, "fn f(x) { f(x + 1) } f(0)").unwrap_err();
        assert!(e.code.starts_with("console_"), "{e:?}");
        let e = go(&st, "let s = \"x\"; for i in 0..30 { s += s } s").unwrap_err();
        assert_eq!(e.code, "console_data_limit", "{e:?}");
        let big = "1;".repeat(40_000);
        assert_eq!(go(&st, &big).unwrap_err().code, "console_script_too_large");
        let before = st.digest();
        let _ = go(
            &st,
            "let a = app(queue(2021, 1, 1)[0].id); a.status = \"withdrawn\"; a",
        );
        assert_eq!(st.digest(), before);
    }
}
