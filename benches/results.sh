#!/usr/bin/env bash
# Regenerates benches/RESULTS.md: every figure of the README's "Measuring" section, in one
# run on this machine, with the date and the machine (cores, memory) at the top.
#
#   benches/results.sh [N]     N applications for the 1,000,000-sized steps (default 1000000)
#
# Steps (each prints its own table; a failed step is written down as failed, the others
# still run, and the script then exits 1):
#   criterion    cargo bench -p kezek-benches, then the medians (criterion_table)
#   measure      position query and bulk import rate (bin measure)
#   recall       one signed recall through the API (admin example citizen_recall_timing)
#   compare      Kezek beside PostgreSQL and Redis (benches/compare.sh N)
#   load         60 s of mixed reads and writes on `kezek serve`, lost-write check (bin load)
#   rss          resident memory of `kezek serve` holding N applications (bin rss)
#   crash        SIGKILL at 200 points of a mixed workload (tests/tests/crash_mixed.rs)
#   fuzz         each cargo-fuzz target for FUZZ_SECONDS (default 600) if cargo-fuzz is
#                installed; FUZZ_SECONDS=0 skips it
# KEZEK_RESULTS_STEPS="measure rss" runs only those steps; the sections of the other steps
# are kept from the file as it was (each section starts with a `<!-- step NAME -->` line).
# About an hour and a half on 2 cores with the fuzz step, half an hour without it.
set -uo pipefail
cd "$(dirname "$0")/.."
N="${1:-1000000}"
ALL_STEPS="criterion measure recall compare load rss crash fuzz"
STEPS="${KEZEK_RESULTS_STEPS:-$ALL_STEPS}"
FUZZ_SECONDS="${FUZZ_SECONDS:-600}"
TARGET="${CARGO_TARGET_DIR:-target}"
OUT=benches/RESULTS.md
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
failed=()

if ! cargo build --release -q -p kezek-admin -p kezek-benches --bins; then
  echo "results: the release build failed" >&2
  exit 1
fi
export KEZEK_BIN="$TARGET/release/kezek"

# step NAME TITLE COMMAND...: runs the command, keeps its standard output as the section
# (its standard error goes to the terminal and to WORK/NAME.log).
step() {
  local name="$1" title="$2"
  shift 2
  case " $STEPS " in *" $name "*) ;; *) return 0 ;; esac
  echo "results: $name ..." >&2
  local t0=$SECONDS load0
  load0="$(cut -d' ' -f1 /proc/loadavg)"
  { echo "<!-- step $name -->"; echo "## $title"; echo; } >"$WORK/$name.md"
  if "$@" >>"$WORK/$name.md" 2> >(tee "$WORK/$name.log" >&2); then
    printf '\n(this step: %s s, ended %s; load average %s at its start, %s at its end)\n' "$((SECONDS - t0))" "$(date -u +'%Y-%m-%d %H:%M UTC')" "$load0" "$(cut -d' ' -f1 /proc/loadavg)" >>"$WORK/$name.md"
  else
    local rc=$?
    printf '\n**Failed** (exit code %s after %s s, %s); the last lines of its output:\n\n```\n%s\n```\n' \
      "$rc" "$((SECONDS - t0))" "$(date -u +'%Y-%m-%d %H:%M UTC')" "$(tail -n 15 "$WORK/$name.log")" >>"$WORK/$name.md"
    failed+=("$name")
  fi
}

criterion() {
  cargo bench -q -p kezek-benches --bench queue >&2 && "$TARGET/release/criterion_table"
}
crash() {
  KEZEK_CRASH_POINTS=200 cargo test -q --release -p kezek-tests --test crash_mixed -- --nocapture >/dev/null 2>"$WORK/crash.err"
  local rc=$?
  cat "$WORK/crash.err" >&2
  echo '```'
  grep -E '^crash run:' "$WORK/crash.err"
  echo '```'
  return $rc
}
fuzz() {
  if ! command -v cargo-fuzz >/dev/null 2>&1 || [ "$FUZZ_SECONDS" = 0 ]; then
    echo "Skipped (cargo-fuzz not installed, or FUZZ_SECONDS=0)."
    return 0
  fi
  echo "Each target for $FUZZ_SECONDS s from its seed corpus in fuzz/corpus (copied, so the"
  echo "repository's corpus is not grown), one job, libFuzzer's figures:"
  echo
  echo "| target | executions | executions/s | coverage (edges) | corpus | findings |"
  echo "|---|---:|---:|---:|---:|---:|"
  local rc=0 t
  for t in event_decode csv_import rule_loader xml_verify console; do
    mkdir -p "$WORK/corpus/$t" "$WORK/artifacts/$t"
    cp fuzz/corpus/"$t"/* "$WORK/corpus/$t/"
    (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -s none "$t" "$WORK/corpus/$t" -- \
      -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=4096 -print_final_stats=1 \
      -artifact_prefix="$WORK/artifacts/$t/") >"$WORK/fuzz-$t.log" 2>&1 || rc=1
    local runs rate cov corp finds
    # "Done N runs" when the time ran out; a run stopped by a finding prints only its stats.
    runs="$(grep -oE 'Done [0-9]+ runs' "$WORK/fuzz-$t.log" | grep -oE '[0-9]+' | tail -1)"
    [ -n "$runs" ] || runs="$(grep -oE 'number_of_executed_units: *[0-9]+' "$WORK/fuzz-$t.log" | grep -oE '[0-9]+$' | tail -1)"
    rate="$(grep -oE 'average_exec_per_sec: *[0-9]+' "$WORK/fuzz-$t.log" | grep -oE '[0-9]+$' | tail -1)"
    cov="$(grep -oE 'cov: [0-9]+' "$WORK/fuzz-$t.log" | tail -1 | grep -oE '[0-9]+')"
    corp="$(grep -oE 'corp: [0-9]+' "$WORK/fuzz-$t.log" | tail -1 | grep -oE '[0-9]+')"
    finds="$(find "$WORK/artifacts/$t" -type f | wc -l)"
    echo "| $t | ${runs:-?} | ${rate:-?} | ${cov:-?} | ${corp:-?} | $finds |"
    if [ "$finds" -gt 0 ]; then
      # Kept where cargo fuzz keeps its own (not in git): minimize, fix, then add the
      # minimized input to fuzz/artifacts-minimized/$t/ so that cargo test replays it.
      mkdir -p "fuzz/artifacts/$t"
      cp "$WORK/artifacts/$t"/* "fuzz/artifacts/$t/"
      echo "results: fuzz $t found $finds input(s), copied to fuzz/artifacts/$t/; its log: the lines below" >&2
      tail -n 40 "$WORK/fuzz-$t.log" >&2
      rc=1
    fi
  done
  return $rc
}

step criterion "Criterion benches (cargo bench -p kezek-benches)" criterion
step measure "Position query and bulk import (bin measure)" \
  "$TARGET/release/measure"
step recall "One signed recall through the API (admin example citizen_recall_timing)" \
  cargo run -q --release -p kezek-admin --example citizen_recall_timing
step compare "Kezek, PostgreSQL and Redis on $N applications (benches/compare.sh $N)" \
  benches/compare.sh "$N"
step load "Load run (bin load, 60 s)" "$TARGET/release/load" --seconds 60
step rss "Resident memory (bin rss, $N applications)" "$TARGET/release/rss" --applications "$N"
step crash "Crash run (SIGKILL at 200 points, tests/tests/crash_mixed.rs)" crash
step fuzz "Fuzzing (cargo-fuzz, fuzz/)" fuzz

{
  echo "# Results"
  echo
  echo "Generated by \`benches/results.sh $N\`; last run $(date -u +'%Y-%m-%d %H:%M UTC') (steps: $STEPS) at commit"
  echo "\`$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' (with uncommitted changes)')\`."
  echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')),"
  echo "$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) memory, $(uname -sr), $(rustc -V)."
  echo "Shared machines are noisy: compare ratios within one run, not figures across runs."
  echo
  for s in $ALL_STEPS; do
    if [ -f "$WORK/$s.md" ]; then
      cat "$WORK/$s.md"; echo
    elif [ -f "$OUT" ]; then
      # Not run this time: the section as the file had it (it says its own date, if any).
      awk -v want="<!-- step $s -->" '
        /^<!-- step / { keep = ($0 == want) }
        keep { print }' "$OUT"
    fi
  done
} >"$WORK/RESULTS.md"
mv "$WORK/RESULTS.md" "$OUT"
echo "results: wrote $OUT" >&2
if [ ${#failed[@]} -gt 0 ]; then
  echo "results: failed steps: ${failed[*]}" >&2
  exit 1
fi
