"""Charon's benchmark: throughput, latency and memory of CHARON.RATE on a real
server, beside SET, INCR and a Lua token bucket, plus the core's ns per call.

    bench/run            the full run (`make bench`): writes
                         bench/results/latest.md, latest.svg and latest.json
    bench/run --smoke    a few seconds, for `make test`: every step once with
                         tiny counts; fails if any command failed. It never
                         judges speed.
    bench/run --perf     also profile the server (perf record -p) at pipeline
                         32, 5 s while SET ... PX runs, then 5 s while
                         CHARON.RATE allow runs, on the same server: writes
                         latest.perf.md (and puts it in latest.md). It gives
                         each command's server time per request, in ns
                         (samples / frequency / calls, the calls counted by
                         INFO commandstats read inside perf's window), beside
                         1e9 / requests per second; then, side by side with
                         the difference, the self time per request of the 40
                         symbols that differ most (the rest summed); then
                         the inclusive time per request of a fixed list of
                         server functions (RM_OpenKey, RM_Replicate, call...)
                         from a second record with DWARF call graphs (left
                         out, saying why, if perf cannot make those).

Beside one-band CHARON.RATE it measures CHARON.RATE with 2 and 4 bands, the
Functions form (FCALL charon_rate, lua/charon.lua loaded by FUNCTION LOAD
REPLACE: a run fails if the file is missing or does not load) and CL.THROTTLE
(the module loaded with CLTHROTTLE yes), each as a ratio to one-band
CHARON.RATE allow taken within the same rounds, and CHARON.RESERVE granted
without wait the same way (its allowed path is CHARON.RATE's). Then the
CHARON.ACQUIRE step (acquire.py): 1,000 and 10,000 clients (--waiters; 50
with --smoke) waiting at once in one line, each on its own connection: how
late each held reply comes after its turn (p50/p99/max; a reply before its
turn fails the run), and used_memory per waiting client beside a client
blocked in BLPOP. The server is started with maxclients 20000 for it.

The server is the redis-7.0 row of servers/matrix.tsv (Debian's redis-server,
checked by its version), started here on a free loopback port with the
release build of the module loaded (module arguments CLTHROTTLE yes), no
persistence, pinned to CPU 0;
redis-benchmark runs on CPU 1. Each command runs once per pipeline depth per
round, interleaved (A B C ... A B C ...), so that the ratios between commands
are taken within one round, on the same machine state. Ratios from one run
are what to compare: absolute numbers move with the machine's load.

The report needs the standard library only; the chart is drawn by a pinned
matplotlib (bench/requirements.txt), which the run installs by itself, once,
into target/bench-python/ (dependencies.py).

The modules, in the order a run uses them: workload (the commands measured),
machine (the host, the checkout, subprocesses), client (RESP), server, steps
(the measured runs and the memory loads), acquire (the CHARON.ACQUIRE
lines), profile (--perf), criterion,
report and chart, then main, which bench/run calls. valgrind is the Python
half of scripts/valgrind, on the same client.
"""
