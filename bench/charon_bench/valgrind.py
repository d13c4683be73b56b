"""The Python half of scripts/valgrind (which starts the server under
memcheck): the workload that drives every path of the module that allocates,
through the bench's RESP client, and the reading of valgrind's logs for
leaks and memory errors with a frame in the module.

    python3 -m charon_bench.valgrind free-port
    python3 -m charon_bench.valgrind workload PORT
    python3 -m charon_bench.valgrind check LOG_DIRECTORY
"""

from __future__ import annotations

import random
import re
import sys
import time
from pathlib import Path

from .client import Client, ReplyError, wait_ready
from .errors import BenchError
from .machine import free_port

DAY_MS = 86_400_000
# The header of a record that fails the run when a frame of it is the module's.
MEMORY_ERRORS = re.compile(r"Invalid (read|write|free)|Mismatched free|uninitialised|overlap|"
                           r"definitely lost in loss record")
DEFINITELY_LOST = re.compile(r"([\d,]+) bytes in [\d,]+ blocks are definitely lost")


def say(message: str) -> None:
    print(f"valgrind workload: {message}", file=sys.stderr, flush=True)


def crc64(data: bytes) -> int:
    """Redis's CRC-64 (Jones, reflected), which seals a DUMP payload."""
    poly = int("{:064b}".format(0xAD93D23594C935A9)[::-1], 2)
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
    return crc


def seal(body: bytes, version: bytes) -> bytes:
    """A DUMP payload: the value, the RDB version, the checksum of both."""
    payload = body + version
    return payload + crc64(payload).to_bytes(8, "little")


def leb128(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def wait_persistence(client: Client) -> None:
    while True:
        info = client.call("INFO", "persistence").decode()
        if "aof_rewrite_in_progress:0" in info and "rdb_bgsave_in_progress:0" in info \
                and "aof_rewrite_scheduled:0" in info:
            return
        time.sleep(0.5)


def commands(rng: random.Random, now: int) -> list[list]:
    """Decisions, errors, every shape of state, and buckets that expire
    within a second."""
    out: list[list] = []
    for _ in range(3000):
        key = "k:%d" % rng.randrange(400)
        capacity = rng.randrange(1, 50)
        roll = rng.random()
        if roll < 0.6:
            cost = rng.choice([0, 1, 1, 2, capacity, capacity + 1])
            out.append(["CHARON.RATE", key, capacity, rng.randrange(1, 10),
                        rng.choice(["1s", "5m", "1h", "1d"]), cost])
        elif roll < 0.75:
            out.append(["CHARON.PEEK", key, rng.randrange(3)])
        elif roll < 0.85:
            out.append(["CHARON.REFUND", key, rng.choice([1, 2, 1000])])
        else:
            out.append(rng.choice([
                ["CHARON.RATE", key, "0", "1", "1s"],
                ["CHARON.RATE", key, "10", "1", "1y"],
                ["CHARON.RATE", key, "10", "1", "9223372036854775807d"],
                ["CHARON.RATE", key, "10", "1", "1s", "-1"],
                ["CHARON.RATE", key],
                ["CHARON.PEEK", key, "x"],
                ["CHARON.REFUND", key, "0"],
                ["CHARON.SETSTATE", key, "x"],
                ["CHARON.SETSTATE", key, now, 1, 10, 1, DAY_MS, 11, 0],
                ["CHARON.SETSTATE", key, now, 17, 10, 1, DAY_MS, 5, 0],
            ]))
    out.append(["SET", "string", "v"])
    out += [["CHARON.RATE", "string", 10, 1, "1s"], ["CHARON.PEEK", "string"],
            ["CHARON.REFUND", "string", 1]]
    for bands in (1, 3, 16):
        out.append(["CHARON.SETSTATE", "multi:%d" % bands, now, bands]
                   + [100, 1, DAY_MS, 7, 12345] * bands)
    for bands in (1, 2):
        packed = (b"\x01" + leb128(now) + leb128(bands)
                  + b"".join(leb128(v) for v in [10, 1, DAY_MS, 4, 999] * bands))
        out.append(["CHARON.SETSTATE", "packed:%d" % bands, packed])
        out.append(["CHARON.SETSTATE", "bad:%d" % bands, packed + b"\x00"])
    for key in [b"%s%n%x", b"bin\x00\xff", b""]:
        out.append(["CHARON.RATE", key, 5, 1, "1h", 2])
        out.append(["CHARON.RATE", key, "%s%n%x", 1, "1h"])
    for i in range(300):
        out.append(["CHARON.RATE", "short:%d" % i, 2, 2, "100ms", 1])
    return out


def corrupt(rng: random.Random, payload: bytes) -> bytes:
    """`payload` (a DUMP) truncated, with a bit flipped, with a wrong band
    count or with bytes inserted, then sealed again so that only the module
    can refuse it."""
    body, version = bytearray(payload[:-10]), payload[-10:-8]
    mutation = rng.randrange(4)
    if mutation == 0:
        body = body[: rng.randrange(12, len(body))]
    elif mutation == 1:
        body[rng.randrange(10, len(body))] ^= 1 << rng.randrange(8)
    elif mutation == 2:
        body[11] = 17 if rng.random() < 0.5 else 2  # the band count
    else:
        position = rng.randrange(10, len(body))
        body[position:position] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))
    return seal(bytes(body), version)


def workload(port: int) -> None:
    """Every command path, introspection, COPY and DUMP/RESTORE (corrupt
    payloads too), persistence, contained panics, expiry and deletion, then
    SHUTDOWN NOSAVE, waiting for the server to close the connection."""
    client = wait_ready(port, within_s=300, timeout=300, poll_s=0.5)
    if client is None:
        raise BenchError("the server under valgrind did not start")
    rng = random.Random(5)
    now = int(client.call("TIME")[0]) * 1000
    client.pipeline(commands(rng, now))

    # Introspection.
    keys = ["multi:1", "multi:3", "multi:16", "packed:2"]
    for key in keys:
        client.call("MEMORY", "USAGE", key)
        client.call("DEBUG", "DIGEST-VALUE", key)
    client.call("DEBUG", "DIGEST")
    client.call("INFO", "charon")
    client.pipeline([["COMMAND", "DOCS", "CHARON.RATE"]])  # an error before 7.0

    # COPY, DUMP/RESTORE, corrupt RESTORE.
    dumps = []
    for i, key in enumerate(keys):
        client.call("COPY", key, "copy:%d" % i)
        payload = client.call("DUMP", key)
        client.call("RESTORE", "restored:%d" % i, 0, payload)
        dumps.append(payload)
    restores = [["RESTORE", "corrupt:%d" % i, 0, corrupt(rng, rng.choice(dumps)), "REPLACE"]
                for i in range(300)]
    refused = sum(isinstance(client.pipeline([command])[0], ReplyError) for command in restores)
    say("%d of 300 corrupt payloads refused" % refused)

    # Persistence: RDB, DEBUG RELOAD, AOF rewrite and reload.
    client.call("SAVE")
    client.call("DEBUG", "RELOAD")
    client.call("BGREWRITEAOF")
    wait_persistence(client)
    client.call("CHARON.RATE", "after-rewrite", 10, 1, "1h", 3)
    client.call("DEBUG", "LOADAOF")
    client.call("BGSAVE")
    wait_persistence(client)

    # Contained panics, when the module has the test command.
    if client.call("COMMAND", "INFO", "CHARON.TESTPANIC")[0] is not None:
        replies = client.pipeline([["CHARON.TESTPANIC", "panic:%d" % i] for i in range(50)])
        if not all(isinstance(reply, ReplyError) for reply in replies):
            raise BenchError(f"CHARON.TESTPANIC replied other than an error: {replies}")
        say("50 contained panics")

    # Expiry, deletion on every path, a background flush.
    time.sleep(1.5)
    client.call("DEL", "copy:0", "copy:1")
    client.call("UNLINK", "copy:2", "copy:3")
    client.pipeline([["CHARON.REFUND", "k:%d" % i, 1000] for i in range(400)])
    client.call("FLUSHALL", "ASYNC")
    time.sleep(1)
    # Some buckets still held at shutdown (reachable, not leaked).
    client.pipeline([["CHARON.RATE", "final:%d" % i, 10, 1, "1h"] for i in range(100)])
    info = client.call("INFO", "charon").decode()
    say("done; " + " ".join(word for word in info.split() if word.startswith("charon_")))
    client.shutdown()


def records(log: str) -> list[list[str]]:
    """A valgrind log as its records: a header line and its stack, each
    without the ==pid== prefix; a blank line ends a record."""
    out, current = [], []
    for line in log.splitlines():
        text = re.sub(r"^==\d+== ?", "", line)
        if text.strip():
            current.append(text)
        elif current:
            out.append(current)
            current = []
    if current:
        out.append(current)
    return out


def in_module(record: list[str]) -> bool:
    return any("libcharon" in frame or "charon::" in frame for frame in record[1:])


def check_log(log: str) -> tuple[int, int, list[list[str]]]:
    """Bytes definitely lost in all, and in records with a frame in the
    module; and the records (leaks and memory errors) that are the module's."""
    leaked = module_leaked = 0
    problems = []
    for record in records(log):
        lost = DEFINITELY_LOST.match(record[0])
        if lost:
            leaked += int(lost.group(1).replace(",", ""))
        if not MEMORY_ERRORS.search(record[0]) or not in_module(record):
            continue
        if lost:
            module_leaked += int(lost.group(1).replace(",", ""))
        problems.append(record)
    return leaked, module_leaked, problems


def check(directory: Path) -> bool:
    """Every valgrind.<pid>.log in `directory` (the server and its forked
    children): says each one's summary, and fails on the module's records.
    Leaks of the server itself are reported, not judged."""
    leaked = module_leaked = 0
    problems = []
    for path in sorted(directory.glob("valgrind.*.log")):
        log = path.read_text(errors="replace")
        all_lost, module_lost, found = check_log(log)
        leaked, module_leaked = leaked + all_lost, module_leaked + module_lost
        problems += ["%s:\n  %s" % (path, "\n  ".join(record)) for record in found]
        for line in log.splitlines():
            if "definitely lost:" in line or "ERROR SUMMARY" in line:
                print("valgrind: %s: %s" % (path.name, line.split("== ", 1)[-1].strip()),
                      file=sys.stderr)
    print("valgrind: definitely lost: %d bytes in all, %d bytes in libcharon frames"
          % (leaked, module_leaked), file=sys.stderr)
    if problems:
        print("valgrind: records with libcharon frames:\n" + "\n".join(problems),
              file=sys.stderr)
        return False
    print("valgrind: no leak and no memory error in the module", file=sys.stderr)
    return True


def main(argv: list[str]) -> int:
    if argv == ["free-port"]:
        print(free_port())
        return 0
    if len(argv) == 2 and argv[0] == "workload":
        try:
            workload(int(argv[1]))
        except BenchError as err:
            print(f"valgrind workload: FAILED: {err}", file=sys.stderr)
            return 1
        return 0
    if len(argv) == 2 and argv[0] == "check":
        return 0 if check(Path(argv[1])) else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
