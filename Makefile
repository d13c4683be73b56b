# Charon: `make run` starts Redis with the module loaded; `make test` runs
# every test. Both install what is missing first.

SHELL := /bin/bash
CARGO ?= cargo
# Debian packages: bindgen needs libclang; the redis-7.0 row of the server
# matrix (and `make run`) is Debian's redis-server; the fuzzers build with g++.
DEBIAN_PACKAGES := libclang-dev redis-server g++
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# The module with CHARON.TESTPANIC, to prove panic containment; built apart
# so it never replaces the release module.
PANIC_MODULE := target/panic/release/libcharon.so
CARGO_FUZZ_VERSION := 0.13.2
FUZZ_SECONDS ?= 60
FUZZ_TEST_SECONDS ?= 8

.PHONY: run test build deps servers lint unit integration distributed hostile script bench-unit \
	lint-dockerfile build-panic fuzz-tools fuzz fuzz-short soak valgrind \
	bench bench-smoke clean

run: deps build
	redis-server redis.conf

build:
	$(CARGO) build --release --locked

deps:
	@missing=""; \
	for package in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$package 2>/dev/null | grep -q "ok installed" || missing="$$missing $$package"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# Pinned server binaries (servers/matrix.tsv), verified by sha256 and version
# before any test runs.
servers: deps
	scripts/servers fetch

test: deps servers lint build unit bench-unit lint-dockerfile integration script distributed hostile fuzz-short bench-smoke

lint:
	$(CARGO) fmt --all -- --check
	cd fuzz && $(CARGO) fmt -- --check
	$(CARGO) clippy --locked --release --all-targets -- -D warnings

unit:
	$(CARGO) test --release --locked --lib --test core_model --test core_bands --test core_reserve --test dockerfile_pins

lint-dockerfile:
	scripts/lint-dockerfile

# Runs test target $(1) once per server of the matrix (CHARON_SERVERS=a,b for
# a subset), all against the one release build of the module.
define on_each_server
	@scripts/servers list > .servers/list.tsv
	@tab=$$(printf '\t'); \
	while IFS=$$tab read -r name version bin cli; do \
	  echo "== $(1) suite on $$name ($$version): $$bin"; \
	  export CHARON_SERVER_NAME=$$name CHARON_SERVER_VERSION=$$version \
	    CHARON_SERVER_BIN=$$bin CHARON_CLI_BIN=$$cli; \
	  $(CARGO) test --release --locked --test $(1) -- --nocapture </dev/null || exit 1; \
	  $(2) \
	done < .servers/list.tsv
endef

integration: build servers
	$(call on_each_server,integration,)

# The Redis Functions library (lua/charon.lua) alone and beside the module:
# one table of examples, and differential runs against the module.
script: build servers
	$(call on_each_server,script,)

# Cluster, replication chains, failover and crash recovery.
distributed: build servers
	$(call on_each_server,distributed,)

# Hostile input, ACL, panic containment (with the test-panic module).
hostile: build build-panic servers
	$(call on_each_server,hostile,CHARON_MODULE=$(CURDIR)/$(PANIC_MODULE) $(CARGO) test --release --locked --test hostile panic -- --nocapture </dev/null || exit 1;)

build-panic:
	$(CARGO) build --release --locked --features test-panic --target-dir target/panic

fuzz-tools:
	@$(CARGO) fuzz --version 2>/dev/null | grep -qx "cargo-fuzz $(CARGO_FUZZ_VERSION)" || \
	  $(CARGO) install cargo-fuzz --version $(CARGO_FUZZ_VERSION) --locked

# Every fuzz target for FUZZ_SECONDS each (make test: FUZZ_TEST_SECONDS).
fuzz: deps fuzz-tools
	scripts/fuzz $(FUZZ_SECONDS)

fuzz-short: deps fuzz-tools
	scripts/fuzz $(FUZZ_TEST_SECONDS)

# 50 connections for 60 s over 100,000 short-lived buckets: no errors, and
# memory back near its baseline once they expired.
soak: build
	$(CARGO) test --release --locked --test hostile -- --ignored soak --nocapture

# A representative workload with the server under valgrind: no bytes
# definitely lost in the module.
valgrind: build-panic servers
	@dpkg-query -W -f='$${Status}' valgrind 2>/dev/null | grep -q "ok installed" || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends valgrind; }
	CHARON_MODULE=$(CURDIR)/$(PANIC_MODULE) scripts/valgrind valkey-8.1

# Throughput, latency and memory of CHARON.RATE beside SET, INCR and a Lua
# token bucket on the pinned Redis 7.0, and the core's criterion
# micro-benchmarks: bench/results/latest.md, .svg and .json (a few minutes).
bench: deps build
	bench/run

# The benchmark package's own unit tests (report code), no server needed.
bench-unit:
	python3 -m unittest discover -s bench -p 'test_*.py'

# The benchmark harness end to end in seconds (part of make test); it checks
# that every command ran without an error and never judges speed.
bench-smoke: deps build
	bench/run --smoke

clean:
	$(CARGO) clean
	rm -rf .servers fuzz/target
