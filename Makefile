# Parley: build, run, test, benchmark. `make run` and `make test` are the two
# set-up commands; both install what they need.

GO       ?= go
BIN      := bin
VERSION  := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X github.com/parleyhq/parley/cmd/internal/node.Version=$(VERSION)
BENCHTIME ?= 2s

.PHONY: all build run cluster test vet deps deps-go deps-sys deps-browser bench fuzz clean tools

all: build

## build: the parley binary and the stock plugins (bin/plugins, loaded by default)
build: deps-go plugins-stock
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/parley ./cmd/parley

## run: build and start one local node on the defaults (development mode)
run: build
	./$(BIN)/parley serve --dev

## cluster: start a local three-node cluster (node i: HTTP 7i70, WebTransport 7i71,
## media 7i72, Raft 7i73; data in $(CLUSTER_DIR)/n1..n3, logs beside) in the
## foreground and print how to reach it; Ctrl-C stops it (SIGINT: no drain,
## so the same command starts it again with its state)
CLUSTER_DIR ?= $(or $(TMPDIR),tmp)/parley-cluster
cluster: build
	@set -e; dir="$(CLUSTER_DIR)"; mkdir -p "$$dir"; \
	[ -f "$$dir/n1/cluster.secret" ] || ./$(BIN)/parley cluster init --data-dir "$$dir/n1" >/dev/null; \
	secret=$$(cat "$$dir/n1/cluster.secret"); \
	peers=n1=127.0.0.1:7173,n2=127.0.0.1:7273,n3=127.0.0.1:7373; \
	for i in 1 2 3; do \
		PARLEY_CLUSTER_SECRET="$$secret" ./$(BIN)/parley serve --dev --data-dir "$$dir/n$$i" --node-id n$$i \
			--http-addr 127.0.0.1:7$${i}70 --webtransport-addr 127.0.0.1:7$${i}71 --media-port 7$${i}72 \
			--raft-addr 127.0.0.1:7$${i}73 --peers $$peers >"$$dir/n$$i.log" 2>&1 & \
	done; \
	sleep 2; \
	echo "Parley cluster of three nodes (data and logs in $$dir):"; \
	for i in 1 2 3; do echo "  n$$i  http://127.0.0.1:7$${i}70  signal ws://127.0.0.1:7$${i}70/v1/signal  raft 127.0.0.1:7$${i}73"; done; \
	echo "Open any node's page: a room is hosted where it is first joined; the others redirect to it."; \
	echo "Status:  ./$(BIN)/parley cluster status --data-dir $$dir/n1 --raft-addr 127.0.0.1:7173"; \
	echo "Token:   ./$(BIN)/parley token --data-dir $$dir/n1 --room demo --identity alice"; \
	echo "Stop with Ctrl-C."; \
	wait

## test: vet and run every test (integration included) with the race detector
test: deps vet
	$(GO) test -race -count=1 -timeout 15m ./...
	@# allocation assertions are skipped under -race (its runtime allocates): run them plainly
	$(GO) test -count=1 -run 'NotAllocate' ./...

vet: deps-go
	$(GO) vet ./...

## deps: fetch Go modules and the system tools tests use
deps: deps-go deps-sys deps-browser

deps-go:
	$(GO) mod download

deps-sys:
	@command -v wat2wasm >/dev/null 2>&1 || { \
		echo "installing wabt (wat2wasm) for the WebAssembly-text plugin test"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq wabt >/dev/null; }

# deps-browser: Debian's Chromium for the real-browser tests (cmd/internal/browsertest)
deps-browser:
	@{ command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; } || { \
		echo "installing chromium and chromium-driver for the browser tests"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; }

## bench: forwarding and plugin benchmarks (figures go to docs/benchmarks.md)
bench: deps-go
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./core/sfu/ ./plugins/...

## fuzz: run each fuzz target briefly (FUZZTIME=30s for longer)
FUZZTIME ?= 10s
fuzz: deps-go
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME) ./core/protocol/
	$(GO) test -run '^$$' -fuzz FuzzVerify -fuzztime $(FUZZTIME) ./core/devtoken/
	$(GO) test -run '^$$' -fuzz FuzzOfferedTracks -fuzztime $(FUZZTIME) ./core/sfu/

clean:
	rm -rf $(BIN)

-include plugins/plugins.mk
