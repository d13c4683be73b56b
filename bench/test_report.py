"""The report's arithmetic and markdown, on small hand-made numbers: the
medians of per-round ratios, the targets, the tables, and the server
profile's ns per request. No server, no subprocess."""

import unittest
from unittest import mock

from charon_bench import report
from charon_bench.profile import PerfResult, Profile
from charon_bench.acquire import lateness, percentile
from charon_bench.report import (Row, acquire_markdown, beside_rate_markdown, code, markdown,
                                  perf_markdown, shell, summarize, table, targets_markdown)
from charon_bench.steps import Sample
from charon_bench.workload import workloads

SHA = "0" * 40


def sample(rps, calls=100, limited=0, charon=True):
    return Sample(rps=rps, p50_ms=rps / 1000, p99_ms=rps / 100, usec_per_call=rps / 10_000,
                  calls=calls, charon={"calls": calls, "limited": limited} if charon else {})


def row(name, pipeline, vs_set=1.0, vs_lua=1.0, limited=None, vs_rate=None):
    return Row(name=name, pipeline=pipeline, rps=123_456.0, vs_set=vs_set, vs_incr=0.5,
               vs_lua=vs_lua, p50_ms=0.25, p99_ms=1.5, usec_per_call=2.125,
               limited_share=limited, vs_rate=vs_rate)


class SummarizeTest(unittest.TestCase):
    def setUp(self):
        by_name = {w.name: w for w in workloads(SHA)}
        self.loads = [by_name[name] for name in
                      ("INCR", "SET PX", "CHARON.RATE allow", "EVALSHA Lua bucket")]
        per_round = {
            "INCR": [sample(200, charon=False)] * 3,
            "SET PX": [sample(100, charon=False), sample(200, charon=False),
                       sample(400, charon=False)],
            # Ratios to SET by round 3.0, 0.25, 0.5: median 0.5, where the ratio
            # of the medians would be 200 / 200 = 1.0.
            "CHARON.RATE allow": [sample(300, 100, 0), sample(50, 100, 50),
                                  sample(200, 200, 0)],
            "EVALSHA Lua bucket": [sample(50, charon=False)] * 3,
        }
        self.samples = {(name, p): runs for name, runs in per_round.items() for p in (1, 32)}
        self.rows = summarize(self.loads, self.samples, 3)

    def find(self, name, pipeline):
        return next(r for r in self.rows if r.name == name and r.pipeline == pipeline)

    def test_a_row_per_command_and_pipeline_in_order(self):
        self.assertEqual([(r.name, r.pipeline) for r in self.rows],
                         [(w.name, p) for p in (1, 32) for w in self.loads])

    def test_ratios_are_medians_of_the_per_round_ratios(self):
        rate = self.find("CHARON.RATE allow", 32)
        self.assertEqual(rate.rps, 200)
        self.assertAlmostEqual(rate.vs_set, 0.5)
        self.assertAlmostEqual(rate.vs_incr, 1.0)  # 1.5, 0.25, 1.0
        self.assertAlmostEqual(rate.vs_lua, 4.0)  # 6, 1, 4

    def test_latency_and_server_time_are_medians(self):
        rate = self.find("CHARON.RATE allow", 1)
        self.assertAlmostEqual(rate.p50_ms, 0.2)
        self.assertAlmostEqual(rate.p99_ms, 2.0)
        self.assertAlmostEqual(rate.usec_per_call, 0.02)

    def test_limited_share_over_every_round_and_only_for_charon_rate(self):
        self.assertAlmostEqual(self.find("CHARON.RATE allow", 1).limited_share, 50 / 400)
        self.assertIsNone(self.find("SET PX", 1).limited_share)

    def test_the_baselines_are_one_to_themselves(self):
        self.assertEqual(self.find("SET PX", 1).vs_set, 1.0)
        self.assertEqual(self.find("INCR", 32).vs_incr, 1.0)
        self.assertEqual(self.find("EVALSHA Lua bucket", 32).vs_lua, 1.0)


class TargetsTest(unittest.TestCase):
    rows = [row("CHARON.RATE allow", 1, vs_set=0.95), row("CHARON.RATE allow", 32, vs_set=1.2,
                                                           vs_lua=4.0),
            row("SET PX", 32, vs_set=0.1)]

    @staticmethod
    def memory(bytes_per_key):
        return [{"kind": "SET key n PX", "bytes_per_key": 10.0},
                {"kind": "CHARON.RATE bucket", "bytes_per_key": bytes_per_key}]

    def test_each_target_beside_what_was_measured(self):
        lines = targets_markdown(self.rows, self.memory(161.0), 1_000_000).splitlines()
        self.assertIn("| `CHARON.RATE` allow, × `SET key v PX ttl` at `-P 32` | ≥ 1.00× | 1.20× "
                      "| yes |", lines)
        self.assertIn("| `CHARON.RATE` allow, × `SET key v PX ttl` at `-P 1` | ≥ 0.95× | 0.95× "
                      "| yes |", lines)
        self.assertIn("| `CHARON.RATE` allow, × the Lua token bucket at `-P 32` | ≥ 5.00× | "
                      "4.00× | **no** |", lines)
        self.assertIn("| `used_memory` bytes per one-band bucket, at 1,000,000 buckets | "
                      "≤ 161.0 | 161.0 | yes |", lines)

    def test_memory_over_its_bound_is_not_met(self):
        text = targets_markdown(self.rows, self.memory(161.5), 1_000_000)
        self.assertIn("| ≤ 161.0 | 161.5 | **no** |", text)

    def test_memory_target_only_at_the_stated_number_of_buckets(self):
        text = targets_markdown(self.rows, self.memory(100.0), 1_000)
        self.assertNotIn("used_memory", text)
        self.assertEqual(len([line for line in text.splitlines() if line.startswith("| `")]), 3)

    def test_no_rate_rows_leave_the_header_only(self):
        lines = targets_markdown([row("SET PX", 32)], [], 1_000).splitlines()
        self.assertEqual(lines[-2:], ["| target | bound | measured | met |",
                                      "|---|---:|---:|---|"])


class BesideRateTest(unittest.TestCase):
    """The extra bands, FCALL and CL.THROTTLE beside one-band CHARON.RATE."""

    def test_vs_rate_is_the_median_of_per_round_ratios(self):
        by_name = {w.name: w for w in workloads(SHA)}
        names = ("INCR", "SET PX", "CHARON.RATE allow", "CHARON.RATE allow, 2 bands",
                 "EVALSHA Lua bucket")
        per_round = {
            "INCR": [sample(100, charon=False)] * 3,
            "SET PX": [sample(100, charon=False)] * 3,
            "CHARON.RATE allow": [sample(100), sample(200), sample(400)],
            # 0.9, 0.5, 0.975 by round: median 0.9 (ratio of medians: 1.0).
            "CHARON.RATE allow, 2 bands": [sample(90), sample(100), sample(390)],
            "EVALSHA Lua bucket": [sample(100, charon=False)] * 3,
        }
        samples = {(name, p): runs for name, runs in per_round.items() for p in (1, 32)}
        rows = summarize([by_name[name] for name in names], samples, 3)
        two = next(r for r in rows if r.name == "CHARON.RATE allow, 2 bands" and r.pipeline == 32)
        self.assertAlmostEqual(two.vs_rate, 0.9)
        self.assertAlmostEqual(two.band_cost, 0.1)
        one = next(r for r in rows if r.name == "CHARON.RATE allow" and r.pipeline == 32)
        self.assertEqual(one.vs_rate, 1.0)
        self.assertIsNone(one.band_cost)

    def test_vs_rate_is_none_without_the_one_band_row(self):
        by_name = {w.name: w for w in workloads(SHA)}
        names = ("INCR", "SET PX", "EVALSHA Lua bucket")
        samples = {(name, p): [sample(100, charon=False)] for name in names for p in (1, 32)}
        rows = summarize([by_name[name] for name in names], samples, 1)
        self.assertTrue(all(r.vs_rate is None for r in rows))

    def test_band_cost_is_per_extra_band(self):
        self.assertAlmostEqual(row("CHARON.RATE allow, 2 bands", 32, vs_rate=0.96).band_cost,
                               0.04)
        self.assertAlmostEqual(row("CHARON.RATE allow, 4 bands", 32, vs_rate=0.88).band_cost,
                               0.04)
        self.assertAlmostEqual(row("CHARON.RATE allow, 4 bands", 32, vs_rate=1.03).band_cost,
                               -0.01)
        self.assertIsNone(row("CL.THROTTLE", 32, vs_rate=0.9).band_cost)
        self.assertIsNone(row("CHARON.RATE allow, 2 bands", 32).band_cost)

    def test_table_and_memory_of_two_bands(self):
        rows = [row("CHARON.RATE allow", 32, vs_rate=1.0),
                row("CHARON.RATE allow, 2 bands", 32, vs_rate=0.97, vs_lua=4.5),
                row("CHARON.RATE allow, 4 bands", 32, vs_rate=0.85),
                row("FCALL charon_rate", 32, vs_rate=0.25, vs_lua=1.25),
                row("CL.THROTTLE", 32, vs_rate=0.98),
                row("CHARON.RATE allow, 2 bands", 1, vs_rate=1.02)]
        memory = [{"kind": "CHARON.RATE bucket", "bytes_per_key": 150.0},
                  {"kind": "CHARON.RATE two-band bucket", "bytes_per_key": 190.5}]
        lines = beside_rate_markdown(rows, memory).splitlines()
        self.assertEqual(lines[0], "## Beside one-band `CHARON.RATE allow`")
        body = [line for line in lines if line.startswith("| ") and "`-P" in line]
        self.assertEqual(body, [
            "| CHARON.RATE allow, 2 bands | `-P 32` | 123,456 | 0.970 | 3.0% | 4.50 |",
            "| CHARON.RATE allow, 4 bands | `-P 32` | 123,456 | 0.850 | 5.0% | 1.00 |",
            "| FCALL charon_rate | `-P 32` | 123,456 | 0.250 | | 1.25 |",
            "| CL.THROTTLE | `-P 32` | 123,456 | 0.980 | | 1.00 |",
            "| CHARON.RATE allow, 2 bands | `-P 1` | 123,456 | 1.020 | -2.0% | 1.00 |",
        ])
        self.assertIn("150.0 bytes per one-band bucket, 190.5 per two-band bucket (+40.5 for "
                      "the second band).", lines[-1])

    def test_nothing_without_those_rows(self):
        self.assertEqual(beside_rate_markdown([row("CHARON.RATE allow", 32, vs_rate=1.0)], []),
                         "")

    def test_targets_of_the_new_rows(self):
        rows = [row("CHARON.RATE allow, 2 bands", 32, vs_rate=0.96),
                row("CHARON.RATE allow, 4 bands", 32, vs_rate=0.82),
                row("FCALL charon_rate", 32, vs_lua=1.1),
                row("CL.THROTTLE", 32, vs_rate=0.94),
                row("CL.THROTTLE", 1, vs_rate=0.5)]
        lines = targets_markdown(rows, [], 1_000).splitlines()
        self.assertIn("| `CHARON.RATE` 2 bands: each extra band's cost, share of one-band "
                      "throughput at `-P 32` | ≤ 5.0% | 4.0% | yes |", lines)
        self.assertIn("| `CHARON.RATE` 4 bands: each extra band's cost, share of one-band "
                      "throughput at `-P 32` | ≤ 5.0% | 6.0% | **no** |", lines)
        self.assertIn("| `FCALL charon_rate` (lua/charon.lua), × the Lua token bucket at "
                      "`-P 32` | ≥ 1.00× | 1.10× | yes |", lines)
        self.assertIn("| `CL.THROTTLE`, × `CHARON.RATE` allow at `-P 32` (within 5%) | "
                      "≥ 0.95× | 0.94× | **no** |", lines)

    def test_a_target_without_a_value_is_left_out(self):
        text = targets_markdown([row("CL.THROTTLE", 32)], [], 1_000)
        self.assertNotIn("CL.THROTTLE", text)


class ReserveTest(unittest.TestCase):
    """CHARON.RESERVE granted without wait beside one-band CHARON.RATE allow."""

    def test_reserve_row_beside_rate_and_its_targets(self):
        rows = [row("CHARON.RATE allow", 32, vs_rate=1.0),
                row("CHARON.RESERVE granted, no wait", 32, vs_rate=0.97, vs_lua=4.0),
                row("CHARON.RESERVE granted, no wait", 1, vs_rate=0.9)]
        lines = beside_rate_markdown(rows, []).splitlines()
        self.assertIn("| CHARON.RESERVE granted, no wait | `-P 32` | 123,456 | 0.970 | | 4.00 |",
                      lines)
        self.assertIn("| CHARON.RESERVE granted, no wait | `-P 1` | 123,456 | 0.900 | | 1.00 |",
                      lines)
        targets = targets_markdown(rows, [], 1_000).splitlines()
        self.assertIn("| `CHARON.RESERVE` granted without wait, × `CHARON.RATE` allow at `-P 32` "
                      "(within 5%) | ≥ 0.95× | 0.97× | yes |", targets)
        self.assertIn("| `CHARON.RESERVE` granted without wait, × `CHARON.RATE` allow at `-P 1` "
                      "(within 5%) | ≥ 0.95× | 0.90× | **no** |", targets)

    def test_reserve_workload_counts_reservations(self):
        reserve = next(w for w in workloads(SHA) if w.name == "CHARON.RESERVE granted, no wait")
        self.assertEqual(reserve.argv[:2], ("CHARON.RESERVE", "rl:r:__rand_int__"))
        self.assertEqual(reserve.argv[-2:], ("MAXWAIT", "1000"))
        self.assertEqual(reserve.charon, "reserved")
        self.assertEqual(reserve.cmdstat, "charon.reserve")
        self.assertEqual(len({w.tag for w in workloads(SHA) if w.prefill}),
                         len([w for w in workloads(SHA) if w.prefill]))


def line(waiters, p99=3.0, **changes):
    return {"waiters": waiters, "refill_per_s": waiters // 3, "spacing_ms": 3000 / waiters,
            "p50_ms": 0.5, "p99_ms": p99, "max_ms": 9.125, "early": 0,
            "bytes_per_waiter": 32_768.4, "bytes_per_blpop": 250.0, **changes}


class AcquireTest(unittest.TestCase):
    """The lateness arithmetic and the ACQUIRE lines in the report."""

    def test_percentile_is_nearest_rank(self):
        values = list(range(1, 101))  # 1..100
        self.assertEqual(percentile(values, 0.5), 50)
        self.assertEqual(percentile(values, 0.99), 99)
        self.assertEqual(percentile([7.0], 0.99), 7.0)
        self.assertEqual(percentile([3, 1, 2], 1.0), 3)

    def test_lateness_is_receive_minus_send_plus_wait(self):
        # Turns at 1.010, 1.020, 1.000 (wait -1: at once) s; replies 2, 0.5
        # and 4 ms after them.
        result = lateness(sends=[1.0, 1.0, 1.0], waits_ms=[10, 20, -1],
                          receives=[1.012, 1.0205, 1.004])
        self.assertAlmostEqual(result["p50_ms"], 2.0, places=6)
        self.assertAlmostEqual(result["p99_ms"], 4.0, places=6)
        self.assertAlmostEqual(result["max_ms"], 4.0, places=6)
        self.assertAlmostEqual(result["min_ms"], 0.5, places=6)
        self.assertEqual(result["early"], 0)

    def test_a_reply_over_a_ms_before_its_turn_is_early(self):
        result = lateness(sends=[0.0, 0.0, 0.0], waits_ms=[100, 100, 100],
                          receives=[0.0995, 0.0985, 0.05])
        self.assertEqual(result["early"], 2)  # -0.5 ms is within the 1 ms allowed
        self.assertAlmostEqual(result["min_ms"], -50.0, places=6)

    def test_table_of_the_lines(self):
        text = acquire_markdown([line(1_000), line(10_000, p99=12.5)])
        self.assertTrue(text.startswith("## `CHARON.ACQUIRE`: clients waiting at once\n"))
        self.assertIn("| 1,000 | 333 | 3.00 | 0.50 | 3.00 | 9.12 | 0 | 32,768 | 250 |", text)
        self.assertIn("| 10,000 | 3,333 | 0.30 | 0.50 | 12.50 | 9.12 | 0 | 32,768 | 250 |",
                      text)
        self.assertEqual(acquire_markdown([]), "")

    def test_lateness_target_at_1000_waiters_only(self):
        met = targets_markdown([], [], 1_000, [line(1_000, p99=4.5), line(10_000, p99=50.0)])
        self.assertIn("| `CHARON.ACQUIRE` p99 lateness of the reply after the turn, 1,000 "
                      "clients waiting, ms | ≤ 5.00 | 4.50 | yes |", met.splitlines())
        self.assertNotIn("50.00", met)
        missed = targets_markdown([], [], 1_000, [line(1_000, p99=5.25)])
        self.assertIn("| ≤ 5.00 | 5.25 | **no** |", missed)
        self.assertNotIn("CHARON.ACQUIRE", targets_markdown([], [], 1_000, [line(50)]))


class MarkdownTest(unittest.TestCase):
    def setUp(self):
        self.loads = [w for w in workloads(SHA) if w.name in ("SET PX", "CHARON.RATE allow")]
        self.rows = [row("SET PX", 1), row("CHARON.RATE allow", 1, 0.9, limited=0.125),
                     row("SET PX", 32), row("CHARON.RATE allow", 32, 1.25, limited=0.0)]
        self.meta = {"command": "bench/run --smoke", "date": "2026-01-02 03:04 UTC",
                     "machine_line": "2 CPUs (test)", "server": "Redis 7.0.15 (test)",
                     "module": "`libcharon.so`", "load": "50 clients", "rounds": 3,
                     "keyspace": 1_000, "buckets": 1_000, "smoke": False,
                     "server_argv": "redis-server --port 1"}
        self.memory = [{"kind": "CHARON.RATE bucket",
                        "command": "CHARON.RATE rl:0000000 1000 1 1h",
                        "bytes_per_key": 120.25, "memory_usage_one": 72}]
        self.lines = ["redis-benchmark -P 1 SET", "redis-benchmark -P 32 SET"]

    def render(self, **changes):
        meta = {**self.meta, **changes.pop("meta", {})}
        arguments = dict(micro=None, perf=None)
        arguments.update(changes)
        return markdown(meta, self.loads, self.rows, self.memory, arguments["micro"],
                        arguments["perf"], self.lines)

    def section(self, text, title):
        start = text.index(title)
        end = text.find("\n## ", start + 1)
        return text[start:] if end < 0 else text[start:end]

    def test_rows_in_their_pipeline_table(self):
        text = self.render()
        p1, p32 = self.section(text, "## Pipeline 1 "), self.section(text, "## Pipeline 32 ")
        self.assertIn("| CHARON.RATE allow | 123,456 | 0.90 | 0.50 | 1.00 | 0.250 | 1.500 | "
                      "2.12 | 12% |", p1)
        self.assertIn("| CHARON.RATE allow | 123,456 | 1.25 | 0.50 | 1.00 | 0.250 | 1.500 | "
                      "2.12 | 0% |", p32)
        self.assertIn("| SET PX | 123,456 | 1.00 | 0.50 | 1.00 | 0.250 | 1.500 | 2.12 | |", p32)
        self.assertNotIn("| 1.25 |", p1)

    def test_head_commands_and_memory(self):
        text = self.render()
        self.assertTrue(text.startswith("# Charon benchmark\n\nMade by `bench/run --smoke` on "
                                        "2026-01-02 03:04 UTC.\n"))
        self.assertIn("| server | Redis 7.0.15 (test) |", text)
        self.assertIn("median of 3 interleaved rounds", text)
        self.assertIn("- **SET PX**: `SET rl:s:__rand_int__ v PX 60000`: the baseline", text)
        self.assertIn("## Memory: 1,000 keys of each kind", text)
        self.assertIn("| CHARON.RATE bucket | `CHARON.RATE rl:0000000 1000 1 1h` | 120.2 | 72 |",
                      text)

    def test_exact_commands_close_the_report(self):
        text = self.render()
        self.assertTrue(text.endswith(
            "## Exact commands\n\n```\nredis-server --port 1\n"
            "redis-benchmark -P 1 SET\nredis-benchmark -P 32 SET\n```\n"))

    def test_targets_unless_smoke(self):
        self.assertIn("## Targets", self.render())
        self.assertNotIn("## Targets", self.render(meta={"smoke": True}))

    def test_acquire_section_before_targets_only_when_measured(self):
        self.assertNotIn("CHARON.ACQUIRE", self.render())
        text = markdown(self.meta, self.loads, self.rows, self.memory, None, None, self.lines,
                        [line(1_000)])
        self.assertIn("| 1,000 | 333 |", text)
        self.assertLess(text.index("## `CHARON.ACQUIRE`"), text.index("## Targets"))
        self.assertIn("| ≤ 5.00 | 3.00 | yes |", self.section(text, "## Targets"))

    def test_criterion_and_profile_only_when_given(self):
        plain = self.render()
        self.assertNotIn("criterion", plain)
        self.assertNotIn("PROFILE-MARKER", plain)
        micro = [{"name": "core/decide", "median_ns": 12.34, "low_ns": 12.0, "high_ns": 13.06}]
        text = self.render(micro=micro, perf="## PROFILE-MARKER\n")
        self.assertIn("| `core/decide` | 12.3 | 12.0 to 13.1 |", text)
        self.assertLess(text.index("core/decide"), text.index("PROFILE-MARKER"))
        self.assertLess(text.index("PROFILE-MARKER"), text.index("## Exact commands"))


def profile(name, samples, children=None, span_s=0.5):
    return Profile(workload=name, freq=1000, record=["perf", "record", "-F", "1000"],
                   load=["redis-benchmark", "-P", "32"],
                   report=["perf", "report", "-t", "\t"], calls=1_000_000, span_s=span_s,
                   lost=3, samples=samples, children=children or {})


class PerfMarkdownTest(unittest.TestCase):
    # 400 and 550 samples at 1000 Hz over 1,000,000 calls: 400 and 550 ns.
    base = profile("SET PX", {("redis-server", "call"): 200, ("redis-server", "setCommand"): 100,
                              ("libc.so", "memcpy"): 100})
    other = profile("CHARON.RATE allow", {("redis-server", "call"): 200,
                                          ("libcharon.so", "charon::rate"): 300,
                                          ("libc.so", "memcpy"): 50}, span_s=0.6)

    def render(self, graph=None, note=""):
        return perf_markdown(PerfResult(flat=[self.base, self.other], graph=graph, note=note))

    def test_ns_per_request(self):
        self.assertAlmostEqual(self.base.total_ns, 400.0)
        self.assertAlmostEqual(self.other.wall_ns, 600.0)

    def assert_lines(self, text, expected):
        """Each of `expected` is a whole line of `text`."""
        lines = text.splitlines()
        for line in expected:
            self.assertIn(line, lines)

    def test_totals(self):
        self.assert_lines(self.render(note="why"), [
            "| calls | 1,000,000 | 1,000,000 | |",
            "| requests per second | 2,000,000 | 1,666,667 | |",
            "| samples at `-F 1000` (lost) | 400 (3) | 550 (3) | |",
            "| **sampled ns/request** | **400.0** | **550.0** | **+150.0** |",
            "| wall ns/request (1e9 / req/s) | 500.0 | 600.0 | +100.0 |",
            "| sampled / wall | 0.800 | 0.917 | |",
        ])

    def test_symbols_by_difference_largest_extra_cost_first(self):
        text = self.render()
        symbols = [line for line in text.splitlines() if line.startswith("| redis-server")
                   or line.startswith("| libc")]
        self.assertEqual(symbols, [
            "| libcharon.so `charon::rate` | 0.0 | 300.0 | +300.0 |",
            "| redis-server `call` | 200.0 | 200.0 | +0.0 |",
            "| libc.so `memcpy` | 100.0 | 50.0 | -50.0 |",
            "| redis-server `setCommand` | 100.0 | 0.0 | -100.0 |",
        ])
        self.assertIn("| everything else (0 symbols) | 0.0 | 0.0 | +0.0 |", text)

    def test_symbols_past_the_top_are_summed(self):
        with mock.patch.object(report, "PERF_TOP", 2):
            text = self.render()
        self.assertNotIn("`memcpy`", text)
        self.assertNotIn("`call` |", text)
        self.assertIn("| everything else (2 symbols) | 300.0 | 250.0 | -50.0 |", text)

    def test_no_call_graphs_says_why(self):
        text = self.render(note="perf: no DWARF here")
        self.assertIn("Not available: the call-graph record failed, so this profile has the "
                      "self time only. perf: no DWARF here", text)

    def test_inclusive_time_on_the_self_time_scale(self):
        gbase = profile("SET PX", {("", "call"): 10}, {"call": 50.0, "setGenericCommand": 30.0})
        gother = profile("CHARON.RATE allow", {("", "call"): 10},
                         {"call": 60.0, "RM_OpenKey": 10.0})
        text = self.render(graph=[gbase, gother])
        self.assert_lines(text, [
            "| `call` | 200.0 | 330.0 | +130.0 |",
            "| `setGenericCommand` | 120.0 | | |",
            "| `RM_OpenKey` | | 55.0 | |",
            "| `lookupKey` | | | |",
        ])
        self.assertNotIn("Not available", text)

    def test_commands_as_shell_lines(self):
        text = self.render()
        self.assertEqual(text.count("perf report -t $'\\t'"), 2)
        self.assertTrue(text.endswith("```\n"))


class HelpersTest(unittest.TestCase):
    def test_table_alignment_and_empty_cells(self):
        self.assertEqual(table(["name", "n", ""], "lrl", [["a", "1", ""], ["", "22", "x"]]),
                         ["| name | n | |", "|---|---:|---|", "| a | 1 | |", "| | 22 | x |"])

    def test_shell_quotes_and_writes_a_tab_as_ansi_c(self):
        self.assertEqual(shell(["perf", "report", "-t", "\t", "a b"]),
                         "perf report -t $'\\t' 'a b'")

    def test_code_escapes_table_pipes(self):
        self.assertEqual(code("operator|"), "`operator\\|`")


if __name__ == "__main__":
    unittest.main()
