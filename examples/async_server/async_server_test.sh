#!/bin/sh
# The asio service in its self-check mode: 300 concurrent connections on 5
# orders, each request taking its order's lock with co_await on one loop
# thread. Every request must close its order under the lock, never two at
# once per order, fences increasing, in a handful of threads.
set -u
bin=examples/async_server/async_server
fail() { echo "FAIL: $*" >&2; exit 1; }

out=$($bin --clients 300 --orders 5 --requests 2 2>&1); rc=$?
echo "$out"
[ $rc -eq 0 ] || fail "async_server exited $rc"
check() { echo "$out" | grep -Eq "$1" || fail "missing: $1"; }
check "^PASS: every request closed its order under the lock"
check "^requests answered OK +600/600$"
check "^overlapping sections +0$"
check "^fences out of order +0$"
threads=$(echo "$out" | sed -n 's/^process threads (max) *//p')
[ -n "$threads" ] && [ "$threads" -le 16 ] || fail "process threads: $threads (want <= 16)"
echo PASS
