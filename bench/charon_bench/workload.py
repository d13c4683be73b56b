"""The commands the benchmark measures, and the shape of the load that drives
them: the one place that says what a row of the report stands for."""

from __future__ import annotations

from dataclasses import dataclass

# redis-benchmark's -c for every measured run.
CLIENTS = 50
HOUR_MS = 3_600_000
# The rows the report's ratios and targets are taken to.
INCR_WORKLOAD = "INCR"
SET_WORKLOAD = "SET PX"
RATE_WORKLOAD = "CHARON.RATE allow"
LUA_WORKLOAD = "EVALSHA Lua bucket"
RATE2_WORKLOAD = "CHARON.RATE allow, 2 bands"
RATE4_WORKLOAD = "CHARON.RATE allow, 4 bands"
FCALL_WORKLOAD = "FCALL charon_rate"
CELL_WORKLOAD = "CL.THROTTLE"
RESERVE_WORKLOAD = "CHARON.RESERVE granted, no wait"
# The bands of each multi-band row (the one-band row is RATE_WORKLOAD).
BANDS = {RATE2_WORKLOAD: 2, RATE4_WORKLOAD: 4}
# The module arguments the server is started with: CL.THROTTLE is only
# registered with them.
MODULE_ARGS = ("CLTHROTTLE", "yes")
# The Redis Functions library whose charon_rate the FCALL row calls, loaded
# with FUNCTION LOAD REPLACE (relative to the checkout).
FUNCTION_LIBRARY = "lua/charon.lua"


@dataclass(frozen=True)
class Workload:
    """One benchmarked command. `tag` keeps each command's keys apart
    (`rl:<tag>:<12 digits>`, as redis-benchmark's __rand_int__ expands)."""

    name: str
    tag: str
    argv: tuple[str, ...]
    cmdstat: str  # its INFO commandstats entry (lowercase)
    # The command that puts every key of the keyspace in place before the
    # measured runs (None: the keys need no preparing), "{key}" for the key.
    prefill: tuple[str, ...] | None
    # What INFO charon must show for the run: "allowed" (every call allowed),
    # "limited" (every call limited), "peeks", "reserved" (every call a
    # granted reservation), or None (not a Charon command).
    charon: str | None
    note: str


def workloads(sha: str) -> list[Workload]:
    """Every measured command, in report order; `sha` is the SCRIPT LOAD of
    bench/token_bucket.lua."""
    rand = "__rand_int__"
    generous = ("1000000", "1", "1h")
    # The one-band row's band first, then bands that are never the binding
    # one: every call allowed, each band checked and stored.
    two = (*generous, "LIMIT", "2000000", "2", "1d")
    four = (*two, "LIMIT", "3000000", "3", "7d", "LIMIT", "4000000", "4", "30d")
    # CHARON.RATE allow's limit (1000000 tokens, 1 per hour), said in
    # redis-cell's terms: a burst of 999999 and 1 per 3600 s.
    cell = ("999999", "1", "3600")
    return [
        Workload(INCR_WORKLOAD, "i", ("INCR", f"rl:i:{rand}"), "incr",
                 ("INCR", "{key}"), None,
                 "the ceiling: the cheapest write"),
        Workload(SET_WORKLOAD, "s", ("SET", f"rl:s:{rand}", "v", "PX", "60000"), "set",
                 ("SET", "{key}", "v", "PX", "60000"), None,
                 "the baseline: a string with a TTL"),
        Workload(RATE_WORKLOAD, "a", ("CHARON.RATE", f"rl:a:{rand}", *generous),
                 "charon.rate", ("CHARON.RATE", "{key}", *generous), "allowed",
                 "1000000 tokens, 1 per hour: every call allowed, on a stored bucket"),
        Workload(RATE2_WORKLOAD, "b", ("CHARON.RATE", f"rl:b:{rand}", *two),
                 "charon.rate", ("CHARON.RATE", "{key}", *two), "allowed",
                 "the band of CHARON.RATE allow and a second one (2000000 tokens, 2 per "
                 "day): every call allowed, on a stored two-band bucket"),
        Workload(RATE4_WORKLOAD, "q", ("CHARON.RATE", f"rl:q:{rand}", *four),
                 "charon.rate", ("CHARON.RATE", "{key}", *four), "allowed",
                 "the two bands above and two more (3000000 per week, 4000000 per 30 "
                 "days): every call allowed, on a stored four-band bucket"),
        Workload(RESERVE_WORKLOAD, "r",
                 ("CHARON.RESERVE", f"rl:r:{rand}", *generous, "MAXWAIT", "1000"),
                 "charon.reserve", ("CHARON.RESERVE", "{key}", *generous, "MAXWAIT", "1000"),
                 "reserved",
                 "limits of CHARON.RATE allow, MAXWAIT 1000: every call granted at once "
                 "(wait -1), on stored buckets: the allowed path of CHARON.RATE"),
        Workload("CHARON.RATE allow, new", "n",
                 ("CHARON.RATE", f"rl:n:{rand}", "1000000", "1000000", "1s"),
                 "charon.rate", None, "allowed",
                 "1000000 per second: each bucket is full (expired) again 1 ms "
                 "after its call, so every call creates one"),
        Workload("CHARON.RATE deny", "d", ("CHARON.RATE", f"rl:d:{rand}", "1", "1", "1h"),
                 "charon.rate", ("CHARON.RATE", "{key}", "1", "1", "1h"), "limited",
                 "1 token per hour, taken beforehand: every call limited"),
        Workload("CHARON.PEEK", "a", ("CHARON.PEEK", f"rl:a:{rand}"), "charon.peek",
                 None, "peeks",
                 "on the stored buckets of CHARON.RATE allow"),
        Workload(LUA_WORKLOAD, "l",
                 ("EVALSHA", sha, "1", f"rl:l:{rand}", "1000000", "1", str(HOUR_MS), "1"),
                 "evalsha", ("EVALSHA", sha, "1", "{key}", "1000000", "1", str(HOUR_MS), "1"),
                 None,
                 "bench/token_bucket.lua, limits of CHARON.RATE allow, on stored hashes"),
        Workload(FCALL_WORKLOAD, "f", ("FCALL", "charon_rate", "1", f"rl:f:{rand}", *generous),
                 "fcall", ("FCALL", "charon_rate", "1", "{key}", *generous), None,
                 f"{FUNCTION_LIBRARY} (FUNCTION LOAD), the Functions form of CHARON.RATE, "
                 "limits of CHARON.RATE allow, on stored hashes"),
        Workload(CELL_WORKLOAD, "c", ("CL.THROTTLE", f"rl:c:{rand}", *cell), "cl.throttle",
                 ("CL.THROTTLE", "{key}", *cell), "allowed",
                 "the drop-in for redis-cell (module argument CLTHROTTLE yes), the limit "
                 "of CHARON.RATE allow (a burst of 999999, 1 per 3600 s): every call "
                 "allowed, on stored buckets"),
    ]
