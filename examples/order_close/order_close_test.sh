#!/bin/sh
# The demo in a short mode: its own verification must pass (exit 0) and say so.
set -eu
out=$(examples/order_close/order_close --workers=2 --threads=3 --orders=100 2>&1) || {
  echo "$out"
  echo "demo exited non-zero" >&2
  exit 1
}
echo "$out"
echo "$out" | grep -q "^PASS: every order closed exactly once"
echo "$out" | grep -Eq "orders closed exactly once +100/100"
