#!/bin/sh
# lockctl offline: exit codes, the error format, golden explain and stats
# output, usage errors and --help of every command. (Commands that talk to
# Redis are tested end to end in lockctl_e2e_test.)
set -u
ctl=tools/lockctl/lockctl
d=tools/lockctl/testdata
fail() { echo "FAIL: $*" >&2; exit 1; }
export LOCKCTL_TEST_PW=the-secret-value
unset LOCK_CONFIG

out=$($ctl validate $d/good.json) || fail "validate good.json exited $?"
echo "$out" | grep -q "^ok: $d/good.json (2 policies, 1 redis targets)$" || fail "validate output: $out"

err=$($ctl validate $d/good.json $d/bad.json 2>&1); rc=$?
[ $rc -eq 1 ] || fail "validate bad.json exited $rc, want 1"
echo "$err" | grep -q "bad.json: /policies/a/tll: unknown field" || fail "missing unknown-field error: $err"
echo "$err" | grep -q 'did you mean "ttl"' || fail "missing did-you-mean: $err"
echo "$err" | grep -q "bad.json: /policies/b/retry/max_attempts: must be >= 1, got 0" || fail "missing range error: $err"

$ctl validate >/dev/null 2>&1; [ $? -eq 2 ] || fail "validate without args must exit 2"
$ctl frobnicate >/dev/null 2>&1; [ $? -eq 2 ] || fail "unknown command must exit 2"
$ctl >/dev/null 2>&1; [ $? -eq 2 ] || fail "no command must exit 2"
$ctl --help | grep -q "^exit codes:" || fail "--help documents exit codes"
out=$($ctl --version) || fail "--version exited $?"
[ "$out" = "lockctl $(cat VERSION)" ] || fail "--version says \"$out\", VERSION says $(cat VERSION)"

for cmd in validate explain status list release watch stats bench; do
  out=$($ctl $cmd --help) || fail "$cmd --help exited $?"
  echo "$out" | grep -q "^usage: lockctl $cmd" || fail "$cmd --help: $out"
  echo "$out" | grep -q "Exit codes" || fail "$cmd --help does not document exit codes"
done
# That each --help lists exactly the command's options, with their help, is
# cli_test's (in-process: a run of lockctl per option is too slow here).

out=$($ctl explain order-close --config $d/good.json) || fail "explain exited $?"
[ "$out" = "$(cat $d/explain.golden)" ] || { echo "$out"; fail "explain differs from golden"; }
echo "$out" | grep -q "the-secret-value" && fail "explain printed the password"
LOCK_CONFIG=$d/good.json $ctl explain nope >/dev/null 2>&1; [ $? -eq 1 ] || fail "unknown policy must exit 1"
$ctl explain order-close >/dev/null 2>&1; [ $? -eq 2 ] || fail "explain without config must exit 2"

# Usage errors are caught before any Redis is contacted.
$ctl status order-close >/dev/null 2>&1; [ $? -eq 2 ] || fail "status without KEY must exit 2"
$ctl status order-close k >/dev/null 2>&1; [ $? -eq 2 ] || fail "status without config must exit 2"
$ctl list --config $d/good.json >/dev/null 2>&1; [ $? -eq 2 ] || fail "list without POLICY must exit 2"
$ctl list order-close --limit 0 --config $d/good.json >/dev/null 2>&1; [ $? -eq 2 ] || fail "list --limit 0 must exit 2"
err=$($ctl release order-close k --config $d/good.json 2>&1); rc=$?
[ $rc -eq 2 ] || fail "release without --owner/--force exited $rc, want 2"
echo "$err" | grep -q "refusing to release without --owner TOKEN" || fail "release refusal message: $err"
$ctl release order-close k --owner t --force --config $d/good.json >/dev/null 2>&1; [ $? -eq 2 ] || fail "--owner with --force must exit 2"
err=$($ctl release order-close k --force --config $d/good.json 2>&1 </dev/null); rc=$?
[ $rc -eq 2 ] || fail "--force without --yes off a terminal exited $rc, want 2"
echo "$err" | grep -q "add --yes" || fail "--force refusal message: $err"
$ctl status order-close k --frob --config $d/good.json >/dev/null 2>&1; [ $? -eq 2 ] || fail "unknown option must exit 2"
$ctl watch --config $d/good.json >/dev/null 2>&1; [ $? -eq 2 ] || fail "watch without POLICY must exit 2"
$ctl watch order-close a b --config $d/good.json >/dev/null 2>&1; [ $? -eq 2 ] || fail "watch with two patterns must exit 2"
$ctl watch order-close --count 0 --config $d/good.json >/dev/null 2>&1; [ $? -eq 2 ] || fail "watch --count 0 must exit 2"
$ctl watch order-close --interval 0.01 --config $d/good.json >/dev/null 2>&1; [ $? -eq 2 ] || fail "watch --interval 0.01 must exit 2"
$ctl watch order-close >/dev/null 2>&1; [ $? -eq 2 ] || fail "watch without config must exit 2"
$ctl bench --seconds 0 >/dev/null 2>&1; [ $? -eq 2 ] || fail "bench --seconds 0 must exit 2"

# Options are per command; every problem with one is exit 2 naming it.
usage_error() {  # usage_error "MESSAGE" lockctl-args...
  want=$1; shift
  err=$($ctl "$@" 2>&1); rc=$?
  [ $rc -eq 2 ] || fail "lockctl $* exited $rc, want 2: $err"
  echo "$err" | grep -qF "lockctl: $want" || fail "lockctl $*: want \"$want\", got: $err"
  echo "$err" | grep -qF "run \`lockctl $1 --help\` for usage" || fail "lockctl $*: no pointer to --help: $err"
}
usage_error 'status has no option "--frob"' status order-close k --frob --config $d/good.json
usage_error 'status has no option "--owner"' status order-close k --owner t --config $d/good.json
usage_error 'stats has no option "--config"' stats $d/stats.json --config $d/good.json
usage_error '--threads needs a whole number, got "x"' bench --threads x
usage_error '--seconds needs a number in (0, 3600], got -1' bench --seconds -1
usage_error '--interval needs a number, got "soon"' watch order-close --interval soon --config $d/good.json
usage_error '--limit needs a value' list order-close --config $d/good.json --limit
usage_error '--json needs true or false, got "maybe"' stats $d/stats.json --json=maybe

# --json=false and --nojson are the text; the last of them counts.
out=$($ctl stats $d/stats.json --json=false) || fail "stats --json=false exited $?"
[ "$out" = "$(cat $d/stats.golden)" ] || { echo "$out"; fail "stats --json=false is not the text"; }
out=$($ctl stats $d/stats.json --json --nojson) || fail "stats --json --nojson exited $?"
[ "$out" = "$(cat $d/stats.golden)" ] || { echo "$out"; fail "stats --json --nojson is not the text"; }

# After "--" an argument starting with dashes is a path, not an option.
tmp=${TEST_TMPDIR:-/tmp}/dashdash.$$
mkdir -p "$tmp" && cp $d/good.json "$tmp/--good.json" || fail "cannot copy good.json"
here=$PWD
out=$(cd "$tmp" && "$here/$ctl" validate -- --good.json) || fail "validate -- --good.json exited $?"
[ "$out" = "ok: --good.json (2 policies, 1 redis targets)" ] || fail "validate -- --good.json: $out"
(cd "$tmp" && "$here/$ctl" validate --good.json >/dev/null 2>&1); [ $? -eq 2 ] || fail "validate --good.json without -- must exit 2"
rm -rf "$tmp"
$ctl bench --config $d/good.json >/dev/null 2>&1; [ $? -eq 2 ] || fail "bench with a config but no --policy must exit 2"

# stats: both dump formats give the same tables; the golden is the JSON one.
out=$($ctl stats $d/stats.json) || fail "stats json exited $?"
[ "$out" = "$(cat $d/stats.golden)" ] || { echo "$out"; fail "stats differs from golden"; }
out=$($ctl stats $d/stats.prom) || fail "stats prom exited $?"
echo "$out" | head -1 | grep -q "(Prometheus text)" || fail "prometheus format not detected: $out"
[ "$(echo "$out" | tail -n +2)" = "$(tail -n +2 $d/stats.golden)" ] || { echo "$out"; fail "stats of the Prometheus text differs"; }
out=$($ctl stats - --json < $d/stats.prom) || fail "stats - --json exited $?"
echo "$out" | grep -q '"lock_acquired_total": 500' || fail "stats --json: $out"
$ctl stats $d/good.json >/dev/null 2>&1; [ $? -eq 1 ] || fail "stats of a non-dump must exit 1"
$ctl stats /nonexistent >/dev/null 2>&1; [ $? -eq 1 ] || fail "stats of a missing file must exit 1"
echo PASS
