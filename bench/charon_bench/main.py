"""The run from start to end: checks what it needs (the module, the pinned
server, the tools), starts the server, runs the steps, and writes the report,
the chart and the raw numbers. `command_line` is what bench/run calls."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import statistics
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from . import __doc__ as PACKAGE_DOC
from .chart import svg_chart
from .criterion import criterion
from .acquire import Acquire
from .dependencies import require
from .errors import BenchError
from .machine import (BENCH, MATRIX, ROOT, SERVER_ROW, cpus, git_revision, machine,
                      pinned_server, run, tool)
from .profile import PERF_SECONDS, profile
from .progress import checks_passed, say
from .report import markdown, perf_markdown, summarize
from .server import Server
from .steps import Bench
from .workload import (CLIENTS, FUNCTION_LIBRARY, MODULE_ARGS, RATE_WORKLOAD, SET_WORKLOAD,
                       workloads)

LUA_SCRIPT = BENCH / "token_bucket.lua"


def parse_args(argv):
    """The flags, with the smoke's small defaults filled in."""
    parser = argparse.ArgumentParser(prog="bench/run", description=PACKAGE_DOC.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true",
                        help="seconds long, for make test: checks, never judges speed")
    parser.add_argument("--perf", action="store_true",
                        help=f"also profile the server at -P 32, {PERF_SECONDS} s of SET PX "
                             f"and {PERF_SECONDS} s of CHARON.RATE allow: ns per request by "
                             "symbol, side by side (latest.perf.md)")
    parser.add_argument("--module", type=Path, help="the module (default: the release build)")
    parser.add_argument("--out", type=Path,
                        help="where latest.* go (default bench/results; a temporary "
                             "directory with --smoke)")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--seconds", type=float, default=2.0,
                        help="about how long each measured run takes (default 2): -n is "
                             "sized from a calibration run")
    parser.add_argument("--requests-p1", type=int, help="a fixed -n at -P 1 (no calibration)")
    parser.add_argument("--requests-p32", type=int, help="a fixed -n at -P 32")
    parser.add_argument("--keyspace", type=int, help="-r: keys per command")
    parser.add_argument("--buckets", type=int, help="keys of each kind for the memory step")
    parser.add_argument("--waiters", type=waiter_counts,
                        help="the CHARON.ACQUIRE step's lines, clients waiting at once, "
                             "comma-separated (default 1000,10000; 50 with --smoke)")
    parser.add_argument("--line-seconds", type=float,
                        help="how long each ACQUIRE line takes to be served (default 3; "
                             "1 with --smoke)")
    parser.add_argument("--no-criterion", action="store_true",
                        help="skip cargo bench (always skipped with --smoke)")
    args = parser.parse_args(argv)
    smoke = args.smoke
    defaults = {"rounds": 1 if smoke else 3,
                "requests_p1": 1_000 if smoke else None,
                "requests_p32": 6_400 if smoke else None,
                "keyspace": 1_000 if smoke else 100_000,
                "buckets": 1_000 if smoke else 1_000_000,
                "line_seconds": 1.0 if smoke else 3.0}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if (args.requests_p1 is None) != (args.requests_p32 is None):
        parser.error("give both --requests-p1 and --requests-p32, or neither")
    if args.waiters is None:
        args.waiters = [50] if smoke else [1_000, 10_000]
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    if smoke:
        args.no_criterion = True
    return args


def waiter_counts(text: str) -> list[int]:
    """--waiters: comma-separated counts, each 1 to 15,000."""
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text}") from err
    if not counts or any(not 1 <= count <= 15_000 for count in counts):
        raise argparse.ArgumentTypeError("each count must be 1 to 15,000")
    return counts


def function_library() -> str:
    """The Functions library the FCALL row calls. It is part of the checkout:
    missing is a failure, never a row left out."""
    path = ROOT / FUNCTION_LIBRARY
    if not path.is_file():
        raise BenchError(f"{path} is missing: the {FUNCTION_LIBRARY} row needs it")
    return path.read_text()


def load_functions(client, source: str) -> None:
    """FUNCTION LOAD REPLACE of the library, its name checked in the reply."""
    try:
        name = client.call("FUNCTION", "LOAD", "REPLACE", source)
    except BenchError as err:  # the server's error reply, said with the file's name
        raise BenchError(f"FUNCTION LOAD REPLACE of {FUNCTION_LIBRARY} failed: {err}") from err
    if not isinstance(name, bytes):
        raise BenchError(f"FUNCTION LOAD REPLACE of {FUNCTION_LIBRARY} answered {name!r}")


def module_path(args) -> Path:
    """--module, else the release build (under CARGO_TARGET_DIR if set)."""
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    if not target.is_absolute():
        target = ROOT / target
    module = (args.module or target / "release" / "libcharon.so").resolve()
    if not module.is_file():
        raise BenchError(f"{module} is missing: build it first (make build)")
    return module


def server_binary() -> Path:
    """The pinned server, checked to be the version the matrix says."""
    binary, want_version = pinned_server()
    if not binary.is_file():
        raise BenchError(f"{binary} is missing (make deps installs it)")
    version_out = run([str(binary), "--version"], timeout=30).stdout.decode()
    found = re.search(r"v=(\S+)", version_out)
    if not found or found.group(1) != want_version:
        raise BenchError(f"{binary} is not Redis {want_version} ({SERVER_ROW} in "
                         f"{MATRIX.relative_to(ROOT)}): {version_out.strip()}")
    return binary


def run_meta(argv, args, module: Path, server_cpu, client_cpu) -> dict:
    """What the report says about how it was made (the server's own line is
    added once it runs)."""
    mach = machine()
    return {
        "command": shlex.join(["bench/run", *argv])
        + (" (by make)" if os.environ.get("MAKELEVEL") else ""),
        "date": mach["date"],
        "machine_line": f"{mach['nproc']} CPUs ({mach['cpu']}), {mach['kernel']}",
        "module": f"`{module}`, Charon {git_revision()}",
        "smoke": args.smoke, "rounds": args.rounds, "keyspace": args.keyspace,
        "buckets": args.buckets,
        "load": (f"{CLIENTS} clients (`-c {CLIENTS}`), `-r {args.keyspace:,}`, "
                 + (f"`-n {args.requests_p1:,}` at `-P 1` and `-n {args.requests_p32:,}` at "
                    "`-P 32`; " if args.requests_p1 is not None else
                    f"`-n` per command sized for about {args.seconds:g} s per run from a "
                    "calibration run (the exact commands are below); ")
                 + (f"server on CPU {server_cpu}, redis-benchmark on CPU {client_cpu} (taskset)"
                    if server_cpu is not None else "not pinned (a single CPU)")),
        "machine": mach,
    }


def main(argv) -> int:
    """One run; raises BenchError on any failure."""
    args = parse_args(argv)
    started = time.monotonic()
    module = module_path(args)
    binary = server_binary()
    tools = {"benchmark": tool("redis-benchmark", binary), "cli": tool("redis-cli", binary)}
    server_cpu, client_cpu = cpus()
    if server_cpu is not None and not shutil.which("taskset"):
        raise BenchError("taskset not found (util-linux)")
    if args.perf and not shutil.which("perf"):
        raise BenchError("--perf needs perf (Debian: linux-perf)")
    library = function_library()
    require()  # the chart's packages: installed now, not after minutes of measuring

    temporary = None
    if args.out is not None:
        out = args.out
    elif args.smoke:
        temporary = tempfile.TemporaryDirectory(prefix="charon-bench-smoke-")
        out = Path(temporary.name)
    else:
        out = BENCH / "results"
    out.mkdir(parents=True, exist_ok=True)

    meta = run_meta(argv, args, module, server_cpu, client_cpu)
    with tempfile.TemporaryDirectory(prefix="charon-bench-server-") as workdir:
        server = Server(binary, module, Path(workdir), server_cpu, MODULE_ARGS)
        server.start()
        try:
            bench = Bench(args, server, tools, client_cpu)
            info = bench.client.info("server")
            meta["server"] = (f"Redis {info.get('redis_version')} ({binary}), "
                              f"{info.get('multiplexing_api')}, no persistence")
            meta["server_argv"] = shlex.join(server.argv)
            modules = bench.client.call("MODULE", "LIST")
            if not any(b"charon" in entry for entry in modules):
                raise BenchError(f"the module is not loaded: MODULE LIST says {modules}")
            sha = bench.client.call("SCRIPT", "LOAD", LUA_SCRIPT.read_text()).decode()
            load_functions(bench.client, library)
            loads = workloads(sha)
            say(f"server {info.get('redis_version')} on port {server.port} (pid {server.pid}); "
                f"{args.rounds} round(s)")
            samples = bench.rounds(loads)
            say(f"throughput done at {time.monotonic() - started:.0f} s")
            memory = bench.memory(sha)
            say(f"memory done at {time.monotonic() - started:.0f} s")
            acquire = Acquire(bench, args.line_seconds).run(args.waiters)
            say(f"acquire done at {time.monotonic() - started:.0f} s")
            perf = None
            if args.perf:
                pair = [next(w for w in loads if w.name == name)
                        for name in (SET_WORKLOAD, RATE_WORKLOAD)]
                hints = {w.name: statistics.median(s.rps for s in samples[(w.name, 32)])
                         for w in pair}
                perf = perf_markdown(profile(bench, pair, hints))
                (out / "latest.perf.md").write_text(perf)
                say(f"perf done at {time.monotonic() - started:.0f} s: "
                    f"{out / 'latest.perf.md'}")
            bench.client.close()
        except BaseException:
            tail = server.log_tail()
            server.stop()
            say(f"the server's log ends with:\n{tail}")
            raise
        server.stop()
        if server.proc is not None and server.proc.returncode not in (0, None):
            raise BenchError(f"the server exited {server.proc.returncode}:\n{server.log_tail()}")

    micro = None if args.no_criterion else criterion()
    rows = summarize(loads, samples, args.rounds)
    lines = [bench.command_lines[(w.name, p)] for p in (1, 32) for w in loads]
    report = markdown(meta, loads, rows, memory, micro, perf, lines, acquire)
    chart = svg_chart(meta, rows)
    ElementTree.fromstring(chart)  # the chart is well-formed XML
    (out / "latest.md").write_text(report)
    (out / "latest.svg").write_text(chart)
    (out / "latest.json").write_text(json.dumps({
        "meta": meta,
        "rows": [row.__dict__ for row in rows],
        "samples": {f"{name} -P {p}": [s.__dict__ for s in runs]
                    for (name, p), runs in samples.items()},
        "memory": memory, "acquire": acquire, "criterion": micro}, indent=2) + "\n")
    print(report)
    elapsed = time.monotonic() - started
    if args.smoke:
        say(f"smoke: {len(rows)} commands at 2 pipeline depths, {len(memory)} memory "
            f"loads and {len(acquire)} ACQUIRE line(s) ran without a failed command, "
            f"in {elapsed:.1f} s")
        print(f"smoke: {checks_passed()} passed, 0 failed")
        if temporary is not None:
            temporary.cleanup()
        return 0
    say(f"wrote {out / 'latest.md'}, {out / 'latest.svg'}, {out / 'latest.json'} "
        f"in {elapsed:.0f} s")
    return 0


def command_line(argv: list[str]) -> int:
    """main, with a failure said on one line (and, for --smoke, as the
    closing tally) and an exit status."""
    try:
        return main(argv)
    except BenchError as err:
        print(f"bench: FAILED: {err}", file=sys.stderr)
        if "--smoke" in argv:
            print(f"smoke: {checks_passed()} passed, 1 failed")
        return 1
    except KeyboardInterrupt:
        return 130
