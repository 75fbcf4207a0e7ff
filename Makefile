# Parley: build, run, test, benchmark. `make run` and `make test` are the two
# set-up commands; both install what they need.

GO       ?= go
BIN      := bin
VERSION  := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X github.com/parleyhq/parley/cmd/internal/node.Version=$(VERSION)
BENCHTIME ?= 2s

.PHONY: all build run test vet deps deps-go deps-sys deps-browser bench fuzz clean tools

all: build

## build: the parley binary and the stock plugins (bin/plugins, loaded by default)
build: deps-go plugins-stock
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/parley ./cmd/parley

## run: build and start one local node on the defaults (development mode)
run: build
	./$(BIN)/parley serve --dev

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
