//! Helpers of the end-to-end tests: run the `kezek` binary against a temporary data
//! folder, parse its JSON, make valid IINs and CSV files.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use jiff::civil::{date, Date};
use kezek_engine::iin::Iin;
use serde_json::Value;

/// The `kezek` binary built by this package.
pub const BIN: &str = env!("CARGO_BIN_EXE_kezek-e2e");

/// The default rule files of the workspace (`rules/`).
pub fn default_rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("rules")
}

/// The outcome of one run of the binary.
#[derive(Debug, Clone)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub args: Vec<String>,
}

impl Run {
    fn from_output(args: Vec<String>, o: Output) -> Run {
        Run {
            // A process killed by a signal has no code: report it as -1.
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            args,
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "`kezek {}` printed no JSON ({e}):\n{}\nstderr: {}",
                self.args.join(" "),
                self.stdout,
                self.stderr
            )
        })
    }

    /// The `{"error": {...}}` object a refused `--json` command prints.
    pub fn error(&self) -> Value {
        let v = self.json();
        let e = v
            .get("error")
            .unwrap_or_else(|| panic!("no error object in {v}"))
            .clone();
        assert!(e["code"].is_string(), "error without a code: {e}");
        assert!(
            e["message"].as_str().is_some_and(|m| !m.is_empty()),
            "error without a message: {e}"
        );
        e
    }
}

/// A temporary data folder and the commands run against it.
pub struct Kezek {
    pub tmp: tempfile::TempDir,
}

impl Default for Kezek {
    fn default() -> Self {
        Self::new()
    }
}

impl Kezek {
    pub fn new() -> Kezek {
        Kezek {
            tmp: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// A store initialized with the default rules and a manual clock at `now`.
    pub fn init(now: &str) -> Kezek {
        let k = Kezek::new();
        k.ok(&["init", "--clock", "manual", "--now", now]);
        k
    }

    /// The data folder (`--data`).
    pub fn data(&self) -> PathBuf {
        self.tmp.path().join("data")
    }

    /// A path in the temporary folder, beside the data folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// Writes a file beside the data folder and returns its path as a string.
    pub fn write(&self, name: &str, contents: &str) -> String {
        let p = self.path(name);
        std::fs::write(&p, contents).expect("write file");
        p.to_str().expect("utf-8 path").to_string()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--data").arg(self.data()).args(args);
        c.env_remove("KEZEK_DATA").env("RUST_BACKTRACE", "0");
        c
    }

    /// Runs `kezek --data DIR args...`.
    pub fn run(&self, args: &[&str]) -> Run {
        let o = self
            .command(args)
            .stdin(Stdio::null())
            .output()
            .expect("run kezek");
        Run::from_output(args.iter().map(|s| s.to_string()).collect(), o)
    }

    /// Starts `kezek --data DIR args...` without waiting.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kezek")
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(
            r.code,
            0,
            "`kezek {}` failed:\nstdout: {}\nstderr: {}",
            args.join(" "),
            r.stdout,
            r.stderr
        );
        r.stdout
    }

    /// Runs a command (adding `--json`) that must succeed; returns its JSON.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        let r = self.run(&a);
        assert_eq!(
            r.code,
            0,
            "`kezek {}` failed:\nstdout: {}\nstderr: {}",
            a.join(" "),
            r.stdout,
            r.stderr
        );
        r.json()
    }

    /// Runs a command with `--json` that must fail with `exit` and the error `code`;
    /// returns the error object.
    pub fn fails(&self, args: &[&str], exit: i32, code: &str) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        let r = self.run(&a);
        assert_eq!(
            r.code,
            exit,
            "`kezek {}`: expected exit {exit} ({code}):\nstdout: {}\nstderr: {}",
            a.join(" "),
            r.stdout,
            r.stderr
        );
        let e = r.error();
        assert_eq!(e["code"], code, "`kezek {}`: {e}", a.join(" "));
        e
    }

    /// Like [`Kezek::fails`] for commands without a `--json` flag: the error is on stderr
    /// as `error[code]: message`. Returns the message line.
    pub fn fails_plain(&self, args: &[&str], exit: i32, code: &str) -> String {
        let r = self.run(args);
        assert_eq!(
            r.code,
            exit,
            "`kezek {}`: expected exit {exit} ({code}):\nstdout: {}\nstderr: {}",
            args.join(" "),
            r.stdout,
            r.stderr
        );
        let prefix = format!("error[{code}]: ");
        let line = r.stderr.lines().find(|l| l.starts_with(&prefix));
        line.unwrap_or_else(|| {
            panic!(
                "`kezek {}`: no `{prefix}` on stderr: {}",
                args.join(" "),
                r.stderr
            )
        })
        .to_string()
    }

    /// The card of an application (`show --json`).
    pub fn card(&self, id: &str) -> Value {
        self.json(&["show", id])
    }

    /// A whole cohort queue (`queue --json`, up to 1,000 rows).
    pub fn queue(&self, cohort: i32) -> Value {
        self.json(&["queue", "--cohort", &cohort.to_string(), "--limit", "1000"])
    }

    /// The ids of a cohort queue in order.
    pub fn queue_ids(&self, cohort: i32) -> Vec<String> {
        self.queue(cohort)["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect()
    }

    /// `audit verify --json`: must pass; returns the number of events.
    pub fn verify(&self) -> u64 {
        let r = self.run(&["audit", "verify", "--json"]);
        assert_eq!(
            r.code, 0,
            "audit verify failed:\n{}\n{}",
            r.stdout, r.stderr
        );
        let v = r.json();
        assert_eq!(v["ok"], true, "{v}");
        let rep = &v["report"];
        for k in [
            "chain_ok",
            "replay_matches",
            "snapshot_matches",
            "invariants_ok",
        ] {
            assert_eq!(rep[k], true, "{k}: {v}");
        }
        rep["events"].as_u64().unwrap()
    }

    /// What a refused command must leave as it was: the given cohorts' queues, the given
    /// cards, and the number of events in the log (the audit passes too).
    pub fn snapshot(&self, cohorts: &[i32], ids: &[&str]) -> Value {
        let queues: Vec<Value> = cohorts.iter().map(|c| self.queue(*c)).collect();
        let cards: Vec<Value> = ids.iter().map(|id| self.card(id)).collect();
        serde_json::json!({ "queues": queues, "cards": cards, "events": self.verify() })
    }

    /// Registers a child born on `birth` (serial makes the IIN unique) and returns the
    /// new application number.
    pub fn register(&self, birth: Date, serial: u32, category: &str, language: &str) -> String {
        let child = child_iin(birth, serial);
        let out = self.ok(&[
            "register",
            "--child-iin",
            &child,
            "--birth-date",
            &birth.to_string(),
            "--applicant-iin",
            &adult_iin(serial),
            "--category",
            category,
            "--language",
            language,
        ]);
        let id = out.trim().to_string();
        assert!(id.starts_with("UO."), "register printed {out:?}");
        id
    }

    /// Imports kindergarten groups from CSV text.
    pub fn import_kindergartens(&self, csv: &str) {
        let f = self.write("kindergartens.csv", csv);
        self.ok(&["import", "kindergartens", &f]);
    }
}

/// A valid child IIN for a birth date; different serials (below 250) give different IINs.
pub fn child_iin(birth: Date, serial: u32) -> String {
    Iin::make_valid(birth, serial % 2 == 1, serial * 40).to_string()
}

/// A valid adult IIN (an applicant's), distinct per serial.
pub fn adult_iin(serial: u32) -> String {
    let birth = date(1985, 1 + (serial % 12) as i8, 1 + (serial % 28) as i8);
    Iin::make_valid(birth, serial.is_multiple_of(3), 5000 + serial % 4000).to_string()
}

/// A copy of the default rules in `dir`, for a test to edit.
pub fn copy_rules(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for e in std::fs::read_dir(default_rules_dir()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().and_then(|x| x.to_str()) == Some("rhai") {
            std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
        }
    }
    dir.to_path_buf()
}

/// A small deterministic random number generator (SplitMix64).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}
