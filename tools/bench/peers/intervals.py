"""The interval arithmetic of the peer comparison (run.py), kept apart so
that intervals_test.py can check it on made-up intervals.

Every worker process, whatever its library, records its holds as
[acquired, released) pairs of CLOCK_MONOTONIC nanoseconds: from its acquire
returning to its release being called. Utilisation and the idle gaps come
from the union of all processes' holds inside the measured window, so every
library is measured by the same code.
"""


def clip(intervals, start, stop):
    """The parts of `intervals` inside [start, stop), empty ones dropped."""
    out = []
    for a, r in intervals:
        a, r = max(a, start), min(r, stop)
        if r > a:
            out.append((a, r))
    return out


def merge(intervals):
    """The union of `intervals` as sorted, disjoint intervals; touching ones
    are joined, since no time passes between them."""
    merged = []
    for a, r in sorted(intervals):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], r)
        else:
            merged.append([a, r])
    return [tuple(m) for m in merged]


def max_holders(intervals):
    """The most intervals in force at one instant: at most 1 for a mutex and
    at most its permits for a semaphore, or the library let too many in."""
    # At one instant a release ([.., r) ends at r) comes before an acquire.
    events = sorted([(r, -1) for _, r in intervals] + [(a, 1) for a, _ in intervals])
    most = inside = 0
    for _, step in events:
        inside += step
        most = max(most, inside)
    return most


def gaps(merged):
    """Idle time between one hold ending and the next starting."""
    return [merged[i + 1][0] - merged[i][1] for i in range(len(merged) - 1)]


def percentile(values, q):
    """The same nearest-rank percentile as tools/bench/common.cc: the
    element at index min(n - 1, floor(q * n)) of the sorted values."""
    if not values:
        return 0
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]


class Window:
    """The holds of every process of one scenario run, within the window
    [start, stop) in which all of them were asked to run."""

    def __init__(self, start, stop, intervals):
        self.seconds = (stop - start) / 1e9
        # Acquisitions are counted where they happened, not where they end.
        self.acquisitions = sum(1 for a, _ in intervals if start <= a < stop)
        clipped = clip(intervals, start, stop)
        self.holds = len(clipped)
        self.held_ns = sum(r - a for a, r in clipped)
        merged = merge(clipped)
        self.union_ns = sum(r - a for a, r in merged)
        self.gaps_ns = gaps(merged)
        self.max_holders = max_holders(clipped)


def summarise(windows, permits):
    """Figures of one library in one scenario over all its rounds (one
    Window each). A mutex (1 permit): utilisation is the share of the wall
    time in which someone held it, and the gaps are the idle times between
    holds. A semaphore: the time inside summed over the holders, over
    permits x wall time; idle gaps of its union mean nothing there."""
    seconds = sum(w.seconds for w in windows)
    acquisitions = sum(w.acquisitions for w in windows)
    holds = sum(w.holds for w in windows)
    out = {
        "seconds": round(seconds, 3),
        "acquisitions": acquisitions,
        "acquisitions_per_s": round(acquisitions / seconds, 1),
        # A 1 ms sleep that overshoots on a busy machine counts as inside:
        # the mean hold shows by how much.
        "hold_mean_ms": round(sum(w.held_ns for w in windows) / 1e6 / max(1, holds), 3),
        "max_holders": max((w.max_holders for w in windows), default=0),
    }
    if permits == 1:
        gaps_ms = [g / 1e6 for w in windows for g in w.gaps_ns]
        out.update({
            "utilisation": round(sum(w.union_ns for w in windows) / 1e9 / seconds, 3),
            "gaps": len(gaps_ms),
            "gap_p50_ms": round(percentile(gaps_ms, 0.5), 3),
            "gap_p99_ms": round(percentile(gaps_ms, 0.99), 3),
        })
    else:
        out["utilisation"] = round(
            sum(w.held_ns for w in windows) / 1e9 / (permits * seconds), 3)
    return out
