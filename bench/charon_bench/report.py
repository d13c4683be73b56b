"""The report: the measured samples summarized into rows (medians of the
per-round ratios), the targets beside what was measured, and the markdown of
a run and of its server profile. Pure functions of their inputs, so that the
unit tests check them on small hand-made data, with no server."""

from __future__ import annotations

import shlex
import statistics
from dataclasses import dataclass

from .profile import GRAPH_FREQ, GRAPH_MODE, INCLUSIVE, PERF_SECONDS, PERF_TOP, PerfResult
from .steps import BUCKET_MEMORY, TWO_BAND_MEMORY
from .workload import (BANDS, CELL_WORKLOAD, CLIENTS, FCALL_WORKLOAD, INCR_WORKLOAD,
                       LUA_WORKLOAD, RATE2_WORKLOAD, RATE4_WORKLOAD, RATE_WORKLOAD,
                       RESERVE_WORKLOAD, SET_WORKLOAD, Workload)


@dataclass
class Row:
    """One line of a pipeline table: medians over the rounds."""

    name: str
    pipeline: int
    rps: float
    vs_set: float
    vs_incr: float
    vs_lua: float
    p50_ms: float
    p99_ms: float
    usec_per_call: float
    limited_share: float | None
    # The median per-round ratio to CHARON.RATE allow (None: not measured).
    vs_rate: float | None = None

    @property
    def band_cost(self) -> float | None:
        """For a multi-band CHARON.RATE row: the share of one-band throughput
        each extra band costs, (1 - × CHARON.RATE allow) / extra bands
        (below 0 when the row measured faster)."""
        bands = BANDS.get(self.name)
        if bands is None or self.vs_rate is None:
            return None
        return (1.0 - self.vs_rate) / (bands - 1)


# What CHARON.RATE aims at, as ratios measured in one run (and bytes):
# (what, the row (a workload, or a memory kind when pipeline is None),
# pipeline, the row's field, bound, at least?, format of bound and value).
TARGETS = (
    ("`CHARON.RATE` allow, × `SET key v PX ttl` at `-P 32`", RATE_WORKLOAD, 32, "vs_set", 1.0,
     True, "×"),
    ("`CHARON.RATE` allow, × `SET key v PX ttl` at `-P 1`", RATE_WORKLOAD, 1, "vs_set", 0.95,
     True, "×"),
    ("`CHARON.RATE` allow, × the Lua token bucket at `-P 32`", RATE_WORKLOAD, 32, "vs_lua",
     5.0, True, "×"),
    ("`CHARON.RATE` 2 bands: each extra band's cost, share of one-band throughput at `-P 32`",
     RATE2_WORKLOAD, 32, "band_cost", 0.05, False, "%"),
    ("`CHARON.RATE` 4 bands: each extra band's cost, share of one-band throughput at `-P 32`",
     RATE4_WORKLOAD, 32, "band_cost", 0.05, False, "%"),
    ("`FCALL charon_rate` (lua/charon.lua), × the Lua token bucket at `-P 32`",
     FCALL_WORKLOAD, 32, "vs_lua", 1.0, True, "×"),
    ("`CL.THROTTLE`, × `CHARON.RATE` allow at `-P 32` (within 5%)", CELL_WORKLOAD, 32,
     "vs_rate", 0.95, True, "×"),
    ("`CHARON.RESERVE` granted without wait, × `CHARON.RATE` allow at `-P 32` (within 5%)",
     RESERVE_WORKLOAD, 32, "vs_rate", 0.95, True, "×"),
    ("`CHARON.RESERVE` granted without wait, × `CHARON.RATE` allow at `-P 1` (within 5%)",
     RESERVE_WORKLOAD, 1, "vs_rate", 0.95, True, "×"),
    ("`used_memory` bytes per one-band bucket, at 1,000,000 buckets", BUCKET_MEMORY, None,
     "bytes_per_key", 161.0, False, "bytes"),
)
# The CHARON.ACQUIRE line's targets: (what, waiters, the line's field, bound
# (at most), format).
ACQUIRE_TARGETS = (
    ("`CHARON.ACQUIRE` p99 lateness of the reply after the turn, 1,000 clients waiting, ms",
     1_000, "p99_ms", 5.0, "ms"),
)


def shown(value: float, unit: str) -> str:
    """A target's bound or measured value in its format."""
    if unit == "×":
        return f"{value:.2f}×"
    if unit == "%":
        return f"{value * 100:.1f}%"
    if unit == "ms":
        return f"{value:.2f}"
    return f"{value:.1f}"


def table(header: list[str], align: str, rows) -> list[str]:
    """A markdown table's lines: `align` has an l (left) or r (right) per
    column; an empty cell is written as one space."""
    def line(cells) -> str:
        return "|" + "|".join(f" {cell} " if cell else " " for cell in cells) + "|"

    rule = "|" + "|".join("---:" if side == "r" else "---" for side in align) + "|"
    return [line(header), rule, *(line(cells) for cells in rows)]


def targets_markdown(rows: list[Row], memory: list[dict], buckets: int,
                     acquire: list[dict] = ()) -> str:
    """Each target beside what this run measured (the memory target only
    when the run loaded as many buckets as it is stated for, an ACQUIRE
    target only when the run had a line of its number of waiters)."""
    lines = []
    for what, name, pipeline, field_name, bound, at_least, unit in TARGETS:
        if pipeline is None:
            found = [m[field_name] for m in memory
                     if m["kind"] == name and buckets == 1_000_000]
        else:
            found = [getattr(r, field_name) for r in rows
                     if r.name == name and r.pipeline == pipeline]
        found = [value for value in found if value is not None]
        if not found:
            continue
        value = found[0]
        met = value >= bound if at_least else value <= bound
        sign = "≥" if at_least else "≤"
        lines.append([what, f"{sign} {shown(bound, unit)}", shown(value, unit),
                      "yes" if met else "**no**"])
    for what, waiters, field_name, bound, unit in ACQUIRE_TARGETS:
        found = [entry[field_name] for entry in acquire if entry["waiters"] == waiters]
        if found:
            lines.append([what, f"≤ {shown(bound, unit)}", shown(found[0], unit),
                          "yes" if found[0] <= bound else "**no**"])
    out = ["## Targets\n",
           "Ratios are medians of the per-round ratios, as in the tables above.\n",
           *table(["target", "bound", "measured", "met"], "lrrl", lines)]
    return "\n".join(out) + "\n"


def summarize(loads: list[Workload], samples, rounds: int) -> list[Row]:
    """A row per command and pipeline depth. The ratios are the medians of
    the per-round ratios (each taken within one round, on the same machine
    state), not ratios of the medians."""
    rows = []
    for pipeline in (1, 32):
        for workload in loads:
            own = samples[(workload.name, pipeline)]
            sets = samples[(SET_WORKLOAD, pipeline)]
            incrs = samples[(INCR_WORKLOAD, pipeline)]
            luas = samples[(LUA_WORKLOAD, pipeline)]
            rates = samples.get((RATE_WORKLOAD, pipeline))
            limited = None
            if workload.charon in ("allowed", "limited"):
                calls = sum(s.charon.get("calls", 0) for s in own)
                limited = sum(s.charon.get("limited", 0) for s in own) / calls if calls else 0.0
            rows.append(Row(
                name=workload.name, pipeline=pipeline,
                rps=statistics.median(s.rps for s in own),
                vs_set=statistics.median(own[r].rps / sets[r].rps for r in range(rounds)),
                vs_incr=statistics.median(own[r].rps / incrs[r].rps for r in range(rounds)),
                vs_lua=statistics.median(own[r].rps / luas[r].rps for r in range(rounds)),
                p50_ms=statistics.median(s.p50_ms for s in own),
                p99_ms=statistics.median(s.p99_ms for s in own),
                usec_per_call=statistics.median(s.usec_per_call for s in own),
                limited_share=limited,
                vs_rate=None if rates is None else
                statistics.median(own[r].rps / rates[r].rps for r in range(rounds))))
    return rows


def beside_rate_markdown(rows: list[Row], memory: list[dict]) -> str:
    """The extra bands, CHARON.RESERVE, the Functions form and CL.THROTTLE
    beside one-band
    CHARON.RATE allow, measured side by side in the same rounds; and the
    memory of a two-band bucket beside a one-band one. Empty when the run
    has none of those rows."""
    names = (RATE2_WORKLOAD, RATE4_WORKLOAD, RESERVE_WORKLOAD, FCALL_WORKLOAD,
             CELL_WORKLOAD)
    lines = []
    for pipeline in (32, 1):
        for name in names:
            for row in rows:
                if row.name != name or row.pipeline != pipeline or row.vs_rate is None:
                    continue
                cost = row.band_cost
                lines.append([row.name, f"`-P {pipeline}`", f"{row.rps:,.0f}",
                              f"{row.vs_rate:.3f}",
                              "" if cost is None else f"{cost * 100:.1f}%",
                              f"{row.vs_lua:.2f}"])
    if not lines:
        return ""
    out = [f"## Beside one-band `{RATE_WORKLOAD}`\n",
           f"`× {RATE_WORKLOAD}` is the median of the per-round ratios to the one-band "
           f"row, run in the same rounds; *per extra band* is (1 − that ratio) / (bands − 1), "
           "the share of one-band throughput each extra band costs (below 0: measured "
           "faster, within the noise).\n",
           *table(["command", "pipeline", "req/s", f"× {RATE_WORKLOAD}", "per extra band",
                   "× Lua"], "llrrrr", lines)]
    per_key = {m["kind"]: m["bytes_per_key"] for m in memory}
    if BUCKET_MEMORY in per_key and TWO_BAND_MEMORY in per_key:
        one, two = per_key[BUCKET_MEMORY], per_key[TWO_BAND_MEMORY]
        out.append("")
        out.append(f"Memory (`used_memory` per key, below): {one:.1f} bytes per one-band "
                   f"bucket, {two:.1f} per two-band bucket ({two - one:+.1f} for the second "
                   "band).")
    return "\n".join(out) + "\n"


def acquire_markdown(acquire: list[dict]) -> str:
    """The CHARON.ACQUIRE lines: lateness of each reply after its turn, and
    memory per waiting client beside a client blocked in BLPOP. Empty when
    the run has no line."""
    if not acquire:
        return ""
    out = ["## `CHARON.ACQUIRE`: clients waiting at once\n",
           "Each line: N connections, one per client, each sending `CHARON.ACQUIRE "
           "line:<N> 1 <R> 1s TIMEOUT 600000` on the same key once (R = N per line length: "
           "turns 1/R apart), after the line's first moments were taken by `CHARON.RESERVE` "
           "from another connection so that every client is queued before the first turn. "
           "*Lateness* is the receive time minus the turn, the turn being the local send time "
           "plus the reply's wait (an upper bound: the server reads the command after it "
           "was sent); *early* counts replies more than 1 ms before their turn (any fails "
           "the run). *Bytes per waiter* is `used_memory` with the N clients waiting "
           "(`charon_waiting` = N) minus `used_memory` with the same N connections open and "
           "idle, over N; *BLPOP* is the same measure for N clients blocked in `BLPOP` on a "
           "key never pushed, the server's own cost of a blocked client.\n",
           *table(["waiters", "R per s", "turns apart, ms", "p50 ms", "p99 ms", "max ms",
                   "early", "bytes per waiter", "BLPOP bytes per client"], "rrrrrrrrr",
                  [[f"{entry['waiters']:,}", f"{entry['refill_per_s']:,}",
                    f"{entry['spacing_ms']:.2f}", f"{entry['p50_ms']:.2f}",
                    f"{entry['p99_ms']:.2f}", f"{entry['max_ms']:.2f}", str(entry["early"]),
                    f"{entry['bytes_per_waiter']:,.0f}", f"{entry['bytes_per_blpop']:,.0f}"]
                   for entry in acquire])]
    return "\n".join(out) + "\n"


def shell(argv: list[str]) -> str:
    """`argv` as a bash command line (a tab argument as $'\\t')."""
    return " ".join("$'\\t'" if arg == "\t" else shlex.quote(arg) for arg in argv)


def code(text: str) -> str:
    """`text` as inline code in a markdown table cell."""
    return "`" + text.replace("|", "\\|") + "`"


def perf_markdown(result: PerfResult) -> str:
    """The per-request attribution: self time by symbol, inclusive time of
    INCLUSIVE, SET PX beside CHARON.RATE allow."""
    base, other = result.flat

    def side_by_side(first: str, lines) -> list[str]:
        return table([first, base.workload, other.workload, "difference"], "lrrr", lines)

    out = [f"## Server profile: {base.workload} beside {other.workload} at `-P 32`\n"]
    out.append(
        f"`perf record -p <server pid>` (every thread of the server) for {PERF_SECONDS} s "
        f"while each command ran alone at `-P 32` with {CLIENTS} clients, one after the "
        "other on the same server and the keys prepared beforehand; redis-benchmark "
        "started 1 s before perf and was killed after it. The command perf runs for its "
        f"window reads `INFO commandstats`, sleeps {PERF_SECONDS} s and reads it again: "
        "*calls* is the difference, the calls made while perf sampled (reads made around "
        "perf would also count its start and end, over a second, when it does not "
        "sample). A sample is 1/F s of the server's CPU time, so ns/request = samples / F / "
        "calls × 1e9. *Sampled* is every sample per request; *wall* is 1e9 / (calls / "
        "seconds from the first sample to the last), the time per request seen from "
        "outside: the two agree when the server is never idle.\n")
    total = ["**sampled ns/request**", f"**{base.total_ns:.1f}**", f"**{other.total_ns:.1f}**",
             f"**{other.total_ns - base.total_ns:+.1f}**"]
    out.extend(side_by_side("", [
        ["calls", f"{base.calls:,}", f"{other.calls:,}", ""],
        ["seconds sampled (first to last sample)", f"{base.span_s:.3f}", f"{other.span_s:.3f}",
         ""],
        ["requests per second", f"{base.calls / base.span_s:,.0f}",
         f"{other.calls / other.span_s:,.0f}", ""],
        [f"samples at `-F {base.freq}` (lost)", f"{base.total:,} ({base.lost})",
         f"{other.total:,} ({other.lost})", ""],
        total,
        ["wall ns/request (1e9 / req/s)", f"{base.wall_ns:.1f}", f"{other.wall_ns:.1f}",
         f"{other.wall_ns - base.wall_ns:+.1f}"],
        ["sampled / wall", f"{base.total_ns / base.wall_ns:.3f}",
         f"{other.total_ns / other.wall_ns:.3f}", ""],
    ]))
    out.append("")
    out.append("### Self time by symbol, ns per request\n")
    out.append(f"`perf report --no-children --sort dso,symbol`: time in each function's own "
               f"code (not its callees'). The {PERF_TOP} symbols whose time per request differs "
               f"most between the two, by difference ({other.workload} minus "
               f"{base.workload}), the largest extra cost first; every other symbol is "
               "summed in *everything else*.\n")
    keys = set(base.samples) | set(other.samples)

    def cost(key) -> tuple[float, float, float]:
        low, high = base.ns(base.samples.get(key, 0)), other.ns(other.samples.get(key, 0))
        return low, high, high - low

    def ns(label: str, low: float, high: float) -> list[str]:
        return [label, f"{low:.1f}", f"{high:.1f}", f"{high - low:+.1f}"]

    top = sorted(keys, key=lambda k: (-abs(cost(k)[2]), k))[:PERF_TOP]
    lines = [ns(f"{key[0]} {code(key[1])}", *cost(key)[:2])
             for key in sorted(top, key=lambda k: (-cost(k)[2], k))]
    rest = [cost(key) for key in keys if key not in set(top)]
    lines.append(ns(f"everything else ({len(rest)} symbols)", sum(c[0] for c in rest),
                    sum(c[1] for c in rest)))
    lines.append(["**total**", *total[1:]])
    out.extend(side_by_side("symbol", lines))
    out.append("")
    out.append("### Inclusive time of server functions, ns per request\n")
    if result.graph is None:
        out.append(f"Not available: the call-graph record failed, so this profile has the "
                   f"self time only. {result.note}\n")
    else:
        gbase, gother = result.graph
        out.append(
            f"A second record of each command, with call graphs (`-F {GRAPH_FREQ} "
            f"--call-graph {GRAPH_MODE}`), `perf report --children --sort symbol`: the share "
            "of the samples with the function anywhere on the stack (its callees included), "
            "times the sampled ns/request of the self-time record above, so that both "
            "tables share one scale (the call-graph records, made later, come to "
            f"{gbase.total_ns:.1f} and {gother.total_ns:.1f} ns/request of their own, over "
            f"{gbase.calls:,} and {gother.calls:,} calls). Empty: the function is on no "
            "sampled stack. Copies that the compiler inlined into their callers (perf's "
            "`name (inlined)`) are not counted.\n")
        lines = []
        for name in INCLUSIVE:
            cells = []
            for flat, graph in ((base, gbase), (other, gother)):
                share = graph.children.get(name)
                cells.append(None if share is None else share / 100 * flat.total_ns)
            diff = "" if None in cells else f"{cells[1] - cells[0]:+.1f}"
            shown = ["" if cell is None else f"{cell:.1f}" for cell in cells]
            lines.append([code(name), *shown, diff])
        out.extend(side_by_side("function", lines))
        out.append("")
    out.append("### Commands\n")
    out.append("```")
    for profile in [*result.flat, *(result.graph or [])]:
        out.append(f"# {profile.workload}: redis-benchmark (killed once perf returns), "
                   "perf record, perf report")
        out.append(shlex.join(profile.load))
        out.append(shlex.join(profile.record))
        out.append(shell(profile.report))
    out.append("```")
    return "\n".join(out) + "\n"


def markdown(meta: dict, loads: list[Workload], rows: list[Row], memory: list[dict],
             micro: list[dict] | None, perf: str | None, command_lines,
             acquire: list[dict] | None = None) -> str:
    """latest.md: the run's conditions, a table per pipeline depth, the
    commands, the targets (not for a smoke run), memory, criterion and the
    server profile when there are some, and every command line run."""
    out = []
    out.append("# Charon benchmark\n")
    out.append(f"Made by `{meta['command']}` on {meta['date']}.\n")
    out.extend(table(["", ""], "ll", [[label, meta[key]] for label, key in (
        ("machine", "machine_line"), ("server", "server"), ("module", "module"),
        ("load", "load"))]))
    out.append("")
    out.append(f"Throughput is the median of {meta['rounds']} interleaved rounds; "
               "`× SET`, `× INCR` and `× Lua` are the medians of the per-round ratios to "
               "`SET key v PX 60000`, to `INCR key` and to the Lua token bucket "
               "(`EVALSHA`) at the same pipeline depth. "
               "Latency is redis-benchmark's, per request (per batch of 32 at `-P 32`); "
               "µs/call is the server's own time per call (`INFO commandstats`, "
               "reset before each run). The machine is shared: compare ratios "
               "within one report, not absolute numbers across reports.\n")
    for pipeline in (1, 32):
        out.append(f"## Pipeline {pipeline} (`-P {pipeline}`)\n")
        out.extend(table(
            ["command", "req/s", "× SET", "× INCR", "× Lua", "p50 ms", "p99 ms", "µs/call",
             "limited"], "lrrrrrrrr",
            [[row.name, f"{row.rps:,.0f}", f"{row.vs_set:.2f}", f"{row.vs_incr:.2f}",
              f"{row.vs_lua:.2f}", f"{row.p50_ms:.3f}", f"{row.p99_ms:.3f}",
              f"{row.usec_per_call:.2f}",
              "" if row.limited_share is None else f"{row.limited_share:.0%}"]
             for row in rows if row.pipeline == pipeline]))
        out.append("")
    out.append("Commands (keys `rl:<tag>:<12 digits>`, "
               f"{meta['keyspace']:,} of them per command, "
               "prepared before the first round where the row needs stored keys):\n")
    for workload in loads:
        out.append(f"- **{workload.name}**: `{shlex.join(workload.argv)}`: {workload.note}")
    out.append("")
    beside = beside_rate_markdown(rows, memory)
    if beside:
        out.append(beside)
    waits = acquire_markdown(acquire or [])
    if waits:
        out.append(waits)
    if not meta.get("smoke"):
        out.append(targets_markdown(rows, memory, meta["buckets"], acquire or []))
    out.append(f"## Memory: {meta['buckets']:,} keys of each kind\n")
    out.append("`used_memory` after minus before, divided by the number of keys "
               "(each kind alone, after `FLUSHALL` and lazyfree done, the same key names "
               "`rl:0000000`...; every key alive with an hour's TTL), and "
               "`MEMORY USAGE` of one key. The keys are written by `redis-cli --pipe` "
               "from generated commands, exactly one per key, every reply checked; "
               "`SET` stores a distinct integer per key (the key's number).\n")
    out.extend(table(["kind", "command per key", "bytes/key (used_memory)", "MEMORY USAGE"],
                     "llrr", [[entry["kind"], f"`{entry['command']}`",
                               f"{entry['bytes_per_key']:.1f}", str(entry["memory_usage_one"])]
                              for entry in memory]))
    out.append("")
    if micro is not None:
        out.append("## Core micro-benchmarks (criterion, no server)\n")
        out.append("`cargo bench --locked --bench core` (benches/core.rs): median time "
                   "per call and its 95% confidence interval.\n")
        out.extend(table(["function", "ns/call", "95% CI"], "lrr",
                         [[f"`{entry['name']}`", f"{entry['median_ns']:.1f}",
                           f"{entry['low_ns']:.1f} to {entry['high_ns']:.1f}"]
                          for entry in micro]))
        out.append("")
    if perf is not None:
        out.append(perf)
    out.append("## Exact commands\n")
    out.append("```")
    out.append(meta["server_argv"])
    for line in command_lines:
        out.append(line)
    out.append("```")
    return "\n".join(out) + "\n"
