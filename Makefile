# Charon: `make run` starts Redis with the module loaded; `make test` runs
# every test. Both install what is missing first.

SHELL := /bin/bash
CARGO ?= cargo
MODULE := target/release/libcharon.so
# Debian packages: bindgen needs libclang; the redis-7.0 row of the server
# matrix (and `make run`) is Debian's redis-server.
DEBIAN_PACKAGES := libclang-dev redis-server
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test build deps servers lint unit integration lint-dockerfile clean

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

test: deps servers lint build unit lint-dockerfile integration

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --release --all-targets -- -D warnings

unit:
	$(CARGO) test --release --locked --lib --test core_model --test dockerfile_pins

lint-dockerfile:
	scripts/lint-dockerfile

# The integration suite once per server of the matrix (CHARON_SERVERS=a,b
# for a subset), all against the one release build of the module.
integration: build servers
	@scripts/servers list > .servers/list.tsv
	@tab=$$(printf '\t'); \
	while IFS=$$tab read -r name version bin cli; do \
	  echo "== integration suite on $$name ($$version): $$bin"; \
	  CHARON_SERVER_NAME=$$name CHARON_SERVER_VERSION=$$version \
	  CHARON_SERVER_BIN=$$bin CHARON_CLI_BIN=$$cli \
	  $(CARGO) test --release --locked --test integration -- --nocapture </dev/null || exit 1; \
	done < .servers/list.tsv

clean:
	$(CARGO) clean
	rm -rf .servers
