# Strata: the two commands are `make demo` and `make test`.
GO      ?= go
BIN     := $(CURDIR)/bin
PKGS    := ./...
export GOFLAGS ?= -buildvcs=false

.PHONY: all deps build test unit demo bench lint clean

all: build

## deps: install the system packages the tests and the demo need (idempotent)
deps:
	@./scripts/deps.sh

## build: build every binary into ./bin (static: strata-agent runs as a
## ramdisk's /init, with no C library beside it)
build:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -o $(BIN)/ ./cmd/...
	CGO_ENABLED=0 $(GO) build -ldflags '-s -w' -o $(BIN)/strata-agent ./cmd/strata-agent  # smaller ramdisk

## test: everything CI runs (unit, integration with real clients, end-to-end)
test: deps build lint
	$(GO) test -race -timeout 20m $(PKGS)

## demo: the most complete end-to-end scenario the project can run so far
demo: deps build
	@./scripts/demo.sh

## bench: benchmarks (numbers go in the closing notes)
bench: deps build
	$(GO) test -p 1 -run '^$$' -bench . -benchtime 1x -timeout 60m $(PKGS)

## lint: gofmt and go vet
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

clean:
	rm -rf $(BIN)
