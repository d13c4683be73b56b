"""The host and the checkout the run reads: where things are, which server
binary is pinned, which CPUs to pin to, and the one way subprocesses run
(with a time-out, so a hung tool fails the run instead of stalling it)."""

from __future__ import annotations

import csv
import datetime
import os
import platform
import shlex
import shutil
import socket
import subprocess
from pathlib import Path

from .errors import BenchError

ROOT = Path(__file__).resolve().parent.parent.parent
BENCH = ROOT / "bench"
MATRIX = ROOT / "servers" / "matrix.tsv"
SERVER_ROW = "redis-7.0"
# A guard against a hung process, never a judgement of speed.
STEP_TIMEOUT_S = 600


def run(argv, timeout=STEP_TIMEOUT_S, **kwargs) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, capture_output=True, timeout=timeout, check=False, **kwargs)
    except subprocess.TimeoutExpired as err:
        raise BenchError(f"{shlex.join(map(str, argv))[:120]}: still running after "
                         f"{timeout} s") from err


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, str]:
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu_model(),
        "kernel": f"{platform.system()} {platform.release()}",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def git_revision() -> str:
    """HEAD, and which of the module's sources differ from it."""
    head = run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], timeout=30)
    if head.returncode != 0:
        return "unknown (not a git checkout)"
    revision = head.stdout.decode().strip()
    dirty = run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src",
                 "Cargo.toml", "Cargo.lock"], timeout=30).stdout.decode().split("\n")
    changed = sorted({line[3:] for line in dirty if line.strip()})
    if changed:
        revision += " with uncommitted changes to " + ", ".join(changed)
    return revision


def pinned_server() -> tuple[Path, str]:
    """The redis-7.0 row of the matrix: its server binary and version."""
    with MATRIX.open() as table:
        for row in csv.DictReader(table, delimiter="\t"):
            if row["name"] == SERVER_ROW:
                return Path(row["server_path"]), row["version"]
    raise BenchError(f"{MATRIX}: no row {SERVER_ROW}")


def tool(name: str, beside: Path) -> Path:
    """`name` from the server binary's directory, else from PATH."""
    candidate = beside.parent / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which(name)
    if not found:
        raise BenchError(f"{name} not found (it comes with redis-server: make deps)")
    return Path(found)


def cpus() -> tuple[int | None, int | None]:
    """CPU 0 for the server, CPU 1 for redis-benchmark (or the first two this
    process may use); no pinning on a single-CPU machine."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return None, None
    if 0 in allowed and 1 in allowed:
        return 0, 1
    return allowed[0], allowed[1]


def pin(cpu: int | None, argv: list[str]) -> list[str]:
    return argv if cpu is None else ["taskset", "-c", str(cpu), *argv]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
