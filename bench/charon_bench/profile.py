"""--perf: where the server's time goes per request. `perf record` of the
server while one command runs alone at -P 32, the calls it made counted in
perf's own window, and `perf report` read back as samples by symbol (and, in
a second record with call graphs, each function's inclusive share)."""

from __future__ import annotations

import re
import shlex
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BenchError
from .machine import STEP_TIMEOUT_S, run
from .progress import check_passed, say
from .steps import Bench
from .workload import Workload

# How long perf records each workload, at what sampling frequency (self
# time; call graphs, which cost more per sample), and what it reports.
PERF_SECONDS = 5
PERF_FREQ = 2000
GRAPH_FREQ = 1000
GRAPH_MODE = "dwarf,16384"
PERF_TOP = 40
# The server functions whose inclusive time (their callees' included) the
# call-graph profile reports, caller before callee.
INCLUSIVE = ("call", "setGenericCommand", "setExpire", "RedisModuleCommandDispatcher",
             "RM_OpenKey", "lookupKey", "RM_ModuleTypeGetValue", "RM_SetAbsExpire",
             "RM_ReplyWithLongLong", "RM_Replicate", "lookupCommandByCString")


class PerfError(BenchError):
    """perf failed to record or to report (the call graphs are given up on
    such a failure, with its message)."""


@dataclass
class Profile:
    """One `perf record` of the server while one workload ran at -P 32. The
    samples are of CPU time (cpu-clock, or cycles in frequency mode): a
    sample is 1/freq s of the server's CPU."""

    workload: str
    freq: int
    record: list[str]  # the perf record command
    load: list[str]  # the redis-benchmark command
    report: list[str]  # the perf report command
    calls: int  # INFO commandstats calls in perf's window
    span_s: float  # perf's first to last sample: the window's length
    lost: int
    # Self samples by (dso, function); the dso is "" in a call-graph report.
    samples: dict[tuple[str, str], int]
    # Inclusive share (%) by function: call-graph reports only.
    children: dict[str, float] = field(default_factory=dict)

    def ns(self, samples: float) -> float:
        """Samples as ns of the server per request."""
        return samples / self.freq / self.calls * 1e9

    @property
    def total(self) -> int:
        return sum(self.samples.values())

    @property
    def total_ns(self) -> float:
        return self.ns(self.total)

    @property
    def wall_ns(self) -> float:
        """1e9 / requests per second, over the window."""
        return self.span_s * 1e9 / self.calls


@dataclass
class PerfResult:
    flat: list[Profile]  # self time: SET PX, then CHARON.RATE allow
    graph: list[Profile] | None  # the same with call graphs (None: perf failed)
    note: str  # why graph is None


@dataclass
class PerfReport:
    argv: list[str]
    lost: int
    samples: dict[tuple[str, str], int]
    children: dict[str, float]


def perf_report(data: Path, graph: bool, rename: dict[str, str]) -> PerfReport:
    """`perf report` of `data`, tab-separated: self samples by dso and
    function, or (`graph`) by function with each one's inclusive share."""
    # -g none: the totals without the call chains under them; -t: columns
    # split by a tab (symbols hold spaces, commas and semicolons).
    argv = ["perf", "report", "--children" if graph else "--no-children", "-n", "--stdio",
            "--sort", "symbol" if graph else "dso,symbol", "-g", "none", "-t", "\t",
            "-i", str(data)]
    done = run(argv)
    text = done.stdout.decode(errors="replace")
    if done.returncode != 0:
        raise PerfError(f"{shlex.join(argv)}: {done.stderr.decode(errors='replace')[-400:]}")
    columns: list[str] = []
    lost = 0
    samples: dict[tuple[str, str], int] = {}
    children: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            found = re.match(r"#\s*Total Lost Samples:\s*(\d+)", line)
            if found:
                lost = int(found.group(1))
            names = [name.strip() for name in line[1:].split("\t")]
            if "Samples" in names and "Symbol" in names:
                columns = names
            continue
        if not line.strip():
            continue
        if not columns:
            raise PerfError(f"{shlex.join(argv)}: no column header before {line[:80]!r}")
        cell = dict(zip(columns, (value.strip() for value in line.split("\t"))))
        symbol = re.sub(r"^\[.\] ", "", cell["Symbol"])
        dso = cell.get("Shared Object", "")
        key = (rename.get(dso, dso), symbol)
        samples[key] = samples.get(key, 0) + int(cell["Samples"])
        if graph:
            # A name can stand for several functions (copies, or one name in
            # two files): the largest share is the one named.
            share = float(cell["Children"].rstrip("%"))
            children[symbol] = max(children.get(symbol, 0.0), share)
    if not samples:
        raise PerfError(f"{shlex.join(argv)}: no samples")
    return PerfReport(argv=argv, lost=lost, samples=samples, children=children)


def record(bench: Bench, workload: Workload, rps_hint: float, graph: bool, workdir: Path,
           rename: dict[str, str]) -> Profile:
    """perf record of the server while `workload` runs at -P 32 (started a
    second before, killed after), and the calls the server counted in
    perf's window. `graph`: with call graphs, reported inclusive.

    perf runs a shell that reads INFO commandstats, sleeps PERF_SECONDS
    and reads it again: perf samples from before the shell starts to
    after it ends, so the calls between the two reads are those of the
    window (give or take a redis-cli start, a few ms). Reads made around
    perf itself would also count its start and its end (about 0.3 s and
    1 s here), during which it does not sample."""
    what = f"perf: {workload.name}{' (call graphs)' if graph else ''}"
    freq = GRAPH_FREQ if graph else PERF_FREQ
    data = workdir / f"{workload.tag}{'-graph' if graph else ''}.data"
    # Twice the rate seen, for the warm-up and the window: never done early.
    load = bench.load(workload, 32, int(max(rps_hint, 10_000) * 2 * (PERF_SECONDS + 1)))
    stats = shlex.join(bench.cli("INFO", "commandstats"))
    argv = ["perf", "record", "-F", str(freq),
            *(["--call-graph", GRAPH_MODE] if graph else []),
            "-p", str(bench.server.pid), "-o", str(data), "--",
            "sh", "-c", f"{stats} && sleep {PERF_SECONDS} && {stats}"]
    with tempfile.TemporaryFile() as errors:
        benchmark = subprocess.Popen(load, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=errors)
        try:
            time.sleep(1)  # every client connected, the server busy
            bench.client.call("CONFIG", "RESETSTAT")
            done = run(argv)
            early = benchmark.poll()
        finally:
            if benchmark.poll() is None:
                benchmark.kill()
            benchmark.wait(timeout=STEP_TIMEOUT_S)
        errors.seek(0)
        said = errors.read().decode(errors="replace").strip()[-400:]
    if done.returncode != 0:
        raise PerfError(f"{what}: {shlex.join(argv)}: "
                        f"{done.stderr.decode(errors='replace').strip()[-400:]}")
    if early is not None:
        raise BenchError(f"{what}: redis-benchmark ended (exit {early}) before perf "
                         f"did: {said}")
    bench.check_clean(what)
    reads = [int(n) for n in re.findall(
        rf"^cmdstat_{re.escape(workload.cmdstat)}:calls=(\d+),",
        done.stdout.decode(errors="replace"), flags=re.MULTILINE | re.IGNORECASE)]
    if len(reads) != 2 or reads[1] <= reads[0]:
        raise BenchError(f"{what}: INFO commandstats read in perf's window gave "
                         f"{reads} calls of {workload.cmdstat}: "
                         f"{done.stdout.decode(errors='replace')[-400:]}")
    report = perf_report(data, graph, rename)
    header = run(["perf", "report", "--header-only", "-i", str(data)])
    span = re.search(r"sample duration\s*:\s*([\d.]+) ms", header.stdout.decode())
    if not span or float(span.group(1)) <= 0:
        raise PerfError(f"{what}: perf report --header-only gives no sample duration")
    data.unlink(missing_ok=True)
    check_passed()
    return Profile(workload=workload.name, freq=freq, record=argv, load=load,
                   report=report.argv, calls=reads[1] - reads[0],
                   span_s=float(span.group(1)) / 1000,
                   lost=report.lost, samples=report.samples, children=report.children)


def profile(bench: Bench, loads: list[Workload], hints: dict[str, float]) -> PerfResult:
    """Self-time profiles of each of `loads` (on their prepared keys), one
    after the other, then the same with call graphs (given up, with the
    reason, if perf cannot record or report them). `hints`: each one's
    requests per second at -P 32, to size its run."""
    for workload in loads:
        bench.prefill(workload)
    binary = bench.server.binary
    # Debian's redis-server is a symlink to redis-check-rdb: perf names the file.
    rename = {binary.resolve().name: binary.name} if binary.is_symlink() else {}
    with tempfile.TemporaryDirectory(prefix="charon-bench-perf-") as workdir:
        flat = []
        for workload in loads:
            flat.append(record(bench, workload, hints[workload.name], False,
                               Path(workdir), rename))
            say(f"perf  {workload.name:<24} {flat[-1].total_ns:8.1f} ns/request sampled, "
                f"{flat[-1].wall_ns:8.1f} wall")
        graph: list[Profile] | None = []
        note = ""
        try:
            for workload in loads:
                graph.append(record(bench, workload, hints[workload.name], True,
                                    Path(workdir), rename))
                found = [name for name in INCLUSIVE if name in graph[-1].children]
                if not found:
                    raise PerfError(f"perf: {workload.name}: the call-graph report has "
                                    f"none of {', '.join(INCLUSIVE)}")
                say(f"perf  {workload.name:<24} call graphs: {len(found)} of "
                    f"{len(INCLUSIVE)} functions found")
        except PerfError as err:
            graph, note = None, str(err)
            say(f"perf: no call graphs, self time only: {err}")
    return PerfResult(flat=flat, graph=graph, note=note)
