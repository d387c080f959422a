#!/bin/sh
# lockctl watch in a real terminal: tmux runs it against a redis-server
# while watch_workload processes hold a lock, wait for it and churn another;
# the test polls the screen (capture-pane, bounded) until it shows the held
# key with its holder's pid, the waiter and grants, sends `q`, and checks
# that lockctl exited 0 and left the terminal as it found it.
set -u
ctl=$PWD/tools/lockctl/lockctl
workload=$PWD/tools/lockctl/watch_workload
redis=${REDIS_SERVER:-redis-server}
# Unix socket paths are limited to 107 bytes: TEST_TMPDIR can be longer.
d=$(mktemp -d /tmp/lockctl-watch.XXXXXX) || exit 1
pids=""
tm() { tmux -S "$d/tmux.sock" -f /dev/null "$@"; }
cleanup() {
  tm kill-server 2>/dev/null
  for p in $pids; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$d"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  echo "--- screen" >&2; tm capture-pane -p -t w >&2
  for f in "$d"/*.log; do echo "--- $f" >&2; cat "$f" >&2; done
  exit 1
}
# Polls the screen until it matches the extended regex $1, for at most $2
# seconds (generous: the machine may be loaded and lockctl under ASan).
wait_screen() {
  end=$(( $(date +%s) + $2 ))
  while [ "$(date +%s)" -le "$end" ]; do
    tm capture-pane -p -t w > "$d/screen.txt" 2>/dev/null
    grep -Eq -- "$1" "$d/screen.txt" && return 0
    sleep 0.2
  done
  return 1
}

"$redis" --port 0 --unixsocket "$d/redis.sock" --save "" --appendonly no \
  --dir "$d" > "$d/redis.log" 2>&1 &
pids="$pids $!"
cat > "$d/policies.json" <<JSON
{
  "redis": { "default": { "addrs": ["unix:$d/redis.sock"] } },
  "policies": {
    "orders": { "key_prefix": "order:", "ttl": "1h",
                "wait": { "timeout": "10m", "notify": true },
                "retry": { "max_attempts": 1000000, "max_delay": "1s" } },
    "churn": { "key_prefix": "order:", "ttl": "10s", "on_busy": "fail" }
  }
}
JSON
cfg=$d/policies.json
end=$(( $(date +%s) + 30 ))
until "$ctl" status orders probe --config "$cfg" >/dev/null 2>&1; do
  [ "$(date +%s)" -le "$end" ] || fail "redis-server did not come up"
  sleep 0.1
done

"$workload" "$cfg" orders k1 hold > "$d/holder.log" 2>&1 &
holder=$!
pids="$pids $holder"
end=$(( $(date +%s) + 60 ))
until grep -q held "$d/holder.log"; do
  [ "$(date +%s)" -le "$end" ] || fail "the holder did not take k1"
  sleep 0.1
done
"$workload" "$cfg" orders k1 hold > "$d/waiter.log" 2>&1 &
pids="$pids $!"
"$workload" "$cfg" churn k2 churn > "$d/churn.log" 2>&1 &
pids="$pids $!"

export TERM=xterm
tm new-session -d -s w -x 200 -y 40 sh || fail "tmux did not start"
tm send-keys -t w "$ctl watch orders --config $cfg; echo watch-exit=\$?; stty -a | tr -s ' ;' '\n\n' | grep -Ex -- '-?(icanon|echo)' | tr '\n' ' '; echo stty=\$((6*7))" Enter

wait_screen "^KEY +STATE +HOST:PID +AGE +TTL +FENCE +WAITERS +OWNER$" 60 ||
  fail "no table header"
# The holder's row: its pid, an age and lease, a fencing token (server-clock
# microseconds, 16 digits), and the one process waiting for it.
wait_screen "^k1 +held +[^ ]+:$holder +[0-9][0-9.hms]* +[0-9][0-9.hms]* +[0-9]{16} +1 +[^ ]+:$holder:[0-9a-f]{32}$" 60 ||
  fail "k1 not shown held by pid $holder with 1 waiter"
wait_screen "grants/s ([1-9][0-9]*\.[0-9]|0\.[1-9])" 60 || fail "no grants counted"
grep -Eq "lockctl watch: policy orders \(prefix \"order:\", match \"\*\"\) on unix:$d/redis.sock db 0" \
  "$d/screen.txt" || fail "title line"
echo "--- screen while watching"
cat "$d/screen.txt"
if [ -n "${TEST_UNDECLARED_OUTPUTS_DIR:-}" ]; then
  cp "$d/screen.txt" "$TEST_UNDECLARED_OUTPUTS_DIR/watch_screen.txt"
fi

tm send-keys -t w q
# The marker is computed so that the echoed command line cannot match it.
wait_screen "stty=42$" 30 || fail "lockctl watch did not end on q"
grep -q "^watch-exit=0$" "$d/screen.txt" || fail "lockctl watch did not exit 0"
# Raw mode undone (no "-icanon" / "-echo") and the alternate screen left.
grep -q "^icanon echo stty=42$" "$d/screen.txt" || fail "terminal not restored"
grep -q "WAITERS" "$d/screen.txt" && fail "the watch screen was left on the terminal"

# Ctrl-C (SIGINT) ends it the same way, the terminal restored too.
tm send-keys -t w "clear; $ctl watch orders k1 --config $cfg; echo sigint-exit=\$?; stty -a | tr -s ' ;' '\n\n' | grep -Ex -- '-?(icanon|echo)' | tr '\n' ' '; echo stty=\$((6*7+1))" Enter
wait_screen "^k1 +held +[^ ]+:$holder " 60 || fail "the second watch shows no k1"
tm send-keys -t w C-c
wait_screen "stty=43$" 30 || fail "lockctl watch did not end on Ctrl-C"
grep -q "^sigint-exit=0$" "$d/screen.txt" || fail "lockctl watch did not exit 0 on Ctrl-C"
grep -q "^icanon echo stty=43$" "$d/screen.txt" || fail "terminal not restored after Ctrl-C"
echo PASS
