#!/usr/bin/python3
"""Runs redis-lock and the libraries users would pick instead through the
same scenarios, on one redis-server this script starts (loopback TCP), in
one run (issue 18). Prints one JSON line per scenario and library, read by
report.py; progress and the load average go to stderr.

    run.py --bench=BAZEL_BIN/tools/bench/bench [--seconds=3] [--rounds=3]

Every library runs as worker processes (one client each) in the protocol
of worker.js: job on stdin, "ready", then one start/stop pair of
CLOCK_MONOTONIC instants shared by all the processes of a run, and one
result line each. Rounds are interleaved: each round runs every scenario
once per library, the libraries' order rotated from round to round, so
that load from other processes lands on every library alike. Utilisation
and idle gaps come from the holds every process recorded (intervals.py),
the same code for every library.

/usr/bin/python3 on purpose: redis_py.py needs Debian's python3-redis.
"""
import argparse
import concurrent.futures
import json
import os
import socket
import subprocess
import sys
import time

import intervals

HERE = os.path.dirname(os.path.abspath(__file__))
TTL_MS = 30000  # every library's lease: redis-lock's default ttl


class Library:
    def __init__(self, name, argv, job=None):
        self.name = name
        self.argv = argv  # without the bench binary's path, filled in later
        self.job = job or {}


def libraries(bench):
    node = os.path.join(HERE, "node_modules")
    if not os.path.isdir(node):
        sys.exit(f"peers: {node} is missing: run tools/bench/peers/install first")
    return {
        # The floor: bare hiredis sending the library's own EVALSHA pair.
        "raw": Library("raw", [bench, "--scenario=peer"], {"raw": True}),
        "redis-lock": Library("redis-lock", [bench, "--scenario=peer"]),
        "node-redlock": Library("node-redlock", ["node", os.path.join(HERE, "redlock.js")]),
        "redis-semaphore": Library("redis-semaphore",
                                   ["node", os.path.join(HERE, "redis_semaphore.js")]),
        "redis-py": Library("redis-py", ["/usr/bin/python3", os.path.join(HERE, "redis_py.py")]),
    }


class Scenario:
    def __init__(self, name, processes, hold_ms, outside_ms, permits, names):
        self.name, self.processes = name, processes
        self.hold_ms, self.outside_ms, self.permits = hold_ms, outside_ms, permits
        self.names = names


SCENARIOS = [
    Scenario("uncontended", 1, 0, 0, 1,
             ["raw", "redis-lock", "node-redlock", "redis-semaphore", "redis-py"]),
    Scenario("contended", 8, 1, 1, 1,
             ["redis-lock", "node-redlock", "redis-semaphore", "redis-py"]),
    Scenario("semaphore", 32, 1, 0, 8, ["redis-lock", "redis-semaphore"]),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis():
    """A redis-server of our own, without persistence, on a free port."""
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--loglevel", "warning"],
        stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
                c.sendall(b"PING\r\n")
                if c.recv(16).startswith(b"+PONG"):
                    return server, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    server.kill()
    sys.exit(f"peers: redis-server did not answer on port {port} within 10 s")


def read_json(pool, proc, timeout, what):
    """One JSON line from a worker, or exit naming what was expected."""
    try:
        line = pool.submit(proc.stdout.readline).result(timeout=timeout)
    except concurrent.futures.TimeoutError:
        sys.exit(f"peers: no {what} line from pid {proc.pid} within {timeout} s")
    if not line:
        sys.exit(f"peers: pid {proc.pid} exited before its {what} line "
                 f"(status {proc.wait()})")
    return json.loads(line)


def run_once(lib, scenario, addr, key, seconds):
    """One run of `scenario` with `lib`'s workers; their result lines and
    the window [start, stop) they were given."""
    job = {"mode": scenario.name, "redis": addr, "key": key, "hold_ms": scenario.hold_ms,
           "outside_ms": scenario.outside_ms, "permits": scenario.permits, "ttl_ms": TTL_MS,
           **lib.job}
    procs = [subprocess.Popen(lib.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(scenario.processes)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(procs)) as pool:
        try:
            for p in procs:
                p.stdin.write(json.dumps(job) + "\n")
                p.stdin.flush()
            # Starting 32 Node processes on a loaded 2-core machine takes a while.
            for p in procs:
                read_json(pool, p, 120, "ready")
            # Far enough ahead for every worker to read the line and go to sleep.
            start = time.monotonic_ns() + 300_000_000
            stop = start + int(seconds * 1e9)
            for p in procs:
                p.stdin.write(json.dumps({"start_ns": start, "stop_ns": stop}) + "\n")
                p.stdin.flush()
            results = [read_json(pool, p, seconds + 120, "result") for p in procs]
        finally:
            for p in procs:
                p.stdin.close()  # a worker still waiting for a line gets EOF and exits
                if p.poll() is None:
                    try:
                        p.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        p.kill()
    return results, start, stop


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bench", required=True, help="the //tools/bench:bench binary (-c opt)")
    ap.add_argument("--seconds", type=float, default=3, help="measured time of one run")
    ap.add_argument("--rounds", type=int, default=3, help="runs of each library per scenario")
    ap.add_argument("--scenarios", default=",".join(s.name for s in SCENARIOS),
                    help="comma-separated subset of the scenarios, to look at one")
    ap.add_argument("--libraries", default="",
                    help="comma-separated subset of the libraries (default: all)")
    args = ap.parse_args()
    scenarios = []
    for name in args.scenarios.split(","):
        sc = next((s for s in SCENARIOS if s.name == name), None)
        if sc is None:
            sys.exit(f"peers: no scenario {name!r}; there are "
                     f"{', '.join(s.name for s in SCENARIOS)}")
        if args.libraries:
            sc = Scenario(sc.name, sc.processes, sc.hold_ms, sc.outside_ms, sc.permits,
                          [n for n in sc.names if n in args.libraries.split(",")])
        if sc.names:
            scenarios.append(sc)
    libs = libraries(os.path.abspath(args.bench))
    print(f"peers: load average at the start: {loadavg()}", file=sys.stderr)
    server, addr = start_redis()
    version = subprocess.run(["redis-server", "--version"], capture_output=True,
                             text=True).stdout.split()[2]
    print(json.dumps({"scenario": "peer_run", "loadavg": loadavg(), "seconds": args.seconds,
                      "rounds": args.rounds, "redis": version}), flush=True)
    # (scenario, library) -> windows (exclusive and semaphore scenarios), or
    # [pairs, ns] (uncontended); errors counted alike.
    windows, pairs, errors = {}, {}, {}
    try:
        for rnd in range(args.rounds):
            print(f"peers: round {rnd + 1} of {args.rounds}, load average {loadavg()}",
                  file=sys.stderr)
            for sc in scenarios:
                shift = rnd % len(sc.names)
                for name in sc.names[shift:] + sc.names[:shift]:
                    key = f"peers:{sc.name}:{name}:{rnd}"
                    results, start, stop = run_once(libs[name], sc, addr, key, args.seconds)
                    k = (sc.name, name)
                    errors[k] = errors.get(k, 0) + sum(r["errors"] for r in results)
                    if sc.name == "uncontended":
                        p = pairs.setdefault(k, [0, 0])
                        p[0] += results[0]["pairs"]
                        p[1] += results[0]["ended_ns"] - results[0]["began_ns"]
                    else:
                        held = [tuple(i) for r in results for i in r["intervals"]]
                        windows.setdefault(k, []).append(intervals.Window(start, stop, held))
    finally:
        server.terminate()
        server.wait()
    for sc in scenarios:
        for name in sc.names:
            k = (sc.name, name)
            line = {"scenario": "peer_" + sc.name, "library": name,
                    "processes": sc.processes, "hold_ms": sc.hold_ms,
                    "outside_ms": sc.outside_ms, "permits": sc.permits,
                    "rounds": args.rounds, "errors": errors[k]}
            if sc.name == "uncontended":
                n, ns = pairs[k]
                line.update({"pairs": n, "seconds": round(ns / 1e9, 3),
                             "pairs_per_s": round(n / (ns / 1e9), 1)})
            else:
                line.update(intervals.summarise(windows[k], sc.permits))
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
