"""The measured steps on a running server: preparing keys, the calibrated
redis-benchmark runs in interleaved rounds, and the memory loads. Every step
checks that each command did what its row says (no failed call, the INFO
charon counters moved as expected); none of them judges speed."""

from __future__ import annotations

import csv
import io
import re
import shlex
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .client import Client, charon_counters, commandstats
from .errors import BenchError
from .machine import STEP_TIMEOUT_S, pin, run
from .progress import check_passed, say
from .server import Server
from .workload import CLIENTS, HOUR_MS, Workload

# -n of the calibration run, and the bounds of a measured run's -n, by -P.
CALIBRATION = {1: 20_000, 32: 200_000}
LIMITS = {1: (20_000, 1_000_000), 32: (200_000, 10_000_000)}
# The memory load of Charon's own buckets (the report's memory target).
BUCKET_MEMORY = "CHARON.RATE bucket"
TWO_BAND_MEMORY = "CHARON.RATE two-band bucket"


@dataclass
class Sample:
    """One redis-benchmark run of one command at one pipeline depth."""

    rps: float
    p50_ms: float
    p99_ms: float
    usec_per_call: float
    calls: int
    charon: dict[str, int] = field(default_factory=dict)  # INFO charon's moves


class Bench:
    """The steps, on one server, through one control connection."""

    def __init__(self, args, server: Server, tools: dict[str, Path], client_cpu):
        self.args, self.server, self.tools, self.client_cpu = args, server, tools, client_cpu
        self.client = Client.connect(server.port, timeout=STEP_TIMEOUT_S)
        self.command_lines: dict[tuple[str, int], str] = {}
        self.requests: dict[tuple[str, int], int] = {}

    def key(self, tag: str, index: int) -> str:
        return f"rl:{tag}:{index:012d}"

    def wait_lazyfree(self) -> None:
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while self.client.info("memory").get("lazyfree_pending_objects", "0") != "0":
            if time.monotonic() > deadline:
                raise BenchError("lazyfree_pending_objects never reached 0")
            time.sleep(0.05)

    def check_clean(self, what: str) -> None:
        """No command failed or was rejected since the last CONFIG RESETSTAT."""
        bad = {name: stats for name, stats in commandstats(self.client).items()
               if stats.get("failed_calls", 0) or stats.get("rejected_calls", 0)}
        errors = self.client.info("errorstats")
        if bad or errors:
            raise BenchError(f"{what}: commands failed: {bad} {errors}")

    def cli(self, *args: str) -> list[str]:
        """A redis-cli command line for this server."""
        return [str(self.tools["cli"]), "-h", "127.0.0.1", "-p", str(self.server.port), *args]

    def pipe(self, commands: bytes, count: int, what: str) -> None:
        """Sends `count` commands through `redis-cli --pipe` (exact counts, no
        sampling), and checks that every reply came back and none is an error."""
        with tempfile.TemporaryFile() as data:
            data.write(commands)
            data.seek(0)
            done = run(pin(self.client_cpu, self.cli("--pipe")), stdin=data)
        out = done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")
        summary = re.search(r"errors: (\d+), replies: (\d+)", out)
        if done.returncode != 0 or not summary or summary.groups() != ("0", str(count)):
            raise BenchError(f"{what}: redis-cli --pipe: {out.strip()[-400:]}")
        check_passed()

    def prefill(self, workload: Workload) -> None:
        if workload.prefill is None:
            return
        keyspace = self.args.keyspace
        keys = (self.key(workload.tag, i) for i in range(keyspace))
        self.pipe(Client.encode_keyed(workload.prefill, keys), keyspace,
                  f"preparing {workload.name}")

    def load(self, workload: Workload, pipeline: int, requests: int) -> list[str]:
        """The redis-benchmark command of `workload`."""
        return pin(self.client_cpu, [
            str(self.tools["benchmark"]), "-h", "127.0.0.1", "-p", str(self.server.port),
            "-c", str(CLIENTS), "-n", str(requests), "-r", str(self.args.keyspace),
            "-P", str(pipeline), "--csv", *workload.argv])

    def benchmark(self, workload: Workload, pipeline: int, requests: int) -> Sample:
        what = f"{workload.name} at -P {pipeline}"
        argv = self.load(workload, pipeline, requests)
        self.command_lines[(workload.name, pipeline)] = shlex.join(argv)
        self.client.call("CONFIG", "RESETSTAT")
        before = charon_counters(self.client)
        done = run(argv)
        # redis-benchmark 7 stops at the first error reply, exits 1 and says
        # "Error from server: ..." on stderr.
        if done.returncode != 0:
            raise BenchError(f"{what}: redis-benchmark exited {done.returncode}: "
                             f"{done.stderr.decode(errors='replace').strip()[-400:]}")
        rows = list(csv.DictReader(io.StringIO(done.stdout.decode())))
        if len(rows) != 1 or "rps" not in rows[0]:
            raise BenchError(f"{what}: unexpected redis-benchmark output: "
                             f"{done.stdout.decode(errors='replace')[:400]}")
        row = rows[0]
        stats = commandstats(self.client)
        after = charon_counters(self.client)
        self.check_clean(what)
        own = stats.get(workload.cmdstat)
        if own is None or own["calls"] < requests:
            raise BenchError(f"{what}: INFO commandstats counts {own and own['calls']} "
                             f"calls of {workload.cmdstat}, expected {requests}")
        delta = {name: after[name] - before.get(name, 0) for name in after if name != "buckets"}
        self.check_charon(workload, delta, int(own["calls"]), what)
        check_passed()
        return Sample(rps=float(row["rps"]), p50_ms=float(row["p50_latency_ms"]),
                      p99_ms=float(row["p99_latency_ms"]),
                      usec_per_call=own["usec_per_call"], calls=int(own["calls"]),
                      charon=delta)

    @staticmethod
    def check_charon(workload: Workload, delta: dict[str, int], calls: int, what: str) -> None:
        """The run did what its row says (the scenario, not its speed)."""
        if workload.charon is None:
            return
        if workload.charon == "peeks":
            ok = delta.get("peeks") == calls
        elif workload.charon == "reserved":  # a limited reservation is not counted
            ok = delta.get("reserved") == calls and delta.get("waiting", 0) == 0
        else:
            ok = delta.get("calls") == calls and delta.get(workload.charon) == calls
        if not ok:
            raise BenchError(f"{what}: expected every one of {calls} calls "
                             f"{workload.charon}, INFO charon moved by {delta}")

    def sizes(self, loads: list[Workload]) -> dict[tuple[str, int], int]:
        """-n for each command and pipeline depth: fixed when given, else sized
        from a short calibration run (which also warms the server up) so that
        each measured run takes about --seconds, whatever the machine's load."""
        fixed = {1: self.args.requests_p1, 32: self.args.requests_p32}
        sizes = {}
        for pipeline in (1, 32):
            for workload in loads:
                if fixed[pipeline] is not None:
                    sizes[(workload.name, pipeline)] = fixed[pipeline]
                    continue
                probe = CALIBRATION[pipeline]
                rps = self.benchmark(workload, pipeline, probe).rps
                low, high = LIMITS[pipeline]
                n = int(min(max(rps * self.args.seconds, low), high)) // 1000 * 1000
                sizes[(workload.name, pipeline)] = n
                say(f"calibration  -P {pipeline:<2}  {workload.name:<26} {rps:>11,.0f} req/s"
                    f"  -> -n {n:,}")
        return sizes

    def rounds(self, loads: list[Workload]) -> dict[tuple[str, int], list[Sample]]:
        """Every command at -P 1 then -P 32, once per round, interleaved."""
        samples: dict[tuple[str, int], list[Sample]] = {}
        for workload in loads:
            self.prefill(workload)
        self.requests = self.sizes(loads)
        for round_no in range(1, self.args.rounds + 1):
            for pipeline in (1, 32):
                for workload in loads:
                    sample = self.benchmark(workload, pipeline,
                                            self.requests[(workload.name, pipeline)])
                    samples.setdefault((workload.name, pipeline), []).append(sample)
                    say(f"round {round_no}  -P {pipeline:<2}  {workload.name:<26} "
                        f"{sample.rps:>11,.0f} req/s  {sample.usec_per_call:6.2f} us/call")
        return samples

    def memory(self, sha: str) -> list[dict]:
        """used_memory per key for `count` buckets of each kind, same key names."""
        count = self.args.buckets
        keys = [f"rl:{i:07d}" for i in range(count)]
        charon = ("CHARON.RATE", "{key}", "1000", "1", "1h")
        charon2 = (*charon, "LIMIT", "2000", "2", "1d")
        lua = ("EVALSHA", sha, "1", "{key}", "1000", "1", str(HOUR_MS), "1")

        def counters() -> bytes:  # SET rl:<i> <i> PX 3600000: a distinct count per key
            return b"".join(Client.encode(("SET", key, i, "PX", HOUR_MS))
                            for i, key in enumerate(keys))

        kinds = [
            (BUCKET_MEMORY, charon, lambda: Client.encode_keyed(charon, keys)),
            (TWO_BAND_MEMORY, charon2, lambda: Client.encode_keyed(charon2, keys)),
            ("Lua hash bucket", lua, lambda: Client.encode_keyed(lua, keys)),
            ("SET key n PX", ("SET", "{key}", "0", "PX", str(HOUR_MS)), counters),
        ]
        results = []
        for name, template, commands in kinds:
            data = commands()
            self.client.call("FLUSHALL")
            self.wait_lazyfree()
            self.client.call("CONFIG", "RESETSTAT")
            before = int(self.client.info("memory")["used_memory"])
            self.pipe(data, count, f"memory: {name}")
            after = int(self.client.info("memory")["used_memory"])
            dbsize = self.client.call("DBSIZE")
            if dbsize != count:
                raise BenchError(f"memory: {name}: DBSIZE {dbsize}, expected {count}")
            usage = self.client.call("MEMORY", "USAGE", keys[0], "SAMPLES", "0")
            self.check_clean(f"memory: {name}")
            results.append({"kind": name, "keys": count, "used_memory_before": before,
                            "used_memory_after": after,
                            "bytes_per_key": (after - before) / count,
                            "memory_usage_one": usage,
                            "command": shlex.join(keys[0] if part == "{key}" else part
                                                  for part in template)})
            say(f"memory  {name:<20} {(after - before) / count:8.1f} bytes/key "
                f"(MEMORY USAGE {usage})")
        self.client.call("FLUSHALL")
        self.wait_lazyfree()
        return results
