# xdpconnect. `make demo` and `make test` work on a fresh machine (as root).
SHELL     := /bin/bash
GO        ?= go
BIN       := bin/xdpconnect
PKGS      := ./...
# Short fuzzing per target in `make test` (an execution count: a time bound
# can end with a spurious "context deadline exceeded"); raise for a campaign.
FUZZTIME  ?= 150000x

.PHONY: all build deps generate lint test test-unit fuzz mutate demo bench pgo soak lab-up lab-down clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/xdpconnect
	$(GO) build -o bin/xdpconnect-bench ./cmd/xdpconnect-bench

# The Debian packages the tests and the bench use: clang and llvm (bpf2go),
# libbpf and kernel headers (the C program), tshark (capture oracles),
# nftables (loss and limits), bpftool, prometheus (promtool), masscan and
# zmap (SYN-rate peers), nginx-light (a real server), libcap2-bin and
# util-linux (setcap, setpriv), apache2-utils, wrk, nghttp2-client (ab, wrk,
# h2load as peers), ethtool, gcc (the C baselines), chromium-headless-shell
# (renders the --html reports in their tests).
DEB_PKGS := clang llvm libbpf-dev linux-libc-dev tshark iproute2 nftables bpftool prometheus masscan zmap \
            gcc nginx-light libcap2-bin util-linux apache2-utils wrk nghttp2-client ethtool chromium-headless-shell

# Installs the missing Debian packages (as root; otherwise names them) and
# downloads the Go modules, so no test starts before its tools are there.
deps:
	@missing=$$(for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q ' installed$$' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:" $$missing; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "make deps: missing Debian packages (run as root to install them):" $$missing; fi; \
	fi
	$(GO) mod download
	cd deploy/validate && $(GO) mod download

# Regenerates the committed BPF objects (needs clang); CI checks that the
# result equals what is committed.
generate:
	$(GO) generate ./bpf/... ./bench/reflector/...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)
	@# a semantic mutant whose lines the code no longer has is caught here,
	@# not at the next (hour-long) make mutate
	$(GO) run ./internal/mutate -semantic docs/semantic-mutants.txt -check

# All tests, the privileged lab tests included (they need root), then every
# fuzz target briefly. Packages run one at a time (-p 1): lab tests share the
# machine's two cores and `lab down --all` semantics, and rate assertions
# must not compete with another package's load. internal/testsum prints the
# package lines, failed tests in full, every skipped test with its reason
# and a closing count.
test: deps lint
	$(GO) build -o bin/testsum ./internal/testsum
	set -o pipefail; $(GO) test -json -count=1 -p 1 -timeout 20m $(PKGS) | bin/testsum
	cd deploy/validate && $(GO) vet ./... && $(GO) test -count=1 ./...
	$(MAKE) fuzz

test-unit:
	$(GO) test -count=1 -short $(PKGS)

fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/func //'); do \
	    echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
	    $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg; \
	  done; done

# Mutation testing (not part of `make test`; over an hour here). Operator
# mutants: gremlins mutates one operator at a time and runs the package's
# tests. Semantic mutants: internal/mutate applies each hand-written bug of
# docs/semantic-mutants.txt to a copy of the module and runs its package's
# tests (a C mutant regenerates the BPF objects first). internal/mutate
# scores both, takes out the equivalent mutants listed with their reasons,
# prints every survivor and fails under 90 % caught in any package.
# MUTATE_PKGS=tcp (for one) or MUTATE_SEMANTIC= (operators only) narrow it.
# The root package (the library's options and session) has semantic mutants
# only: gremlins given "." gathers coverage over the whole module (the CLI
# suite included) and mutates every package; its logic of numbers lives in
# report/.
# MUTATE_DIFF=REF mutates only the lines changed since REF: fastpath has about
# 1,050 operator mutants and its tests take a minute each, 8 hours or more
# for a whole run here, so a change to the engine is scored by its own lines
# (internal/mutate/gitdiff puts gremlins' view of the diff right).
GREMLINS        ?= github.com/go-gremlins/gremlins/cmd/gremlins@v0.6.0
MUTATE_PKGS     ?= tcp l7 fastpath report metrics route xsk bpf
SEMANTIC_PKGS   ?= $(MUTATE_PKGS) .
MUTATE_SEMANTIC ?= docs/semantic-mutants.txt
mutate:
	GOBIN=$(CURDIR)/bin $(GO) install $(GREMLINS)
	@mkdir -p bin/mutate
	@set -e; args=; for p in $(MUTATE_PKGS); do \
	  n=$$(echo $$p | tr / _); \
	  echo "gremlins ./$$p (log: bin/mutate/$$n.log)"; \
	  diff=; if [ -n "$(MUTATE_DIFF)" ]; then diff="--diff $(MUTATE_DIFF)"; fi; \
	  MUTATE_PKG=$$p PATH=$(CURDIR)/internal/mutate/gitdiff:$$PATH GOFLAGS=-count=1 ./bin/gremlins unleash --workers 2 --timeout-coefficient 10 $$diff \
	    --exclude-files 'linktest/' --exclude-files '_bpfe[bl]\.go$$' -o bin/mutate/$$n.json ./$$p > bin/mutate/$$n.log 2>&1; \
	  args="$$args $$p=bin/mutate/$$n.json"; \
	done; \
	sem=; if [ -n "$(MUTATE_SEMANTIC)" ]; then sem="-semantic $(MUTATE_SEMANTIC) -only $$(echo $(SEMANTIC_PKGS) | tr ' ' ,)"; fi; \
	$(GO) run ./internal/mutate -equivalents docs/mutation-equivalents.txt $$sem $$args

demo: build
	./$(BIN) demo

# The micro-benchmarks and the engine's ceiling are compiled with the
# profile the binary is built with (PGO below), so they measure its code.
bench: build
	$(GO) test -run='^$$' -bench=. -benchmem -pgo=$(CURDIR)/$(PGO) ./tcp/ ./xsk/ ./fastpath/
	./bin/xdpconnect-bench --tool $(BIN)

# Profile-guided optimization: go build takes cmd/xdpconnect/default.pgo
# (a CPU profile, the build's input like its sources; Go's documentation
# has it committed). It is the engine's ceiling rows (RST, FIN, requests;
# docs/benchmarks.md), whose code paths are the engine's in every run.
# Regenerate it after changing the engine: make pgo.
PGO := cmd/xdpconnect/default.pgo
pgo:
	@mkdir -p bin
	$(GO) test -c -o bin/fastpath.test ./fastpath/
	cd fastpath && ../bin/fastpath.test -test.run='^$$' -test.bench='BenchmarkEngineCeiling/^(rst|fin|request)$$/peer-on-worker-core' \
	    -test.benchtime=3000000x -test.cpuprofile=$(CURDIR)/bin/pgo-cpu.prof
	$(GO) tool pprof -proto bin/fastpath.test bin/pgo-cpu.prof > $(PGO)

soak: build
	./bin/xdpconnect-bench --tool $(BIN) --scenario soak --out bench/results/soak

lab-up: build
	./$(BIN) lab up

lab-down: build
	./$(BIN) lab down

clean:
	rm -rf bin
