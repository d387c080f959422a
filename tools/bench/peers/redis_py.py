#!/usr/bin/python3
"""redis-py's Lock (Debian's python3-redis) over one connection, for the
comparison of tools/bench/peers/run.py, in the protocol of worker.js and
tools/bench/peer.cc. Settings are the library's defaults (it polls every
sleep=0.1 s while the lock is busy) except the lease (the run's ttl) and a
60 s wait, so that no wait fails within a run.

/usr/bin/python3 on purpose: python3-redis is a Debian package, which
another python3 earlier on PATH would not see.
"""
import json
import os
import sys
import time

import redis


def read_json():
    line = sys.stdin.readline()
    if not line:
        sys.exit("redis-py: stdin closed before the expected line")
    return json.loads(line)


def main():
    job = read_json()
    if job["mode"] != "uncontended" and job["mode"] != "contended":
        sys.exit(f"redis-py: no {job['mode']} in redis-py")
    host, port = job["redis"].rsplit(":", 1)
    client = redis.Redis(host=host, port=int(port))
    lock = client.lock(job["key"], timeout=job["ttl_ms"] / 1000, blocking_timeout=60)
    lock.acquire()  # warm-up: connection open, scripts loaded
    lock.release()
    print('{"ready":true}', flush=True)

    go = read_json()
    hold = job.get("hold_ms", 0) / 1000
    outside = job.get("outside_ms", 0) / 1000
    pairs = errors = busy = 0
    intervals = []
    for start, stop in go["windows"]:
        time.sleep(max(0, start - time.monotonic_ns()) / 1e9)
        began = time.monotonic_ns()
        while time.monotonic_ns() < stop:
            if not lock.acquire():
                errors += 1
                continue
            acquired = time.monotonic_ns()
            if hold > 0:
                time.sleep(hold)
            released = time.monotonic_ns()
            try:
                lock.release()
            except redis.exceptions.LockError:
                errors += 1
            pairs += 1
            if job["mode"] == "contended":
                intervals.append([acquired, released])
                if outside > 0:
                    time.sleep(outside)
        busy += time.monotonic_ns() - began
    print(json.dumps({"library": "redis-py", "mode": job["mode"], "pid": os.getpid(),
                      "pairs": pairs, "errors": errors, "busy_ns": busy,
                      "intervals": intervals}),
          flush=True)


if __name__ == "__main__":
    main()
