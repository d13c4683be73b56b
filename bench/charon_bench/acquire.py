"""The CHARON.ACQUIRE step: N clients waiting at once in one line (one key),
each on its own connection, the server holding every reply until the
client's turn. It measures how late each reply comes after its turn, and
the server memory each waiting client costs.

How a line runs (`line` below): N connections are opened and answer a PING
each; the line's first `lead` seconds are reserved from the control
connection (pipelined CHARON.RESERVE calls of the same limits), so that
every ACQUIRE is queued before the first turn; `used_memory` is read with
the N connections idle; then every connection sends

    CHARON.ACQUIRE line:<N> 1 <R> 1s TIMEOUT 600000

(R = N / line seconds: turns 1/R apart), the local send time noted. Once
INFO charon shows N clients waiting, `used_memory` is read again: the
difference over N is the memory per waiting client. Each reply's wait
(field 4, ms) gives the client's turn as send time + wait, and its lateness
is the receive time minus that turn. The server reads the command after it
was sent, so the true turn is no earlier: the lateness is an upper bound,
and a reply received more than 1 ms before send + wait came before its
turn (an `early` reply: the step fails)."""

from __future__ import annotations

import math
import os
import resource
import selectors
import socket
import statistics
import time

from .client import Client, ReplyError, charon_counters, commandstats
from .errors import BenchError
from .progress import check_passed, say

# The ACQUIRE's TIMEOUT (ms): far beyond any turn of the line.
TIMEOUT_MS = 600_000
# How early a reply may come (clock reads, rounding of wait to ms) before
# it counts as early.
EARLY_MS = 1.0
# The descriptors this process keeps beside the N connections.
SPARE_FDS = 200


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (share in 0..1) of `values`."""
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def lateness(sends: list[float], waits_ms: list[int], receives: list[float]) -> dict:
    """From each client's send time and receive time (s, one clock) and its
    reply's wait (ms, -1: at once): the lateness (receive − (send + wait))
    p50/p99/max in ms, and the count of replies more than EARLY_MS before
    their turn."""
    late = [(receive - send) * 1000 - max(wait, 0)
            for send, wait, receive in zip(sends, waits_ms, receives)]
    return {"p50_ms": percentile(late, 0.50), "p99_ms": percentile(late, 0.99),
            "max_ms": max(late), "min_ms": min(late),
            "early": sum(1 for value in late if value < -EARLY_MS)}


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise BenchError(f"ACQUIRE step: {needed} open files needed, the hard limit "
                         f"(ulimit -Hn) is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


class Acquire:
    """The step, on the server of `bench` (a steps.Bench) and its control
    connection."""

    def __init__(self, bench, line_s: float):
        self.bench, self.client, self.line_s = bench, bench.client, line_s

    def wait_for(self, what: str, ready, within_s: float, poll_s: float = 0.002):
        deadline = time.monotonic() + within_s
        while True:
            value = ready()
            if value:
                return value
            if time.monotonic() > deadline:
                raise BenchError(f"ACQUIRE step: {what} within {within_s:.1f} s")
            time.sleep(poll_s)

    def clients(self) -> int:
        return int(self.client.info("clients")["connected_clients"])

    def open(self, socks: list[socket.socket], count: int, base_clients: int) -> None:
        """`count` connections into `socks`, each having answered a PING, all
        accepted by the server."""
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", self.bench.server.port), timeout=30)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            socks.append(sock)
        ping = Client.encode(("PING",))
        for sock in socks:
            sock.sendall(ping)
        for sock in socks:
            reply = Client(sock).reply()
            if reply != "PONG":
                raise BenchError(f"ACQUIRE step: PING answered {reply!r}")
        self.wait_for(f"{count} connections were not all accepted",
                      lambda: self.clients() == base_clients + count, 30, 0.01)

    def blpop_memory(self, waiters: int) -> float:
        """used_memory per client blocked in BLPOP (on a key never pushed),
        measured as the ACQUIRE waiters are: the server's own cost of a
        blocked client, beside which the ACQUIRE waiter's is read."""
        base_clients = self.clients()
        socks: list[socket.socket] = []
        try:
            self.open(socks, waiters, base_clients)
            idle = int(self.client.info("memory")["used_memory"])
            data = Client.encode(("BLPOP", f"line:none:{waiters}", "0"))
            for sock in socks:
                sock.sendall(data)
            self.wait_for(f"{waiters} clients were not all blocked in BLPOP",
                          lambda: int(self.client.info("clients")["blocked_clients"])
                          == waiters, 30)
            blocked = int(self.client.info("memory")["used_memory"])
        finally:
            for sock in socks:
                sock.close()
        self.wait_for("the BLPOP connections were not all closed",
                      lambda: self.clients() == base_clients, 30, 0.01)
        return (blocked - idle) / waiters

    def line(self, waiters: int) -> dict:
        raise_fd_limit(waiters + SPARE_FDS)
        maxclients = int(self.client.call("CONFIG", "GET", "maxclients")[1])
        if maxclients < waiters + 10:
            raise BenchError(f"ACQUIRE step: the server's maxclients is {maxclients}, "
                             f"{waiters} waiters need more (ulimit -n?)")
        refill = max(1, round(waiters / self.line_s))
        key = f"line:{waiters}"
        command = ("CHARON.ACQUIRE", key, "1", str(refill), "1s", "TIMEOUT", str(TIMEOUT_MS))
        # Time to queue every waiter before the first turn.
        lead_s = 0.5 + waiters * 100e-6
        self.client.call("DEL", key)
        self.client.call("CONFIG", "RESETSTAT")
        before_counters = charon_counters(self.client)
        base_clients = self.clients()
        socks: list[socket.socket] = []
        try:
            self.open(socks, waiters, base_clients)
            # The line's first lead_s reserved: every ACQUIRE comes after them.
            reserve = ("CHARON.RESERVE", key, "1", str(refill), "1s", "MAXWAIT",
                       str(TIMEOUT_MS))
            count = math.ceil(refill * lead_s)
            # The first turn after them comes no earlier than this.
            first_turn = time.monotonic() + count / refill
            replies = self.client.pipeline([reserve] * count)
            bad = [r for r in replies if isinstance(r, ReplyError) or r[0] != 0]
            if bad:
                raise BenchError(f"ACQUIRE step: a CHARON.RESERVE of the lead failed: {bad[0]}")
            idle = int(self.client.info("memory")["used_memory"])
            data = Client.encode(command)
            sends = []
            for sock in socks:
                sends.append(time.monotonic())
                sock.sendall(data)
            sent_s = time.monotonic() - sends[0]
            self.wait_for(f"{waiters} clients were not all waiting before the first turn "
                          f"(sent in {sent_s:.2f} s)",
                          lambda: charon_counters(self.client)["waiting"] == waiters,
                          max(first_turn - time.monotonic(), 0.0))
            waiting = int(self.client.info("memory")["used_memory"])
            if time.monotonic() > first_turn:
                raise BenchError("ACQUIRE step: used_memory was read after the first turn")
            receives, waits = self.receive(socks, first_turn + self.line_s * 2 + 30)
        finally:
            for sock in socks:
                sock.close()
        self.wait_for("the waiters' connections were not all closed",
                      lambda: self.clients() == base_clients, 30, 0.01)
        after = charon_counters(self.client)
        if after["waiting"] != 0:
            raise BenchError(f"ACQUIRE step: charon_waiting is {after['waiting']} after "
                             "every reply")
        cancelled = after["cancelled"] - before_counters.get("cancelled", 0)
        if cancelled:
            raise BenchError(f"ACQUIRE step: {cancelled} waits cancelled")
        own = commandstats(self.client).get("charon.acquire", {}).get("calls", 0)
        if own != waiters:
            raise BenchError(f"ACQUIRE step: INFO commandstats counts {own} calls of "
                             f"charon.acquire, expected {waiters}")
        self.bench.check_clean(f"ACQUIRE, {waiters} waiters")
        blpop = self.blpop_memory(waiters)
        result = {"waiters": waiters, "refill_per_s": refill,
                  "spacing_ms": 1000 / refill, "lead_s": lead_s, "lead_reserves": count,
                  "sent_s": sent_s,
                  "command": " ".join(command),
                  "used_memory_idle": idle, "used_memory_waiting": waiting,
                  "bytes_per_waiter": (waiting - idle) / waiters,
                  "bytes_per_blpop": blpop,
                  **lateness(sends, waits, receives)}
        if result["early"]:
            raise BenchError(f"ACQUIRE step, {waiters} waiters: {result['early']} replies "
                             f"came before their turn (earliest {-result['min_ms']:.2f} ms)")
        check_passed()
        say(f"acquire  {waiters:>6,} waiters  lateness p50 {result['p50_ms']:.2f} ms  "
            f"p99 {result['p99_ms']:.2f} ms  max {result['max_ms']:.2f} ms  "
            f"{result['bytes_per_waiter']:.0f} bytes/waiter (BLPOP {blpop:.0f})")
        return result

    @staticmethod
    def receive(socks: list[socket.socket], deadline: float) -> tuple[list[float], list[int]]:
        """Each connection's one reply: its receive time and wait (ms);
        every reply must be a granted [0, 1, 0, wait, reset]."""
        receives: list[float] = [0.0] * len(socks)
        waits: list[int] = [0] * len(socks)
        buffers = [b""] * len(socks)
        left = len(socks)
        with selectors.DefaultSelector() as selector:
            for index, sock in enumerate(socks):
                selector.register(sock, selectors.EVENT_READ, index)
            while left:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    raise BenchError(f"ACQUIRE step: {left} replies never came")
                for key, _ in selector.select(timeout):
                    index = key.data
                    chunk = key.fileobj.recv(4096)
                    now = time.monotonic()
                    if not chunk:
                        raise BenchError("ACQUIRE step: the server closed a connection")
                    buffers[index] += chunk
                    data = buffers[index]
                    complete = (data.startswith(b"-") and data.endswith(b"\r\n")) \
                        or data.count(b"\r\n") >= 6
                    if not complete:
                        continue
                    parser = Client(key.fileobj)
                    parser.buf = data
                    reply = parser.reply()
                    if isinstance(reply, ReplyError) or not isinstance(reply, list) \
                            or len(reply) != 5 or reply[0] != 0 or parser.buf:
                        raise BenchError(f"ACQUIRE step: unexpected reply {reply!r}")
                    receives[index], waits[index] = now, reply[3]
                    selector.unregister(key.fileobj)
                    left -= 1
        return receives, waits

    def run(self, counts: list[int]) -> list[dict]:
        """A line per waiter count, with this process on the client CPU."""
        cpu = self.bench.client_cpu
        allowed = os.sched_getaffinity(0)
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
        try:
            return [self.line(waiters) for waiters in counts]
        finally:
            if cpu is not None:
                os.sched_setaffinity(0, allowed)
