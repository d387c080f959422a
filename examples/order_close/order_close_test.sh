#!/bin/sh
# The demo in a short mode: its own verification must pass (exit 0) and say
# so, and the summary must carry the workers' lock statistics.
set -eu
out=$(examples/order_close/order_close --workers 2 --threads 3 --orders 200 2>&1) || {
  echo "$out"
  echo "demo exited non-zero" >&2
  exit 1
}
echo "$out"
check() { echo "$out" | grep -Eq "$1" || { echo "missing: $1" >&2; exit 1; }; }
check "^PASS: every order closed exactly once"
check "orders closed exactly once +200/200"
check "lock stats agree with the calls +[0-9]+ acquired +$"
check "^lock statistics per policy"
check "^ policy order-close$"
check "woken by notify +[0-9]+"
check "acquire wait p50 / p90 / p99 +[0-9.]+(us|ms|s) / "
check "closed [0-9]+/200 .* busy waits [0-9]+/s +retries [0-9]+/s"
