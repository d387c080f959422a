#!/usr/bin/python3
"""Writes the section of BENCHMARKS.md that compares redis-lock with other
libraries, from run.py's JSON lines, with the targets of issue 18 judged
per row, and the data and gnuplot script of its two plots. The section
replaces the one between the markers below, or is appended; the rest of the
document (tools/bench/report.cc's) is left as it is. Run by
tools/benchmarks.

    report.py --results=peers.jsonl --doc=BENCHMARKS.md --plots=docs/bench \\
              --plot-data=DIR
"""
import argparse
import datetime
import json
import os
import sys

BEGIN = "<!-- peers: begin (written by tools/bench/peers/report.py) -->"
END = "<!-- peers: end -->"

# Targets of issue 18, same run.
UNCONTENDED_VS_RAW = 0.95
UNCONTENDED_VS_BEST_PEER = 1.2
CONTENDED_UTILISATION = 0.85
CONTENDED_GAP_P99_MS = 5.0
# The semaphore's own target (issue 15, section 7), applied to every row.
SEMAPHORE_UTILISATION = 0.80

SETTINGS = {
    "raw": "bare hiredis sending redis-lock's acquire and release `EVALSHA`",
    "redis-lock": "`lock::Default()->NewLock` + `Acquire`/`Release`; default policy "
                  "(wake on release, backoff 50 ms doubling to 1 s) with "
                  "`pool_size` 1, `wait.timeout` 60 s",
    "redis-lock fair": "the same, with `\"kind\": \"fair\"`: waiters queue, and a release "
                       "makes the head of the line the owner and names it in its message",
    "node-redlock": "`redlock@5.0.0-beta.2` on `ioredis`, one client; defaults "
                    "(retryDelay 200 ms, retryJitter 100 ms) with retryCount -1",
    "redis-semaphore": "`Mutex` / `Semaphore` on `ioredis`; defaults (retryInterval "
                       "10 ms) with acquireTimeout 60 s",
    "redis-py": "`redis.Redis().lock()` (Debian's python3-redis); defaults "
                "(sleep 0.1 s) with blocking_timeout 60 s",
}


def verdict(met):
    return "**met**" if met else "**missed**"


def fmt_int(v):
    return f"{int(round(v)):,}"


def load(path):
    run, rows = None, {}
    with open(path) as f:
        for line in f:
            if not line.startswith("{"):
                continue
            j = json.loads(line)
            if j["scenario"] == "peer_run":
                run = j
            elif j["scenario"].startswith("peer_"):
                rows.setdefault(j["scenario"][len("peer_"):], []).append(j)
    if run is None or not rows:
        sys.exit(f"peers report: no peer_run line or no results in {path}")
    return run, rows


def safety(row):
    """Holders at once, against what the kind allows."""
    allowed = row["permits"]
    held = row["max_holders"]
    return f"{held}" if held <= allowed else f"**{held} > {allowed}**"


def table(md, columns, cells):
    """A Markdown table: `columns` as (title, "l" or "r" for the alignment),
    `cells` one list per row."""
    md.append("| " + " | ".join(title for title, _ in columns) + " |")
    md.append("|" + "|".join("---:" if align == "r" else "---" for _, align in columns) + "|")
    for row in cells:
        md.append("| " + " | ".join(str(c) for c in row) + " |")
    md.append("")


def uncontended(rows, md, dat):
    by = {r["library"]: r for r in rows}
    # run.py --libraries may have left out the floor or every peer.
    raw = by["raw"]["pairs_per_s"] if "raw" in by else None
    peers = [r for r in rows if r["library"] != "raw" and not r["library"].startswith("redis-lock")]
    best = max(peers, key=lambda r: r["pairs_per_s"]) if peers else None
    best_v = best["pairs_per_s"] if best else None
    ratio = lambda v, base: f"{v / base:.3f}" if base else "–"  # noqa: E731
    md.append("**Uncontended.** One process, one client, acquire + release of its own key "
              "as fast as it goes: pairs/s over the rounds.\n")
    cells = []
    for r in rows:
        v = r["pairs_per_s"]
        if r["library"] == "redis-lock" and raw and best:
            targets = (f"≥ {UNCONTENDED_VS_RAW}× raw: {verdict(v / raw >= UNCONTENDED_VS_RAW)}; "
                       f"≥ {UNCONTENDED_VS_BEST_PEER}× best peer ({best['library']}): "
                       f"{verdict(v / best_v >= UNCONTENDED_VS_BEST_PEER)}")
        else:
            targets = "floor" if r["library"] == "raw" else "–"
        cells.append([r["library"], fmt_int(v), ratio(v, raw), ratio(v, best_v), r["errors"],
                      targets])
        dat.append(f"\"{r['library']}\" {v:.1f}")
    table(md, [("library", "l"), ("pairs/s", "r"), ("× raw", "r"), ("× best peer", "r"),
               ("errors", "r"), ("targets", "l")], cells)
    lib = by.get("redis-lock")
    if lib and raw and best and lib["pairs_per_s"] / best_v < UNCONTENDED_VS_BEST_PEER:
        md.append(f"- **redis-lock against the best peer** "
                  f"({lib['pairs_per_s'] / best_v:.3f}×): raw, bare hiredis sending the same "
                  f"two commands and nothing else, reached {raw / best_v:.3f}× "
                  f"{best['library']} in this run. A pair is two round trips for every "
                  "library here; the library's own share is what separates it from raw "
                  f"({lib['pairs_per_s'] / raw:.3f}× raw).")
        md.append("")


def contended(rows, md):
    r0 = rows[0]
    md.append(f"**Contended.** {r0['processes']} processes on one key, each holding it "
              f"{r0['hold_ms']} ms then working {r0['outside_ms']} ms outside it, again and "
              "again. Utilisation: the share of the wall time in which someone holds it "
              "(the union of every process's holds); idle gap: from one hold ending to the "
              "next starting, over that union. Target (issue 18): utilisation ≥ "
              f"{CONTENDED_UTILISATION} with gap p99 ≤ {CONTENDED_GAP_P99_MS:g} ms, "
              "judged on every row.\n")
    cells = []
    for r in rows:
        met = (r["utilisation"] >= CONTENDED_UTILISATION
               and r["gap_p99_ms"] <= CONTENDED_GAP_P99_MS)
        cells.append([r["library"], fmt_int(r["acquisitions_per_s"]), f"{r['utilisation']:.3f}",
                      f"{r['gap_p50_ms']:.3f}", f"{r['gap_p99_ms']:.3f}",
                      f"{r['hold_mean_ms']:.3f}", safety(r), r["errors"], verdict(met)])
    table(md, [("library", "l"), ("acquisitions/s", "r"), ("utilisation", "r"),
               ("idle gap p50 ms", "r"), ("gap p99 ms", "r"), ("mean hold ms", "r"),
               ("holders at once", "r"), ("errors", "r"), ("target", "l")], cells)
    why = {
        "redis-lock": "a mutex release is published on the lock's channel, which every "
                      "process with a waiter listens on: each release wakes all of them, "
                      "each sends its acquire, one wins and the others wait again, on 2 "
                      "cores shared with the server",
        "redis-lock fair": "a release makes the head of the line the owner inside its own "
                           "script and wakes the head's process alone; what is left of the "
                           "gap is the release reaching the server, the message reaching "
                           "the head and that one process waking up on this 2-core VM",
    }
    for r in rows:
        if r["library"] not in why or r["utilisation"] >= CONTENDED_UTILISATION:
            continue
        # utilisation = hold / (hold + gap) for a lock that is always wanted
        need = r["hold_mean_ms"] * (1 - CONTENDED_UTILISATION) / CONTENDED_UTILISATION
        md.append(f"- **{r['library']}** ({r['utilisation']:.3f}): with the lock always "
                  f"wanted, utilisation is hold / (hold + gap); with this run's mean hold of "
                  f"{r['hold_mean_ms']:.3f} ms, {CONTENDED_UTILISATION} needs gaps of at most "
                  f"{need:.3f} ms on average, and the gap p50 was {r['gap_p50_ms']:.3f} ms: "
                  f"{why[r['library']]}.")
    md.append("")


def semaphore(rows, md):
    r0 = rows[0]
    md.append(f"**Semaphore.** {r0['processes']} processes contend for {r0['permits']} "
              f"permits, each holding one {r0['hold_ms']} ms and asking again at once "
              "(redis-lock: a policy with `\"kind\": \"semaphore\"`, `\"permits\": "
              f"{r0['permits']}`). Utilisation: the time inside summed over the holders, "
              "over permits × wall time. Target (issue 15's, section 7): utilisation ≥ "
              f"{SEMAPHORE_UTILISATION}, judged on every row.\n")
    cells = [[r["library"], fmt_int(r["acquisitions_per_s"]), f"{r['utilisation']:.3f}",
              f"{r['hold_mean_ms']:.3f}", safety(r), r["errors"],
              verdict(r["utilisation"] >= SEMAPHORE_UTILISATION)] for r in rows]
    table(md, [("library", "l"), ("acquisitions/s", "r"), ("permit utilisation", "r"),
               ("mean hold ms", "r"), ("holders at once", "r"), ("errors", "r"),
               ("target", "l")], cells)


def utilisation_dat(rows):
    """One line per library: its contended and semaphore utilisation, "-"
    where it has no such row."""
    libs = []
    for sc in ("contended", "semaphore"):
        for r in rows.get(sc, []):
            if r["library"] not in libs:
                libs.append(r["library"])
    value = {(sc, r["library"]): r["utilisation"]
             for sc in ("contended", "semaphore") for r in rows.get(sc, [])}
    return [f"\"{lib}\" {value.get(('contended', lib), '-')} "
            f"{value.get(('semaphore', lib), '-')}" for lib in libs]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", required=True)
    ap.add_argument("--doc", required=True)
    ap.add_argument("--plots", required=True, help="where the document finds the plots")
    ap.add_argument("--plot-data", required=True, help="directory for data and gnuplot script")
    args = ap.parse_args()
    run, rows = load(args.results)

    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    md = [BEGIN, "## 9. Other libraries, side by side", "",
          f"Written on {date} by `tools/benchmarks` (`tools/benchmarks --peers-only` "
          "rewrites this section alone). "
          f"Load average (1, 5, 15 min) at the start of this section: **{run['loadavg']}** "
          "on this 2-core machine. Every library runs the same scenarios against the same "
          f"redis-server ({run['redis']}, started for this section, loopback TCP) in the "
          f"same run, interleaved: for each scenario the processes of every library are "
          "started together and take turns, each round giving every library one window of "
          f"{run['seconds']:g} s in an order rotated from round to round ({run['rounds']} "
          "rounds, 0.1 s between windows), so that load from elsewhere lands on all alike. "
          "Each process has one client. Every process records its "
          "holds, from its acquire returning to its release being called, with "
          "CLOCK_MONOTONIC (C++ `steady_clock`, Node `process.hrtime.bigint`, Python "
          "`time.monotonic_ns`), and one script (`tools/bench/peers/intervals.py`) "
          "computes utilisation and gaps from all of them, for every library alike. "
          "A hold is a sleep of the hold time; when the sleep overshoots (a busy machine, "
          "a late timer) the overshoot counts as inside, and the mean hold shows it. "
          "Holders at once must not exceed 1 (mutex) or the permits (semaphore).", ""]
    table(md, [("library", "l"), ("how it is driven", "l")], SETTINGS.items())
    md.append("`tools/benchmarks` waits (up to 5 minutes) for the 1-minute load average "
              "to fall below half the cores before it runs, and repeats a run that "
              "started above it (at most `--attempts`, 3 by default), keeping the one "
              "that started quietest.")
    md.append("")
    if float(run["loadavg"].split()[0]) >= os.cpu_count() / 2:
        md.append(f"**This section was measured on a loaded machine** (1-minute load "
                  f"average {run['loadavg'].split()[0]} on {os.cpu_count()} cores: "
                  "other builds were running). Its figures say how the libraries compare "
                  "under that load, not what they reach on a quiet machine.")
        md.append("")
    pairs_dat = []
    if "uncontended" in rows:
        uncontended(rows["uncontended"], md, pairs_dat)
        md.append(f"![pairs/s per library]({args.plots}/peers_pairs.svg)\n")
    if "contended" in rows:
        contended(rows["contended"], md)
    if "semaphore" in rows:
        semaphore(rows["semaphore"], md)
    if "contended" in rows or "semaphore" in rows:
        md.append(f"![utilisation per library]({args.plots}/peers_utilisation.svg)\n")
    md.append(END)
    section = "\n".join(md) + "\n"

    with open(args.doc) as f:
        doc = f.read()
    if BEGIN in doc and END in doc:
        doc = doc[:doc.index(BEGIN)] + section + doc[doc.index(END) + len(END) + 1:]
    else:
        doc = doc.rstrip("\n") + "\n\n" + section
    with open(args.doc, "w") as f:
        f.write(doc)

    d = args.plot_data
    # run.py --scenarios can leave a plot without data: only the plots with
    # rows are drawn.
    gp = ["set terminal svg size 720,420 dynamic font 'sans,12'",
          "set grid ytics", "set style data histograms",
          "set style histogram clustered gap 1", "set style fill solid 0.8 border -1",
          "set boxwidth 0.9", "set datafile missing '-'", "set key top center horizontal",
          "set xrange [-0.6:*]"]
    def bars(name, lines, title, ylabel, yrange, using):
        with open(f"{d}/{name}.dat", "w") as f:
            f.write("\n".join(lines) + "\n")
        gp.extend([f"set output '{args.plots}/{name}.svg'", f"set title '{title}'",
                   f"set ylabel '{ylabel}'", f"set yrange {yrange}",
                   f"plot '{d}/{name}.dat' {using}"])

    if pairs_dat:
        bars("peers_pairs", pairs_dat,
             "Uncontended acquire+release pairs/s, one client (same run, same redis-server)",
             "pairs/s", "[0:*]", "using 2:xtic(1) notitle")
    util = utilisation_dat(rows)
    if util:
        bars("peers_utilisation", util,
             "Utilisation (contended mutex: 8 processes, 1 ms in / 1 ms out; "
             "semaphore: 32 on 8 permits)", "utilisation", "[0:1.2]",
             f"using 2:xtic(1) title 'mutex, contended', '' using 3 title 'semaphore', "
             f"{CONTENDED_UTILISATION} with lines lw 2 lc rgb 'red' dt 2 "
             f"title 'target {CONTENDED_UTILISATION} (mutex)'")
    with open(f"{d}/peers.gp", "w") as f:
        f.write("\n".join(gp) + "\n")
    print(f"peers report: wrote the section into {args.doc}", file=sys.stderr)


if __name__ == "__main__":
    main()
