"""The server under measurement: redis-server with the module loaded, on a
free loopback port, no persistence, pinned to its own CPU, with maxclients
raised for the CHARON.ACQUIRE step's waiting clients."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .client import Client, wait_ready
from .errors import BenchError
from .machine import free_port, pin

# Room for the CHARON.ACQUIRE step's 10,000 waiting clients.
MAXCLIENTS = 20_000


class Server:
    def __init__(self, binary: Path, module: Path, workdir: Path, cpu: int | None,
                 module_args: tuple[str, ...] = ()):
        self.binary, self.module, self.workdir, self.cpu = binary, module, workdir, cpu
        self.module_args = module_args
        self.log = workdir / "redis.log"
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.argv: list[str] = []

    def start(self) -> None:
        """Starts it and waits for its PONG; a port taken meanwhile by someone
        else is retried on another (up to 5 ports)."""
        for _ in range(5):
            self.port = free_port()
            self.argv = pin(self.cpu, [
                str(self.binary), "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--daemonize", "no",
                "--dir", str(self.workdir), "--logfile", str(self.log),
                "--maxclients", str(MAXCLIENTS),
                "--loadmodule", str(self.module), *self.module_args])
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            client = wait_ready(self.port, within_s=20, timeout=5, poll_s=0.05,
                                alive=lambda: self.proc.poll() is None)
            if client is not None:
                client.close()
                return
            self.stop()
            if "Address already in use" not in self.log_tail():
                break
        raise BenchError(f"the server did not start; its log says:\n{self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-15:])
        except OSError:
            return "(no log)"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid  # taskset execs the server: the same process

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            Client.connect(self.port, timeout=20).shutdown()
            self.proc.wait(timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(timeout=20)
