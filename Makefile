# sqlsync: make run starts the coordinator with the demo; make test runs
# every test. Both install or build what they need first.

GO        ?= go
BIN       := bin
DATA      ?= data
ADDR      ?= 127.0.0.1:8080
NODE      ?= node
GOFLAGS   ?=
export GOFLAGS

.PHONY: all build mutators run test test-go vet deps-go fuzz bench clean

all: build

# Each part of the project may add its own targets and prerequisites in
# mk/*.mk (the browser build, the mutators, the benchmarks).
-include mk/*.mk

## build: the sqlsync binary (coordinator and CLI) and the example mutators.
build: mutators
	$(GO) build -o $(BIN)/sqlsync ./cmd/sqlsync

## mutators: the WebAssembly mutators, built from source: the todo demo's
## in TypeScript syntax (todo.wasm, what make run serves) and in Go (todo-go.wasm).
mutators: node_modules/.package-lock.json
	@mkdir -p $(BIN)/mutators
	$(NODE) mutator/bin/sqlsync-mutator.mjs build demo-todo/mutator/mutator.ts -o $(BIN)/mutators/todo.wasm
	GOOS=wasip1 GOARCH=wasm $(GO) build -trimpath -ldflags="-s -w" -buildmode=c-shared \
		-o $(BIN)/mutators/todo-go.wasm ./demo-todo/mutator

## run: build everything and serve the demo at http://$(ADDR).
run: build
	@echo "sqlsync: serving the todo demo at http://$(ADDR) (data in ./$(DATA))"
	$(BIN)/sqlsync serve --addr $(ADDR) --data $(DATA) --mutator $(BIN)/mutators/todo.wasm

## deps-go: fetch the Go modules the build and tests need.
deps-go:
	$(GO) mod download

vet:
	$(GO) vet ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi

## test: install what the tests need and run every test.
test: deps-go vet test-go

# Go tests build the AssemblyScript mutators with the npm packages.
test-go: node_modules/.package-lock.json

# test-go runs go test -v through the skip checker (js/test/gowasm/skips.mjs,
# see docs/test-skips.md): a skip not allowed in CI fails the target like a
# failed test. It prints the package result lines, what failed packages said
# about their failures and a summary; the whole -v output is in GO_TEST_LOG.
GO_TEST_LOG ?= $(BIN)/go-test.log
test-go:
	@mkdir -p $(BIN)
	bash -o pipefail -c '$(GO) test -v -timeout 20m ./... 2>&1 | $(NODE) js/test/gowasm/skips.mjs --quiet --log $(GO_TEST_LOG)'

## fuzz: run each fuzz target for FUZZTIME (default 30s).
FUZZTIME ?= 30s
fuzz:
	$(GO) test ./shared/protocol -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME)

clean:
	rm -rf $(BIN)
