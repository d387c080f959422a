#!/bin/sh
# metrics_server while its workers take locks: /metrics, scraped with curl,
# has the lock_* families of lock::RegisterMetrics with the documented names,
# labels and bucket bounds, next to the application's own metric, and
# lock_acquired_total of the contended policy grows between two scrapes.
# Waits are polls with a bound, never a fixed sleep that the result depends on.
set -u
bin=examples/metrics_server/metrics_server
dir=${TEST_TMPDIR:-$(mktemp -d)}
log=$dir/metrics_server.log
pid=""
fail() {
  echo "FAIL: $*" >&2
  cat "$log" >&2
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  exit 1
}

# A 100ms refresh keeps the scrapes close to the statistics; --seconds
# bounds the process should this script be killed first.
$bin --workers 3 --refresh_ms 100 --seconds 300 >"$log" 2>&1 &
pid=$!

# Polls `cond` (a shell command) every 0.1s for up to 60s.
eventually() {
  i=0
  while [ $i -lt 600 ]; do
    eval "$1" && return 0
    kill -0 "$pid" 2>/dev/null || fail "metrics_server exited early"
    sleep 0.1
    i=$((i + 1))
  done
  return 1
}

port_of_log() {
  port=$(sed -n 's|^metrics_server: serving /metrics on 127\.0\.0\.1:\([0-9][0-9]*\),.*|\1|p' "$log")
  [ -n "$port" ]
}
eventually port_of_log || fail "no 'serving /metrics on' line"
echo "serving on port $port"

page=$dir/metrics.txt
scrape() { curl -sf --max-time 10 "http://127.0.0.1:$port/metrics" >"$page"; }
# The value of the series written exactly as $1 ("" when absent).
value() { awk -v s="$1" 'substr($0, 1, length(s) + 1) == s " " { print $2 }' "$page"; }
acquired() { value 'lock_acquired_total{policy="report"}'; }

first_positive() { scrape && a=$(acquired) && [ -n "$a" ] && [ "$a" -gt 0 ] 2>/dev/null; }
eventually first_positive || fail "lock_acquired_total{policy=\"report\"} never above 0: $(acquired)"
first=$a
grows() { scrape && b=$(acquired) && [ -n "$b" ] && [ "$b" -gt "$first" ] 2>/dev/null; }
eventually grows || fail "lock_acquired_total{policy=\"report\"} stayed at $first"
echo "lock_acquired_total{policy=\"report\"}: $first, then $b"

# The last page, checked line by line.
has() { grep -qxF "$1" "$page" || fail "missing line: $1"; }
has '# TYPE lock_acquired_total counter'
has '# HELP lock_acquired_total Locks acquired.'
has '# TYPE lock_active gauge'
has '# TYPE lock_acquire_wait_seconds histogram'
has '# TYPE lock_renewal_queue_length gauge'
has '# TYPE lock_config_reload_errors_total counter'
has 'lock_policy_info{kind="mutex",policy="report"} 1'
has 'lock_policy_info{kind="semaphore",policy="export-slots"} 1'
grep -q '^metrics_server_jobs_total [1-9]' "$page" || fail "the application's own metric is missing"
for h in lock_acquire_wait_seconds lock_hold_seconds lock_script_call_seconds; do
  for le in 0.0001 0.00025 0.0005 0.001 0.0025 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 +Inf; do
    grep -q "^${h}_bucket{policy=\"report\",le=\"$le\"} [0-9]" "$page" ||
      fail "missing bucket le=$le of $h{policy=\"report\"}"
  done
  count=$(value "${h}_count{policy=\"report\"}")
  inf=$(value "${h}_bucket{policy=\"report\",le=\"+Inf\"}")
  [ -n "$count" ] && [ "$count" -gt 0 ] && [ "$count" = "$inf" ] ||
    fail "$h{policy=\"report\"}: count '$count', +Inf bucket '$inf'"
done

kill -TERM "$pid"
wait "$pid"
rc=$?
pid=""
[ $rc -eq 0 ] || fail "metrics_server exited $rc after SIGTERM"
grep -q '^metrics_server: stopped$' "$log" || fail "no 'stopped' line"
echo PASS
