"""A minimal RESP2 client over a loopback socket: enough for INFO, CONFIG,
the benchmark's checks and the valgrind workload, without a third-party
package on a fresh machine. Error replies are values (ReplyError) when read
in a pipeline, and raise BenchError from `call`."""

from __future__ import annotations

import socket
import time
from typing import Callable, Iterable

from .errors import BenchError


class ReplyError(Exception):
    """An error reply (`-ERR ...`), returned as a value, not raised."""


class Client:
    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = b""

    @classmethod
    def connect(cls, port: int, timeout: float = 60.0) -> Client:
        return cls(socket.create_connection(("127.0.0.1", port), timeout=timeout))

    def close(self) -> None:
        self.sock.close()

    @staticmethod
    def encode(args) -> bytes:
        """One command; str, int and bytes arguments."""
        out = [b"*%d\r\n" % len(args)]
        for arg in args:
            data = arg if isinstance(arg, bytes) else str(arg).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
        return b"".join(out)

    @staticmethod
    def encode_keyed(template, keys: Iterable[str]) -> bytes:
        """The commands `template` with "{key}" replaced by each of `keys`."""
        head, _, tail = Client.encode(template).partition(b"$5\r\n{key}\r\n")
        return b"".join(b"%s$%d\r\n%s\r\n%s" % (head, len(key), key, tail)
                        for key in (k.encode() for k in keys))

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise BenchError("the server closed the connection")
        self.buf += chunk

    def _line(self) -> bytes:
        while True:
            end = self.buf.find(b"\r\n")
            if end >= 0:
                line, self.buf = self.buf[:end], self.buf[end + 2:]
                return line
            self._fill()

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def reply(self):
        """The next reply: str, int, bytes, None, a list of those, or ReplyError."""
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return ReplyError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise BenchError(f"unexpected reply line {line[:80]!r}")

    def pipeline(self, commands) -> list:
        """Sends every command at once, then reads one reply per command;
        error replies come back as ReplyError values."""
        commands = list(commands)
        self.sock.sendall(b"".join(self.encode(command) for command in commands))
        return [self.reply() for _ in commands]

    def call(self, *args):
        reply = self.pipeline([args])[0]
        if isinstance(reply, ReplyError):
            raise BenchError(f"{' '.join(map(str, args))[:80]}: {reply}")
        return reply

    def info(self, section: str) -> dict[str, str]:
        text = self.call("INFO", section).decode()
        fields = {}
        for line in text.splitlines():
            if line and not line.startswith("#") and ":" in line:
                name, value = line.split(":", 1)
                fields[name] = value
        return fields

    def shutdown(self) -> None:
        """SHUTDOWN NOSAVE, then waits (within the socket's timeout) for the
        server to close the connection as it exits."""
        self.sock.sendall(self.encode(["SHUTDOWN", "NOSAVE"]))
        while self.sock.recv(1 << 16):
            pass
        self.close()


def wait_ready(port: int, within_s: float, timeout: float, poll_s: float,
               alive: Callable[[], bool] = lambda: True) -> Client | None:
    """A connection to a server that answered PING with PONG (it accepts
    connections and has loaded its data), or None once `within_s` has passed
    or `alive()` turned false. `timeout`: the connection's socket timeout."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline and alive():
        try:
            client = Client.connect(port, timeout)
        except OSError:
            time.sleep(poll_s)
            continue
        try:
            if client.pipeline([["PING"]])[0] == "PONG":
                return client
        except (OSError, BenchError):
            pass
        client.close()
        time.sleep(poll_s)
    return None


def commandstats(client: Client) -> dict[str, dict[str, float]]:
    """INFO commandstats by command (lowercase), each entry's fields as floats."""
    stats = {}
    for name, value in client.info("commandstats").items():
        if name.startswith("cmdstat_"):
            fields = dict(part.split("=", 1) for part in value.split(","))
            stats[name[len("cmdstat_"):].lower()] = {k: float(v) for k, v in fields.items()}
    return stats


def charon_counters(client: Client) -> dict[str, int]:
    """INFO charon's counters, without their charon_ prefix."""
    return {name[len("charon_"):]: int(value)
            for name, value in client.info("charon").items()
            if name.startswith("charon_")}
