#!/usr/bin/env python3
"""The interval arithmetic of the peer comparison on made-up holds, whose
answers are worked out by hand. Needs neither npm nor Redis.

Run by Bazel as an sh_test (Bazel 4's py_test starts `python`, which Debian
12 does not have), or directly."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import intervals  # noqa: E402

MS = 1_000_000  # ns


class IntervalsTest(unittest.TestCase):
    def test_merge_joins_overlapping_and_touching_holds(self):
        self.assertEqual(intervals.merge([(5, 7), (0, 2), (1, 3), (3, 4)]), [(0, 4), (5, 7)])

    def test_clip_keeps_the_window_only(self):
        self.assertEqual(intervals.clip([(-5, 2), (3, 4), (8, 12), (12, 15)], 0, 10),
                         [(0, 2), (3, 4), (8, 10)])

    def test_max_holders(self):
        # A release and an acquire at the same instant are not two holders.
        self.assertEqual(intervals.max_holders([(0, 2), (2, 4), (4, 6)]), 1)
        self.assertEqual(intervals.max_holders([(0, 5), (1, 2), (1, 3), (4, 6)]), 3)
        self.assertEqual(intervals.max_holders([]), 0)

    def test_percentile_is_common_cc_nearest_rank(self):
        v = list(range(1, 101))  # 1..100
        self.assertEqual(intervals.percentile(v, 0.5), 51)   # index 50
        self.assertEqual(intervals.percentile(v, 0.99), 100)  # index 99
        self.assertEqual(intervals.percentile([3, 1, 2], 0.99), 3)
        self.assertEqual(intervals.percentile([], 0.5), 0)

    def test_mutex_window(self):
        # Two processes in a 10 ms window, holds of 1 or 2 ms; the union is
        # [0,2) [3,4) [4,6) [9,10) once clipped: 2+1+2+1 = 6 ms held, and the
        # idle gaps between holds are 1 ms (2..3) and 3 ms (6..9).
        a = [(0, 2 * MS), (4 * MS, 6 * MS), (9 * MS, 11 * MS)]
        b = [(3 * MS, 4 * MS), (-1 * MS, 0)]
        w = intervals.Window(0, 10 * MS, a + b)
        self.assertEqual(w.acquisitions, 4)  # the one at -1 ms is outside
        self.assertEqual(w.union_ns, 6 * MS)
        self.assertEqual(w.gaps_ns, [1 * MS, 3 * MS])
        self.assertEqual(w.max_holders, 1)
        s = intervals.summarise([w], permits=1)
        self.assertEqual(s["utilisation"], 0.6)
        self.assertEqual(s["acquisitions_per_s"], 400.0)
        self.assertEqual(s["gaps"], 2)
        self.assertEqual(s["gap_p50_ms"], 3.0)  # index 1 of [1, 3]
        self.assertEqual(s["gap_p99_ms"], 3.0)
        self.assertEqual(s["hold_mean_ms"], 1.5)  # 6 ms over 4 clipped holds

    def test_rounds_pool_time_and_gaps(self):
        # Round 1: 10 ms, held 8 ms; round 2: 20 ms, held 10 ms -> 18/30.
        w1 = intervals.Window(0, 10 * MS, [(0, 4 * MS), (6 * MS, 10 * MS)])
        w2 = intervals.Window(100 * MS, 120 * MS, [(100 * MS, 110 * MS)])
        s = intervals.summarise([w1, w2], permits=1)
        self.assertEqual(s["seconds"], 0.03)
        self.assertEqual(s["utilisation"], 0.6)
        self.assertEqual(s["gaps"], 1)  # no gap across rounds
        self.assertEqual(s["gap_p50_ms"], 2.0)

    def test_overlapping_mutex_holds_are_reported(self):
        w = intervals.Window(0, 10 * MS, [(0, 5 * MS), (4 * MS, 6 * MS)])
        s = intervals.summarise([w], permits=1)
        self.assertEqual(s["max_holders"], 2)
        self.assertEqual(s["utilisation"], 0.6)  # the union, not the sum

    def test_semaphore_utilisation_sums_the_holders(self):
        # 2 permits over 10 ms: holds of 10 + 5 + 3 ms = 18 of 20 permit-ms.
        w = intervals.Window(0, 10 * MS, [(0, 10 * MS), (0, 5 * MS), (5 * MS, 8 * MS)])
        s = intervals.summarise([w], permits=2)
        self.assertEqual(s["utilisation"], 0.9)
        self.assertEqual(s["max_holders"], 2)
        self.assertNotIn("gap_p99_ms", s)


if __name__ == "__main__":
    unittest.main()
