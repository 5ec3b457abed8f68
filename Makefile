# Tally: the two commands that matter are `make run` and `make test`.
# Both install what is missing on a fresh Debian machine (apt, as root or via sudo).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

SWIFT          ?= swift
CONFIG         ?= debug
# Release builds (the bench targets) link the Swift runtime and Foundation into the binary, as
# Hummingbird's deployment template does: `replay --help` then takes 12-13 ms rather than 18-19
# and tally-server listens sooner (BENCHMARKS.md, "Static release builds").
RELEASE        ?= -c release --static-swift-stdlib
DATA_DIR       ?= $(CURDIR)/.tally-dev/data
# prometheus: its promtool checks /metrics in the tests (the server itself is never started).
# chromium: the dashboard's browser test drives it headless (TALLY_TEST_CHROMIUM).
APT_PACKAGES   := liblz4-dev lz4 libpq-dev pkgconf postgresql prometheus chromium
# Each package is probed by a file it installs, so `deps` is a no-op when all are present.
APT_PROBES     := /usr/include/lz4frame.h /usr/bin/lz4 /usr/include/postgresql/libpq-fe.h \
                  /usr/bin/pkg-config /usr/lib/postgresql/15/bin/initdb /usr/bin/promtool /usr/bin/chromium
# The tests' Python tools, in a virtual environment under .build (never the system's packages).
VENV           := $(CURDIR)/.build/venv
PIP_PACKAGES   := prometheus-client schemathesis openapi-spec-validator websocket-client
SUDO           := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# The PostgreSQL 15 server that `make test` starts for the tests (loopback only, trust auth).
PG_TEST_PORT   ?= 55432
PG_TEST_DIR    ?= $(CURDIR)/.build/postgres-test
PG_TEST_SCRIPT := $(CURDIR)/scripts/postgres-test-server.sh
# Tests running at once in the one test process. Unbounded, every test starts at once and the
# two cores' task pool starves the ones that wait on time limits: 406 tests took 302 s with
# 22 time-limit failures; 4 at once took 121 s.
TEST_WIDTH     ?= 4
# The test build keeps the index store although no editor reads it here: on Linux SwiftPM
# discovers the tests from it (`--disable-index-store` fails at all-discovered-tests.swift).

.PHONY: help deps venv build run test pg-test-start pg-test-stop bench bench-api bench-scale bench-micro clean

help:
	@echo "make run    install what is missing, build, start tally-server on the embedded log"
	@echo "make test   install what is missing, build, run every test"
	@echo "make pg-test-start / pg-test-stop  the tests' PostgreSQL on 127.0.0.1:$(PG_TEST_PORT), by hand"
	@echo "make bench  release build, then the replay bench commands (figures as JSON)"
	@echo "make bench-api    release tally-server under wrk on loopback"
	@echo "make bench-scale  the scale table: logs of 1 M, 10 M, 100 M events (built once in SCALE_DIR)"
	@echo "make bench-micro  package-benchmark suite in Benchmarks/ (separate package, long first build)"

## deps: install the apt packages that are missing (liblz4, lz4 CLI, libpq, PostgreSQL).
# Nothing here starts a server: the tests run their own on PG_TEST_PORT, never Debian's cluster on 5432.
deps:
	@missing=0; for f in $(APT_PROBES); do [ -e "$$f" ] || missing=1; done; \
	if [ "$$missing" = 1 ]; then \
	  echo "==> installing apt packages: $(APT_PACKAGES)"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(APT_PACKAGES); \
	fi

## venv: the tests' Python packages (PIP_PACKAGES) in VENV; python3-venv from apt when missing.
# A venv copied from another directory still runs its scripts from there: it is made anew.
venv:
	@"$(VENV)/bin/python" -c 'import sys; sys.exit(sys.prefix != "$(VENV)")' 2>/dev/null || rm -rf "$(VENV)"
	@# Its python finds the copy's prefix, but its scripts' #! lines still name the original.
	@[ ! -e "$(VENV)/bin/pip" ] || head -1 "$(VENV)/bin/pip" | grep -qx '#!$(VENV)/bin/python3\{0,1\}' || rm -rf "$(VENV)"
	@[ -x "$(VENV)/bin/python" ] || python3 -m venv "$(VENV)" 2>/dev/null || { \
	  echo "==> installing apt package python3-venv"; rm -rf "$(VENV)"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-venv; \
	  python3 -m venv "$(VENV)"; }
	@[ "$$(cat "$(VENV)/.packages" 2>/dev/null)" = "$(PIP_PACKAGES)" ] || { \
	  echo "==> pip install into $(VENV): $(PIP_PACKAGES)"; \
	  "$(VENV)/bin/pip" install -q $(PIP_PACKAGES) && echo "$(PIP_PACKAGES)" > "$(VENV)/.packages"; }

build: deps
	$(SWIFT) build -c $(CONFIG)

# A development secret, made once and kept in .tally-dev so that printed tokens stay valid.
HOST           ?= 127.0.0.1
PORT           ?= 8080
DEV_SECRET     := $(CURDIR)/.tally-dev/jwt-secret
DEV_SIGNING_KEY := $(CURDIR)/.tally-dev/signing-key
# Browser frontends on the usual local dev-server ports may call the development server
# (unless TALLY_CORS_ORIGINS is set); production has no CORS unless configured.
DEV_CORS_ORIGINS ?= http://localhost:3000,http://127.0.0.1:3000,http://localhost:5173,http://127.0.0.1:5173
run: deps
	$(SWIFT) build -c $(CONFIG) --product tally-server
	@mkdir -p "$(DATA_DIR)" "$(dir $(DEV_SECRET))"
	@[ -s "$(DEV_SECRET)" ] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$(DEV_SECRET)"
	@# The tree-head signing key: any 32 random bytes are an Ed25519 seed (64 hex digits, as `replay keygen` writes).
	@[ -s "$(DEV_SIGNING_KEY)" ] || (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$(DEV_SIGNING_KEY)")
	@bin=$$($(SWIFT) build -c $(CONFIG) --show-bin-path)/tally-server; \
	export TALLY_JWT_SECRET=$$(cat "$(DEV_SECRET)"); \
	export TALLY_CORS_ORIGINS="$${TALLY_CORS_ORIGINS:-$(DEV_CORS_ORIGINS)}"; \
	export TALLY_SIGNING_KEY="$${TALLY_SIGNING_KEY:-$(DEV_SIGNING_KEY)}"; \
	echo "signed tree heads every 60 s into $(DATA_DIR)/tree-heads.jsonl with $$TALLY_SIGNING_KEY"; \
	echo "tally-server on http://$(HOST):$(PORT) (embedded log in $(DATA_DIR)); CORS for $$TALLY_CORS_ORIGINS; tokens valid 24 h:"; \
	for pair in user:alice service:ai-worker admin:admin auditor:auditor; do \
	  echo "  $${pair%%:*} ($${pair#*:}): $$("$$bin" token --role $${pair%%:*} --subject $${pair#*:})"; \
	done; \
	echo "  e.g. curl -H 'Authorization: Bearer <user token>' http://$(HOST):$(PORT)/api/v1/system/stats"; \
	echo "  more: $$bin token --role user --subject <id>   (with TALLY_JWT_SECRET=\$$(cat $(DEV_SECRET)))"; \
	exec "$$bin" serve --data-dir "$(DATA_DIR)" --host "$(HOST)" --port "$(PORT)"

# `swift test` builds its own configuration; --parallel runs suites in worker processes.
# The crash-recovery rounds are part of the normal run (TALLY_CRASH_ROUNDS, default 20).
# A run that executes no test is a failure, not a pass: the summary line must count some.
# The tests get a PostgreSQL 15 server in PG_TEST_DIR on 127.0.0.1:PG_TEST_PORT
# (TALLY_TEST_POSTGRES_URL), stopped when the run ends, whether it passes, fails or is interrupted;
# TALLY_TEST_POSTGRES_SCRIPT starts private instances (start DIR PORT / stop DIR / destroy DIR).
# The /metrics tests run promtool (TALLY_TEST_PROMTOOL) and the venv's Python with
# prometheus-client (TALLY_TEST_PYTHON); the OpenAPI tests run openapi-spec-validator
# (TALLY_TEST_OPENAPI_VALIDATOR) and schemathesis (TALLY_TEST_SCHEMATHESIS) from the venv; the
# dashboard's browser test runs Chromium (TALLY_TEST_CHROMIUM) through the venv's websocket-client.
# Without them those tests fail, they never skip.
test: deps venv
	$(SWIFT) build --build-tests
	@mkdir -p .build
	@trap '"$(PG_TEST_SCRIPT)" stop "$(PG_TEST_DIR)"' EXIT; trap 'exit 130' INT; trap 'exit 143' TERM; \
	url=$$("$(PG_TEST_SCRIPT)" start "$(PG_TEST_DIR)" $(PG_TEST_PORT)); \
	echo "==> PostgreSQL for the tests: $$url"; \
	export TALLY_TEST_POSTGRES_URL="$$url" TALLY_TEST_POSTGRES_SCRIPT="$(PG_TEST_SCRIPT)"; \
	export TALLY_TEST_PROMTOOL="$$(command -v promtool || true)" TALLY_TEST_PYTHON="$(VENV)/bin/python"; \
	export TALLY_TEST_OPENAPI_VALIDATOR="$(VENV)/bin/openapi-spec-validator" TALLY_TEST_SCHEMATHESIS="$(VENV)/bin/st"; \
	export TALLY_TEST_CHROMIUM="$${TALLY_TEST_CHROMIUM:-/usr/bin/chromium}"; \
	export SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH="$${SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH:-$(TEST_WIDTH)}"; \
	echo "$(SWIFT) test --skip-build --parallel (at most $$SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH tests at once) 2>&1 | tee .build/test-output.log"; \
	$(SWIFT) test --skip-build --parallel 2>&1 | tee .build/test-output.log
	@grep -Eq 'Test run with [1-9][0-9]* tests? .*passed' .build/test-output.log \
	  || { echo "make test: no Swift Testing test ran, or the run did not pass" >&2; exit 1; }

# The tests' server by hand, e.g. to run one suite: export the printed URL, then `swift test --filter …`.
pg-test-start: deps
	@url=$$("$(PG_TEST_SCRIPT)" start "$(PG_TEST_DIR)" $(PG_TEST_PORT)); \
	echo "PostgreSQL for the tests: $$url (stop with make pg-test-stop)"; \
	echo "  export TALLY_TEST_POSTGRES_URL=$$url TALLY_TEST_POSTGRES_SCRIPT=$(PG_TEST_SCRIPT)"

pg-test-stop:
	@"$(PG_TEST_SCRIPT)" stop "$(PG_TEST_DIR)"

BENCH_EVENTS ?= 2000000
bench: deps
	$(SWIFT) build $(RELEASE) --product replay
	@bin=$$($(SWIFT) build $(RELEASE) --show-bin-path)/replay; dir=$$(mktemp -d); \
	echo "== durable append, group commit (256 appenders x 64)"; \
	"$$bin" bench append --log "$$dir/a" --fsync always --appenders 256 --batch 64 --events $(BENCH_EVENTS); \
	echo "== durable single-event appends (256 appenders x 1)"; \
	"$$bin" bench append --log "$$dir/b" --fsync always --appenders 256 --batch 1 --events 200000; \
	echo "== bulk append (fsync never)"; \
	"$$bin" bench append --log "$$dir/c" --fsync never --appenders 256 --batch 64 --events $(BENCH_EVENTS); \
	echo "== sequential read of the bulk log"; \
	"$$bin" bench read --log "$$dir/c"; \
	rm -rf "$$dir"

# HTTP load on loopback with wrk (installed when missing); figures in BENCHMARKS.md.
bench-api: deps
	@command -v wrk >/dev/null || { $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends wrk curl; }
	$(SWIFT) build $(RELEASE) --product tally-server
	Benchmarks/api/run.sh "$$($(SWIFT) build $(RELEASE) --show-bin-path)/tally-server"

# The scale table (BENCHMARKS.md): the logs are built once into SCALE_DIR and kept there
# (the 100 M-event log is about 6 GB); never part of `make test`.
SCALE_DIR    ?= $(CURDIR)/.build/scale
SCALE_EVENTS ?= 1000000 10000000 100000000
bench-scale: deps
	@command -v curl >/dev/null && [ -x /usr/bin/time ] || { $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends curl time; }
	$(SWIFT) build $(RELEASE) --product replay
	$(SWIFT) build $(RELEASE) --product tally-server
	bin=$$($(SWIFT) build $(RELEASE) --show-bin-path); \
	Benchmarks/scale/run.sh "$$bin/replay" "$$bin/tally-server" "$(SCALE_DIR)" $(SCALE_EVENTS)

bench-micro: deps
	cd Benchmarks && $(SWIFT) package --disable-sandbox benchmark --format markdown --no-progress

clean:
	@[ ! -x "$(PG_TEST_SCRIPT)" ] || "$(PG_TEST_SCRIPT)" stop "$(PG_TEST_DIR)"
	rm -rf .build .tally-dev
