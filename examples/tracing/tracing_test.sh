#!/bin/sh
# tracing against an embedded redis-server: it exits 0 (its own checks of
# every scene passed) and its output has the documented line shapes: span
# lines with lock.* attributes for each outcome the scenes produce, and the
# lock_lost event as a log line.
set -u
bin=examples/tracing/tracing
out=${TEST_TMPDIR:-$(mktemp -d)}/tracing.out
fail() {
  echo "FAIL: $*" >&2
  cat "$out" >&2
  exit 1
}

$bin >"$out" 2>&1
rc=$?
[ $rc -eq 0 ] || fail "tracing exited $rc"
grep -q '^all checks passed$' "$out" || fail "no 'all checks passed' line"

# One line per shape the scenes must produce (extended regular expressions).
expect() { grep -Eq "$1" "$out" || fail "no line matches: $1"; }
expect '^span name=lock\.acquire duration_ms=[0-9.]+ status=OK .*lock\.outcome=acquired.* lock\.fencing_token=[1-9][0-9]*'
expect '^span name=lock\.acquire .*status=[A-Z_]+ .*lock\.policy=nightly .*lock\.outcome=skipped'
expect '^span name=lock\.acquire .*status=DEADLINE_EXCEEDED .*lock\.outcome=deadline_exceeded'
expect '^span name=lock\.hold duration_ms=[0-9.]+ status=OK .*lock\.lost=false .*lock\.outcome=released'
expect '^span name=lock\.hold .*lock\.policy=short-lease .*lock\.lost=true .*lock\.outcome=lost'
expect '^log severity=ERROR event=lock_lost policy=short-lease key=[0-9a-f]{8}:order-44 '
echo PASS
