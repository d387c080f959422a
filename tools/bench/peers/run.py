#!/usr/bin/python3
"""Runs redis-lock and the libraries users would pick instead through the
same scenarios, on one redis-server this script starts (loopback TCP), in
one run (issue 18). Prints one JSON line per scenario and library, read by
report.py; progress and the load average go to stderr.

    run.py --bench=BAZEL_BIN/tools/bench/bench [--seconds=0.5] [--rounds=12]

Every library runs as worker processes (one client each) in the protocol
of worker.js: job on stdin, "ready", then the windows of CLOCK_MONOTONIC
time it is to run in, and one result line each. For each scenario the
workers of every library are started together and take turns, the way
bench's Interleave alternates raw and library phases: a round gives each
library one window of --seconds, in an order rotated from round to round,
so that load from other processes on this shared machine lands on every
library alike. Utilisation and idle gaps come from the holds every process
recorded (intervals.py), the same code for every library.

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
        # The same library's fair lock: the release hands the lock to the
        # head of the line and names it, so only that waiter acts.
        "redis-lock fair": Library("redis-lock fair", [bench, "--scenario=peer"],
                                   {"kind": "fair"}),
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
             ["redis-lock", "redis-lock fair", "node-redlock", "redis-semaphore", "redis-py"]),
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


# Between two windows: a waiter of the previous library may still be asleep
# in its retry delay at its window's end, and finishes that acquisition
# (and one hold) before it looks at the clock.
GUARD_NS = 100_000_000


def run_scenario(libs, scenario, addr, seconds, rounds):
    """Every library's workers of `scenario`, taking turns; for each
    library its workers' result lines and the windows they were given."""
    procs = {}
    for name in scenario.names:
        key = f"peers:{scenario.name}:{name.replace(' ', '-')}"
        job = {"mode": scenario.name, "redis": addr, "key": key,
               "hold_ms": scenario.hold_ms, "outside_ms": scenario.outside_ms,
               "permits": scenario.permits, "ttl_ms": TTL_MS, **libs[name].job}
        procs[name] = [subprocess.Popen(libs[name].argv, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
                       for _ in range(scenario.processes)]
        for p in procs[name]:
            p.stdin.write(json.dumps(job) + "\n")
            p.stdin.flush()
    every = [p for group in procs.values() for p in group]
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(every)) as pool:
        try:
            # Starting dozens of Node processes on a loaded 2-core machine
            # takes a while.
            for p in every:
                read_json(pool, p, 300, "ready")
            # Far enough ahead for every worker to read its line and sleep.
            t = time.monotonic_ns() + 500_000_000
            windows = {name: [] for name in scenario.names}
            for rnd in range(rounds):
                shift = rnd % len(scenario.names)
                for name in scenario.names[shift:] + scenario.names[:shift]:
                    windows[name].append((t, t + int(seconds * 1e9)))
                    t += int(seconds * 1e9) + GUARD_NS
            for name, group in procs.items():
                for p in group:
                    p.stdin.write(json.dumps({"windows": windows[name]}) + "\n")
                    p.stdin.flush()
            wait_s = (t - time.monotonic_ns()) / 1e9 + 120
            results = {name: [read_json(pool, p, wait_s, "result") for p in group]
                       for name, group in procs.items()}
        finally:
            for p in every:
                p.stdin.close()  # a worker still waiting for a line gets EOF and exits
                if p.poll() is None:
                    try:
                        p.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        p.kill()
    return results, windows


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bench", required=True, help="the //tools/bench:bench binary (-c opt)")
    ap.add_argument("--seconds", type=float, default=0.5,
                    help="one window: how long a library runs before the next takes its turn")
    ap.add_argument("--rounds", type=int, default=12,
                    help="windows of each library per scenario")
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
    out = []
    try:
        for sc in scenarios:
            print(f"peers: {sc.name}, load average {loadavg()}", file=sys.stderr)
            results, windows = run_scenario(libs, sc, addr, args.seconds, args.rounds)
            for name in sc.names:
                res = results[name]
                line = {"scenario": "peer_" + sc.name, "library": name,
                        "processes": sc.processes, "hold_ms": sc.hold_ms,
                        "outside_ms": sc.outside_ms, "permits": sc.permits,
                        "rounds": args.rounds, "errors": sum(r["errors"] for r in res)}
                if sc.name == "uncontended":
                    n, ns = sum(r["pairs"] for r in res), sum(r["busy_ns"] for r in res)
                    line.update({"pairs": n, "seconds": round(ns / 1e9, 3),
                                 "pairs_per_s": round(n / (ns / 1e9), 1)})
                else:
                    held = [tuple(i) for r in res for i in r["intervals"]]
                    line.update(intervals.summarise(
                        [intervals.Window(a, b, held) for a, b in windows[name]], sc.permits))
                out.append(line)
    finally:
        server.terminate()
        server.wait()
    for line in out:
        print(json.dumps(line), flush=True)

if __name__ == "__main__":
    main()
