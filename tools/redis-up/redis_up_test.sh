#!/bin/bash
# Starts each topology with redis-up, checks the printed target against the
# servers it names, and that SIGINT / SIGTERM stop every node.
set -euo pipefail

redis_up="$TEST_SRCDIR/redis_lock/tools/redis-up/redis-up"
cli=$(command -v redis-cli || echo /usr/bin/redis-cli)
out="$TEST_TMPDIR/out.json"

fail() { echo "FAIL: $*" >&2; exit 1; }

# Runs redis-up in the background until it has printed its JSON line.
start() {
  : >"$out"
  "$redis_up" "$@" >"$out" 2>"$TEST_TMPDIR/err.log" &
  pid=$!
  for _ in $(seq 600); do
    [[ -s "$out" ]] && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$TEST_TMPDIR/err.log" >&2; fail "redis-up $* exited"; }
    sleep 0.1
  done
  fail "redis-up $* printed nothing"
}

# Stops redis-up with a signal and checks that the ports no longer answer.
stop() {
  local signal=$1; shift
  kill "-$signal" "$pid"
  wait "$pid" || fail "redis-up exited with $? on SIG$signal"
  for port in "$@"; do
    if "$cli" -p "$port" ping >/dev/null 2>&1; then
      fail "port $port still answers after SIG$signal"
    fi
  done
}

ports() { grep -o '127.0.0.1:[0-9]*' "$out" | cut -d: -f2; }

start standalone
grep -q '^{"mode": "standalone", "addrs": \["127.0.0.1:[0-9]*"\]}$' "$out" || fail "$(cat "$out")"
p=$(ports)
[[ $("$cli" -p "$p" ping) == PONG ]] || fail "standalone does not answer"
stop INT $p

start redlock --n 3
grep -q '"mode": "redlock"' "$out" || fail "$(cat "$out")"
[[ $(ports | wc -l) == 3 ]] || fail "want 3 masters: $(cat "$out")"
stop TERM $(ports)

start sentinel
grep -q '"master_name": "mymaster"' "$out" || fail "$(cat "$out")"
s=$(ports | head -1)
"$cli" -p "$s" sentinel get-master-addr-by-name mymaster | grep -q 127.0.0.1 ||
  fail "sentinel does not know the master"
stop INT $(ports)

start cluster --n 3 --replicas 0
grep -q '"mode": "cluster"' "$out" || fail "$(cat "$out")"
c=$(ports | head -1)
"$cli" -p "$c" cluster info | grep -q 'cluster_state:ok' || fail "cluster not ok"
stop INT $(ports)

# --tls: the target names TLS ports and the certificates that reach them.
open_port() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
json_field() { grep -o "\"$1\": \"[^\"]*\"" "$out" | cut -d'"' -f4; }
start standalone --tls
grep -q '^{"mode": "standalone", "addrs": \["127.0.0.1:[0-9]*"\], "tls": {"ca_file": "[^"]*/ca.crt", "cert_file": "[^"]*/client.crt", "key_file": "[^"]*/client.key"}}$' "$out" ||
  fail "$(cat "$out")"
p=$(ports)
tls=(--tls --cacert "$(json_field ca_file)" --cert "$(json_field cert_file)" --key "$(json_field key_file)")
[[ $("$cli" "${tls[@]}" -p "$p" ping) == PONG ]] || fail "TLS standalone does not answer over TLS"
[[ $("$cli" -p "$p" ping 2>/dev/null) != PONG ]] || fail "TLS port answers plaintext"
kill -INT "$pid"
wait "$pid" || fail "redis-up --tls exited with $?"
open_port "$p" && fail "TLS port $p still open after SIGINT"

start sentinel --tls
grep -q '"tls": {"ca_file"' "$out" || fail "$(cat "$out")"
tls=(--tls --cacert "$(json_field ca_file)" --cert "$(json_field cert_file)" --key "$(json_field key_file)")
s=$(ports | head -1)
"$cli" "${tls[@]}" -p "$s" sentinel get-master-addr-by-name mymaster | grep -q 127.0.0.1 ||
  fail "TLS sentinel does not know the master"
kill -TERM "$pid"
wait "$pid" || fail "redis-up --tls exited with $?"
for port in $(ports); do open_port "$port" && fail "port $port still open"; done

"$redis_up" bogus 2>/dev/null && fail "unknown mode accepted"
"$redis_up" redlock --n x 2>/dev/null && fail "bad --n accepted"
echo PASS
