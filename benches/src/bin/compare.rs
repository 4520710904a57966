//! `compare`: the same queue operations on Kezek, PostgreSQL and Redis, measured in one
//! run, printed as one table. `benches/compare.sh` installs and starts the two servers on
//! loopback, runs this with their addresses, and stops them.
//!
//! The dataset is one cohort of N applications (default 1,000,000) from
//! [`kezek_benches::rows`], ordered by Kezek's default rules (category rank, registration
//! instant, application number). The other systems get the same order key, computed by
//! Kezek, in the schema a user would pick:
//!
//! - PostgreSQL: a table `apps` with a partial B-tree index on the order key of waiting
//!   applications; the position is `count(*)` of the waiting rows ahead (a row-value
//!   comparison on the index). Commits are synchronous (the default): durable like Kezek.
//! - Redis: a sorted set per cohort (score = category rank * 2^32 + registration second,
//!   member = the zero-padded application number, so equal scores tie-break like Kezek);
//!   the position is `ZRANK`. Append-only file with `appendfsync always` (durable like
//!   Kezek; `compare.sh` starts it so).
//!
//! Operations: bulk load of all N; the position of 10,000 random applications (Kezek
//! in-process: an embedded engine needs no round trip, which is the point of it); 1,000
//! take-and-recall cycles, each step durable (Kezek through its sled store with the rules,
//! the recall window and the lock; the others: the status change and the place count in
//! one transaction). Every system's positions are checked against Kezek's on a sample
//! before anything is timed: a comparison of wrong answers would be worthless.

use std::time::Instant;

use jiff::{Span, Timestamp};
use kezek_benches::{bench_now, rows};
use kezek_engine::event::GroupRow;
use kezek_engine::{Actor, AppNo, ClockMode, Command, Language, Request, RuleSet, Store};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const POSITION_QUERIES: usize = 10_000;
const CYCLES: usize = 1_000;
const COHORT: i32 = 2021;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    v[v.len() / 2]
}

/// One application as the other systems store it: Kezek's order key, spelled out.
#[derive(Clone)]
struct Row {
    id: AppNo,
    rank: i64,
    registered_s: i64,
}

impl Row {
    fn member(&self) -> String {
        format!("{:04}.{:09}.{:03}", self.id.year, self.id.seq, self.id.n)
    }
    fn score(&self) -> f64 {
        // rank < 2^20 and seconds < 2^32: exact in a double (53 bits).
        ((self.rank << 32) + self.registered_s) as f64
    }
}

struct Figures {
    load_s: f64,
    position_us: f64,
    cycle_ms: f64,
}

struct Args {
    n: usize,
    pg: Option<String>,
    redis: Option<String>,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        n: 1_000_000,
        pg: None,
        redis: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match flag.as_str() {
            "--n" => {
                a.n = value("--n")?
                    .parse()
                    .map_err(|e| format!("--n: not a number: {e}"))?
            }
            "--pg" => a.pg = Some(value("--pg")?),
            "--redis" => a.redis = Some(value("--redis")?),
            other => {
                return Err(format!(
                    "unknown argument {other}: use --n N --pg CONNINFO --redis URL"
                ))
            }
        }
    }
    if !(1_000..=2_000_000).contains(&a.n) {
        return Err("--n: between 1,000 and 2,000,000".into());
    }
    Ok(a)
}

fn main() {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("compare: {e}");
            std::process::exit(2);
        }
    };
    eprintln!("kezek: building and loading {} applications ...", a.n);
    let (kezek, dataset, sample) = run_kezek(a.n);
    let mut table = vec![("kezek", kezek)];
    if let Some(pg) = &a.pg {
        eprintln!("postgresql: loading ...");
        match run_pg(pg, &dataset, &sample) {
            Ok(f) => table.push(("postgresql", f)),
            Err(e) => {
                eprintln!("postgresql: {e}");
                std::process::exit(1);
            }
        }
    }
    if let Some(url) = &a.redis {
        eprintln!("redis: loading ...");
        match run_redis(url, &dataset, &sample) {
            Ok(f) => table.push(("redis", f)),
            Err(e) => {
                eprintln!("redis: {e}");
                std::process::exit(1);
            }
        }
    }
    print_table(a.n, &table);
}

/// A row of the table: the operation, its unit, and how to read it from the figures.
type Line = (&'static str, &'static str, fn(&Figures) -> f64);

fn print_table(n: usize, table: &[(&str, Figures)]) {
    println!(
        "one cohort of {n} applications; medians; ratio = other / kezek (above 1: kezek is faster)"
    );
    println!();
    println!("| operation | system | median | ratio |");
    println!("|---|---|---:|---:|");
    let k = &table[0].1;
    let rows: [Line; 3] = [
        ("bulk load (all rows, durable)", "s", |f| f.load_s),
        ("position of a random application", "µs", |f| f.position_us),
        ("take-and-recall cycle (durable)", "ms", |f| f.cycle_ms),
    ];
    for (op, unit, get) in rows {
        for (name, f) in table {
            let ratio = get(f) / get(k);
            println!("| {op} | {name} | {:.3} {unit} | {:.1} |", get(f), ratio);
        }
    }
}

/// The positions to check on every system: (application, Kezek's 1-based position).
type Sample = Vec<(Row, u64)>;

fn run_kezek(n: usize) -> (Figures, Vec<Row>, Sample) {
    let dir = tempfile::tempdir().expect("temp dir");
    let now = bench_now();
    let mut store = Store::init(
        dir.path(),
        &RuleSet::default_files(),
        ClockMode::Manual,
        now,
        Actor::System,
    )
    .expect("init a store");
    let input = rows(n, 7, 100_000);
    let t = Instant::now();
    store
        .import_applications(&input, &Actor::System, now)
        .expect("import the generated rows");
    let load_s = t.elapsed().as_secs_f64();

    let dataset: Vec<Row> = input
        .iter()
        .filter_map(|(_, r)| r.app)
        .filter_map(|id| store.state().app(id))
        .map(|a| Row {
            id: a.id,
            rank: a.key.rule[0],
            registered_s: a.key.rule[1],
        })
        .collect();
    assert_eq!(dataset.len(), n, "every generated row is registered");

    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let picks: Vec<usize> = (0..POSITION_QUERIES)
        .map(|_| rng.random_range(0..n))
        .collect();
    let mut per_round = Vec::new();
    let mut sample = Vec::new();
    for round in 0..5 {
        let t = Instant::now();
        for &i in &picks {
            let app = store.state().app(dataset[i].id).expect("a generated id");
            let p = store.state().queue_position(app).expect("waiting");
            if round == 0 && sample.len() < 100 {
                sample.push((dataset[i].clone(), p));
            }
        }
        per_round.push(t.elapsed().as_secs_f64() * 1e6 / picks.len() as f64);
    }
    let position_us = median(per_round);

    // Places to take: one kindergarten, free access (the priority phase is over).
    let exec = |store: &mut Store, command: Command, reason: Option<&str>, at: Timestamp| {
        store
            .execute(
                &Request {
                    command,
                    actor: Actor::Operator("bench".into()),
                    reason: reason.map(str::to_string),
                },
                at,
            )
            .map(|_| ())
    };
    exec(
        &mut store,
        Command::AddGroups {
            groups: vec![GroupRow {
                kindergarten: "BENCH-1".into(),
                name: "Bench kindergarten".into(),
                district: "Алмалинский".into(),
                cohort: COHORT,
                language: Language::Kk,
                capacity: 10,
            }],
        },
        None,
        now,
    )
    .expect("add a group");
    exec(
        &mut store,
        Command::Publish {
            kindergarten: "BENCH-1".into(),
            cohort: COHORT,
            language: Language::Kk,
            places: 10,
        },
        None,
        now,
    )
    .expect("publish places");
    let (publication, free_at) = store
        .state()
        .open_publications(COHORT, Language::Kk)
        .first()
        .map(|p| (p.id, p.free_access_at))
        .expect("the publication just made");
    let mut at = free_at
        .checked_add(Span::new().minutes(1))
        .expect("a later instant");
    store.tick_to(at).expect("move the clock to free access");

    let mut cycles = Vec::new();
    let mut i = 0usize;
    while cycles.len() < CYCLES {
        i += 1;
        assert!(i < CYCLES * 10, "too few applications may take the place");
        let id = dataset[rng.random_range(0..n)].id;
        let t = Instant::now();
        if exec(
            &mut store,
            Command::Take {
                app: id,
                publication,
            },
            None,
            at,
        )
        .is_err()
        {
            // Not eligible (e.g. another language): draw again, untimed.
            continue;
        }
        exec(&mut store, Command::Recall { app: id }, Some("bench"), at)
            .expect("recall within the window");
        cycles.push(t.elapsed().as_secs_f64() * 1e3);
        at = at
            .checked_add(Span::new().seconds(1))
            .expect("a later instant");
    }
    (
        Figures {
            load_s,
            position_us,
            cycle_ms: median(cycles),
        },
        dataset,
        sample,
    )
}

fn run_pg(conninfo: &str, dataset: &[Row], sample: &Sample) -> Result<Figures, String> {
    use postgres::{Client, NoTls};
    use std::io::Write;
    let e = |what: &'static str| move |err: postgres::Error| format!("{what}: {err}");
    let mut db = Client::connect(conninfo, NoTls).map_err(e("connect"))?;
    db.batch_execute(
        "DROP TABLE IF EXISTS apps; DROP TABLE IF EXISTS places;
         CREATE TABLE apps (year int, seq int, n int, cohort int, rank bigint,
                            registered bigint, status text NOT NULL,
                            PRIMARY KEY (year, seq, n));
         CREATE TABLE places (id int PRIMARY KEY, open int NOT NULL CHECK (open >= 0));
         INSERT INTO places VALUES (1, 10);",
    )
    .map_err(e("create tables"))?;
    let t = Instant::now();
    {
        let mut w = db.copy_in("COPY apps FROM STDIN").map_err(e("copy"))?;
        let mut buf = String::with_capacity(64 * 1024);
        for r in dataset {
            buf.push_str(&format!(
                "{}\t{}\t{}\t{COHORT}\t{}\t{}\tqueued\n",
                r.id.year, r.id.seq, r.id.n, r.rank, r.registered_s
            ));
            if buf.len() > 60 * 1024 {
                w.write_all(buf.as_bytes())
                    .map_err(|e| format!("copy: {e}"))?;
                buf.clear();
            }
        }
        w.write_all(buf.as_bytes())
            .map_err(|e| format!("copy: {e}"))?;
        w.finish().map_err(e("copy"))?;
    }
    db.batch_execute(
        "CREATE INDEX apps_order ON apps (cohort, rank, registered, year, seq, n)
           WHERE status = 'queued';",
    )
    .map_err(e("index"))?;
    // A fresh table's visibility map is empty: without VACUUM, counting on the index
    // would visit the heap for every row (what a careful user runs after a bulk load).
    db.batch_execute("VACUUM ANALYZE apps")
        .map_err(e("vacuum"))?;
    let load_s = t.elapsed().as_secs_f64();

    let position = db
        .prepare(
            "SELECT count(*) + 1 FROM apps a, apps b
             WHERE b.year = $1 AND b.seq = $2 AND b.n = $3
               AND a.cohort = b.cohort AND a.status = 'queued'
               AND (a.rank, a.registered, a.year, a.seq, a.n)
                 < (b.rank, b.registered, b.year, b.seq, b.n)",
        )
        .map_err(e("prepare"))?;
    let pos = |db: &mut Client, r: &Row| -> Result<u64, String> {
        let row = db
            .query_one(
                &position,
                &[&(r.id.year as i32), &(r.id.seq as i32), &(r.id.n as i32)],
            )
            .map_err(|err| format!("position: {err}"))?;
        Ok(row.get::<_, i64>(0) as u64)
    };
    for (r, want) in sample {
        let got = pos(&mut db, r)?;
        if got != *want {
            return Err(format!("{}: position {got}, kezek says {want}", r.member()));
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut per = Vec::new();
    // count(*) walks the index up to the row: far slower; 1,000 queries are enough.
    for _ in 0..(POSITION_QUERIES / 10) {
        let r = &dataset[rng.random_range(0..dataset.len())];
        let t = Instant::now();
        pos(&mut db, r)?;
        per.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let position_us = median(per);

    let mut cycles = Vec::new();
    for _ in 0..CYCLES {
        let r = &dataset[rng.random_range(0..dataset.len())];
        let key = [r.id.year as i32, r.id.seq as i32, r.id.n as i32];
        let t = Instant::now();
        for (status, delta) in [("referral_issued", -1), ("queued", 1)] {
            let mut tx = db.transaction().map_err(e("begin"))?;
            let n = tx
                .execute("UPDATE places SET open = open + $1 WHERE id = 1", &[&delta])
                .map_err(e("update places"))?;
            let m = tx
                .execute(
                    "UPDATE apps SET status = $1 WHERE year = $2 AND seq = $3 AND n = $4",
                    &[&status, &key[0], &key[1], &key[2]],
                )
                .map_err(e("update apps"))?;
            if n != 1 || m != 1 {
                return Err("a cycle changed no row".into());
            }
            tx.commit().map_err(e("commit"))?;
        }
        cycles.push(t.elapsed().as_secs_f64() * 1e3);
    }
    db.batch_execute("DROP TABLE apps; DROP TABLE places;")
        .map_err(e("drop"))?;
    Ok(Figures {
        load_s,
        position_us,
        cycle_ms: median(cycles),
    })
}

fn run_redis(url: &str, dataset: &[Row], sample: &Sample) -> Result<Figures, String> {
    let e = |what: &'static str| move |err: redis::RedisError| format!("{what}: {err}");
    let client = redis::Client::open(url).map_err(e("open"))?;
    let mut con = client.get_connection().map_err(e("connect"))?;
    let key = format!("queue:{COHORT}");
    redis::cmd("DEL")
        .arg(&key)
        .arg("places:1")
        .query::<()>(&mut con)
        .map_err(e("del"))?;
    let t = Instant::now();
    for chunk in dataset.chunks(10_000) {
        let mut zadd = redis::cmd("ZADD");
        zadd.arg(&key);
        for r in chunk {
            zadd.arg(r.score()).arg(r.member());
        }
        zadd.query::<()>(&mut con).map_err(e("zadd"))?;
    }
    redis::cmd("SET")
        .arg("places:1")
        .arg(10)
        .query::<()>(&mut con)
        .map_err(e("set"))?;
    let load_s = t.elapsed().as_secs_f64();

    let rank = |con: &mut redis::Connection, r: &Row| -> Result<u64, String> {
        let got: Option<u64> = redis::cmd("ZRANK")
            .arg(&key)
            .arg(r.member())
            .query(con)
            .map_err(|err| format!("zrank: {err}"))?;
        got.map(|p| p + 1)
            .ok_or_else(|| format!("{} is not in the set", r.member()))
    };
    for (r, want) in sample {
        let got = rank(&mut con, r)?;
        if got != *want {
            return Err(format!("{}: position {got}, kezek says {want}", r.member()));
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut per = Vec::new();
    for _ in 0..POSITION_QUERIES {
        let r = &dataset[rng.random_range(0..dataset.len())];
        let t = Instant::now();
        rank(&mut con, r)?;
        per.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let position_us = median(per);

    let mut cycles = Vec::new();
    for _ in 0..CYCLES {
        let r = &dataset[rng.random_range(0..dataset.len())];
        let t = Instant::now();
        redis::pipe()
            .atomic()
            .cmd("ZREM")
            .arg(&key)
            .arg(r.member())
            .ignore()
            .cmd("DECR")
            .arg("places:1")
            .ignore()
            .query::<()>(&mut con)
            .map_err(e("take"))?;
        redis::pipe()
            .atomic()
            .cmd("ZADD")
            .arg(&key)
            .arg(r.score())
            .arg(r.member())
            .ignore()
            .cmd("INCR")
            .arg("places:1")
            .ignore()
            .query::<()>(&mut con)
            .map_err(e("recall"))?;
        cycles.push(t.elapsed().as_secs_f64() * 1e3);
    }
    redis::cmd("DEL")
        .arg(&key)
        .arg("places:1")
        .query::<()>(&mut con)
        .map_err(e("del"))?;
    Ok(Figures {
        load_s,
        position_us,
        cycle_ms: median(cycles),
    })
}
