"""The chart: its axis, and the SVG that the pinned matplotlib draws from a
few hand-made rows (installed first if this checkout has no copy yet, as
bench/run does): well-formed, every label as text, each bar as long as its
ratio, and the same bytes for the same rows."""

import re
import unittest
import xml.etree.ElementTree as ElementTree

from charon_bench.chart import axis, bar_id, svg_chart
from charon_bench.report import Row

SVG = "{http://www.w3.org/2000/svg}"
META = {"server": "Redis 7.0.15 (test server)", "rounds": 3, "date": "2026-01-02 03:04 UTC",
        "machine_line": "2 CPUs (test machine)"}


def row(name, pipeline, vs_set):
    return Row(name=name, pipeline=pipeline, rps=1.0, vs_set=vs_set, vs_incr=1.0, vs_lua=1.0,
               p50_ms=0.1, p99_ms=0.2, usec_per_call=1.0, limited_share=None)


ROWS = [row("INCR", 1, 0.98), row("SET PX", 1, 1.0), row("CHARON.RATE allow, new", 1, 0.5),
        row("INCR", 32, 1.42), row("SET PX", 32, 1.0)]  # no -P 32 row for the third


class AxisTest(unittest.TestCase):
    def test_ends_at_the_quarter_above_the_largest_value(self):
        self.assertEqual(axis([1.42, 0.3]), (1.5, 0.25))
        self.assertEqual(axis([1.5]), (1.5, 0.25))

    def test_never_ends_before_the_baseline(self):
        self.assertEqual(axis([0.2, 0.16]), (1.0, 0.25))
        self.assertEqual(axis([]), (1.0, 0.25))

    def test_half_steps_past_two(self):
        self.assertEqual(axis([2.07]), (2.25, 0.5))

    def test_bar_ids(self):
        self.assertEqual(bar_id("CHARON.RATE allow, new", 32), "bar-charon-rate-allow-new-p32")


class SvgChartTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.svg = svg_chart(META, ROWS)
        cls.root = ElementTree.fromstring(cls.svg)

    def texts(self):
        return ["".join(node.itertext()) for node in self.root.iter(f"{SVG}text")]

    def text_at(self, label):
        """x and y of the text element that reads `label`."""
        node = next(n for n in self.root.iter(f"{SVG}text") if "".join(n.itertext()) == label)
        return float(node.get("x")), float(node.get("y"))

    def bar_extent(self, identifier):
        """The left and right x of a bar."""
        group = next(g for g in self.root.iter(f"{SVG}g") if g.get("id") == identifier)
        path = next(group.iter(f"{SVG}path"))
        xs = [float(x) for x in re.findall(r"([-\d.]+) [-\d.]+", path.get("d"))]
        return min(xs), max(xs)

    def test_is_an_svg_document(self):
        self.assertEqual(self.root.tag, f"{SVG}svg")

    def test_title_conditions_and_legend_are_text(self):
        texts = self.texts()
        self.assertIn("Charon: throughput relative to SET key v PX 60000", texts)
        self.assertIn("Redis 7.0.15 (test server); 50 clients, median of 3 rounds; "
                      "2026-01-02 03:04 UTC", texts)
        self.assertIn("2 CPUs (test machine)", texts)
        for label in ("pipeline 1 (-P 1)", "pipeline 32 (-P 32)", "SET key v PX 60000 = 1×"):
            self.assertIn(label, texts)

    def test_commands_values_and_ticks_are_text(self):
        texts = self.texts()
        for label in ("INCR", "SET PX", "CHARON.RATE allow, new", "0.98×", "1.42×", "0.50×",
                      "0×", "0.75×", "1.5×"):
            self.assertIn(label, texts)
        self.assertNotIn("1.75×", texts)  # the axis ends at 1.5

    def test_a_bar_per_row_and_none_for_a_missing_row(self):
        ids = {g.get("id") for g in self.root.iter(f"{SVG}g")}
        for r in ROWS:
            self.assertIn(bar_id(r.name, r.pipeline), ids)
        self.assertNotIn(bar_id("CHARON.RATE allow, new", 32), ids)

    def test_bars_start_at_zero_and_end_at_their_ratio_on_the_axis(self):
        zero, one = self.text_at("0×")[0], self.text_at("1×")[0]  # centred tick labels
        self.assertGreater(one - zero, 100)
        for r in ROWS:
            left, right = self.bar_extent(bar_id(r.name, r.pipeline))
            self.assertAlmostEqual(left, zero, places=3)
            self.assertAlmostEqual((right - zero) / (one - zero), r.vs_set, places=3)

    def test_commands_top_down_in_row_order(self):
        heights = [self.text_at(name)[1] for name in ("INCR", "SET PX", "CHARON.RATE allow, new")]
        self.assertEqual(heights, sorted(heights))  # SVG's y grows downwards

    def test_no_date_of_drawing_and_the_same_bytes_again(self):
        self.assertNotIn("<dc:date>", self.svg)
        self.assertEqual(svg_chart(META, ROWS), self.svg)


if __name__ == "__main__":
    unittest.main()
