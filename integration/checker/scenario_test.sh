#!/bin/sh
# Runs one fault scenario of the workload driver in short mode; the driver
# exits non-zero on any violation the scenario does not document.
set -eu
scenario=$1
out=${TEST_UNDECLARED_OUTPUTS_DIR:-${TEST_TMPDIR:-/tmp}}
exec integration/checker/driver --scenario="$scenario" --short \
  --summary="$out/summary.jsonl" --out="${TEST_TMPDIR:-/tmp}/history-$scenario"
