#!/bin/sh
# The inventory example in a short mode: no overselling, the long deduction
# kept by renewal, the stalled holder's late write refused by its fence. And
# the same run without the fence must be caught overselling (exit 1), or the
# check would prove nothing.
set -u
bin=examples/inventory/inventory
fail() { echo "FAIL: $*" >&2; exit 1; }

out=$($bin --workers 2 --threads 2 --seconds 1 2>&1); rc=$?
echo "$out"
[ $rc -eq 0 ] || fail "inventory exited $rc"
check() { echo "$out" | grep -Eq "$1" || fail "missing: $1"; }
check "^PASS: no overselling: final stock = initial - accepted deductions on every SKU"
check "units oversold +0 +$"
check "holds lost \(library stats\) +1 +$"
check "the straggler's late write refused +yes +$"
check "long deduction kept by renewal +yes \([1-9][0-9]* renewals\) +$"
check "Held::lost\(\) after resuming +yes"
check "stop_token requested +yes +$"
check "straggler frozen \(SIGSTOP\) holding sku-0"
check "straggler resumed \(SIGCONT\)"

out=$($bin --workers 2 --threads 2 --seconds 1 --unfenced 2>&1); rc=$?
echo "$out"
[ $rc -eq 1 ] || fail "--unfenced exited $rc, want 1"
echo "$out" | grep -Eq "^FAIL: [1-9][0-9]* units oversold" || fail "--unfenced did not report overselling"
echo PASS
