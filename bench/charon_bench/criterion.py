"""The core's micro-benchmarks (benches/core.rs, no server): run through
cargo and read back from criterion's own estimates, so that the report
gives ns per call beside the server numbers."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from .errors import BenchError
from .machine import ROOT
from .progress import say


def criterion() -> list[dict]:
    """`cargo bench --locked --bench core`, read back from criterion's
    estimates (the median, in ns per call)."""
    cargo = os.environ.get("CARGO", "cargo")
    with tempfile.TemporaryDirectory(prefix="charon-criterion-") as home:
        env = dict(os.environ, CRITERION_HOME=home)
        argv = [cargo, "bench", "--locked", "--bench", "core"]
        say(shlex.join(argv))
        order = []
        with subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              text=True) as bench:
            assert bench.stdout is not None
            for line in bench.stdout:
                sys.stderr.write(line)
                if line.startswith("Benchmarking "):  # "Benchmarking group/name: ..."
                    name = line[len("Benchmarking "):].split(":")[0].strip()
                    if name not in order:
                        order.append(name)
        if bench.returncode != 0:
            raise BenchError(f"{shlex.join(argv)} exited {bench.returncode}")
        results = []
        for found in Path(home).glob("**/new/benchmark.json"):
            meta = json.loads(found.read_text())
            estimates = json.loads((found.parent / "estimates.json").read_text())
            results.append({"name": meta["full_id"],
                            "median_ns": estimates["median"]["point_estimate"],
                            "low_ns": estimates["median"]["confidence_interval"]["lower_bound"],
                            "high_ns": estimates["median"]["confidence_interval"]["upper_bound"]})
        # In the order benches/core.rs runs them.
        results.sort(key=lambda r: (order.index(r["name"]) if r["name"] in order else len(order),
                                    r["name"]))
        if not results:
            raise BenchError("cargo bench ran but criterion wrote no estimates")
        return results
