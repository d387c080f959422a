#!/bin/sh
# lockctl end to end: exit codes, the error format, and golden explain output.
set -u
ctl=tools/lockctl/lockctl
d=tools/lockctl/testdata
fail() { echo "FAIL: $*" >&2; exit 1; }
export LOCKCTL_TEST_PW=the-secret-value

out=$($ctl validate $d/good.json) || fail "validate good.json exited $?"
echo "$out" | grep -q "^ok: $d/good.json (2 policies, 1 redis targets)$" || fail "validate output: $out"

err=$($ctl validate $d/good.json $d/bad.json 2>&1); rc=$?
[ $rc -eq 1 ] || fail "validate bad.json exited $rc, want 1"
echo "$err" | grep -q "bad.json: /policies/a/tll: unknown field" || fail "missing unknown-field error: $err"
echo "$err" | grep -q 'did you mean "ttl"' || fail "missing did-you-mean: $err"
echo "$err" | grep -q "bad.json: /policies/b/retry/max_attempts: must be >= 1, got 0" || fail "missing range error: $err"

$ctl validate >/dev/null 2>&1; [ $? -eq 2 ] || fail "validate without args must exit 2"
$ctl frobnicate >/dev/null 2>&1; [ $? -eq 2 ] || fail "unknown command must exit 2"
$ctl validate --help | grep -q "usage: lockctl validate" || fail "validate --help"

out=$($ctl explain order-close --config $d/good.json) || fail "explain exited $?"
[ "$out" = "$(cat $d/explain.golden)" ] || { echo "$out"; fail "explain differs from golden"; }
echo "$out" | grep -q "the-secret-value" && fail "explain printed the password"

LOCK_CONFIG=$d/good.json $ctl explain nope >/dev/null 2>&1; [ $? -eq 1 ] || fail "unknown policy must exit 1"
echo PASS
