# The browser client: the Go wasm bundle, the npm package @sqlsync-go/client
# (js/), and their tests in Node and in Debian's Chromium.
#
#   make wasm-bundle    js/dist/sqlsync.wasm (+ .gz, .br) and js/build/wasm_exec.js
#   make js-package     the npm package in js/dist (needs npm ci)
#   make test-browser   node tests, Go wasm tests in Chromium, end-to-end tests
#   make bench-browser  cold start and mutate latency in Chromium (report only)
#   make bench-mutator-browser  a WebAssembly mutator's overhead per mutation in Chromium
#   make size-report    wasm bundle sizes, written into the READMEs

NPM       ?= npm
NODE      ?= node
CHROMIUM  ?= /usr/bin/chromium
WASM_OUT  := js/dist/sqlsync.wasm
GOTEST_WASM := vfs/opfs vfs/idbstore shared/pendinglog/idblog wasm/jsmutator
WASM_VET  := ./wasm/... ./client/ ./vfs/... ./shared/pendinglog/... ./shared/mutatorhost/...
# The mutators wasm/jsmutator's tests run in Chromium, built from source:
# name:package for Go, name:entry for AssemblyScript (built by the SDK's
# command, mutator/bin/sqlsync-mutator.mjs, with the npm packages).
TEST_MUTATORS := full:shared/wasmhost/testdata/full todo:demo-todo/mutator sandbox:wasm/jsmutator/testdata/sandbox
TEST_AS_MUTATORS := full-as:shared/wasmhost/testdata/full-as/full.ts
TEST_MUTATORS_DIR := js/build/gotest/mutators

.PHONY: wasm-bundle js-package deps-npm deps-chromium vet-wasm test-browser \
	test-js-node test-gowasm test-e2e bench-browser size-report test-mutators bench-mutator-browser

build: wasm-bundle
test: test-browser

## wasm-bundle: the Go replica for the browser worker, size-optimised and pre-compressed.
wasm-bundle:
	@mkdir -p js/dist js/build
	GOOS=js GOARCH=wasm $(GO) build -trimpath -ldflags="-s -w" -o $(WASM_OUT) ./wasm
	cp "$$($(GO) env GOROOT)/lib/wasm/wasm_exec.js" js/build/wasm_exec.js 2>/dev/null || \
		cp "$$($(GO) env GOROOT)/misc/wasm/wasm_exec.js" js/build/wasm_exec.js
	$(NODE) js/scripts/compress.mjs $(WASM_OUT)

## deps-npm: install the npm packages from package-lock.json.
deps-npm:
	$(NPM) ci --no-audit --no-fund

## deps-chromium: Debian's Chromium for the browser tests.
deps-chromium:
	@command -v chromium >/dev/null 2>&1 || test -x $(CHROMIUM) || \
		(apt-get update && apt-get install -y chromium)

## js-package: build @sqlsync-go/client (js/dist) with its worker and types.
js-package: deps-npm wasm-bundle
	$(NPM) run build -w js

vet-wasm:
	GOOS=js GOARCH=wasm $(GO) vet $(WASM_VET)

## test-browser: the package's Node tests, the Go stores in Chromium, the end-to-end suite.
test-browser: vet-wasm test-js-node test-gowasm test-e2e

test-js-node: js-package
	$(NPM) test -w js

test-gowasm: js-package deps-chromium test-mutators
	$(NODE) --test js/test/gowasm/skips.test.mjs
	@mkdir -p js/build/gotest
	for p in $(GOTEST_WASM); do \
		GOOS=js GOARCH=wasm $(GO) test -c -o js/build/gotest/$$(basename $$p).test.wasm ./$$p || exit 1; \
	done
	GOWASM_DATA=$(TEST_MUTATORS_DIR) $(NODE) js/test/gowasm/run.mjs js/build/gotest/*.test.wasm

# test-mutators: the WebAssembly mutators the Go tests in Chromium load.
test-mutators: node_modules/.package-lock.json
	@mkdir -p $(TEST_MUTATORS_DIR)
	for m in $(TEST_MUTATORS); do \
		GOOS=wasip1 GOARCH=wasm $(GO) build -trimpath -ldflags="-s -w" -buildmode=c-shared \
			-o $(TEST_MUTATORS_DIR)/$${m%%:*}.wasm ./$${m#*:} || exit 1; \
	done
	for m in $(TEST_AS_MUTATORS); do \
		$(NODE) mutator/bin/sqlsync-mutator.mjs build $${m#*:} -o $(TEST_MUTATORS_DIR)/$${m%%:*}.wasm || exit 1; \
	done

## bench-mutator-browser: a WebAssembly mutator's overhead per mutation in Chromium (wasm/jsmutator), vs the same SQL run directly.
BENCH_MUTATOR_FLAGS ?= -test.benchtime=5000x -test.count=5
# Needs only the npm packages (installed if missing), Go's wasm_exec.js and the test mutators.
bench-mutator-browser: deps-chromium test-mutators
	@test -d node_modules/playwright-core || $(NPM) ci --no-audit --no-fund
	@mkdir -p js/build/gotest/bench
	cp "$$($(GO) env GOROOT)/lib/wasm/wasm_exec.js" js/build/wasm_exec.js 2>/dev/null || \
		cp "$$($(GO) env GOROOT)/misc/wasm/wasm_exec.js" js/build/wasm_exec.js
	GOOS=js GOARCH=wasm $(GO) test -c -o js/build/gotest/bench/jsmutator.test.wasm ./wasm/jsmutator
	GOWASM_DATA=$(TEST_MUTATORS_DIR) GOWASM_ARGS="-test.run=^$$ -test.bench=Mutation $(BENCH_MUTATOR_FLAGS)" \
		$(NODE) js/test/gowasm/run.mjs js/build/gotest/bench/jsmutator.test.wasm
	GOWASM_DATA=$(TEST_MUTATORS_DIR) GOWASM_ARGS="-test.run=^$$ -test.bench=Start|Compile -test.benchtime=20x" \
		$(NODE) js/test/gowasm/run.mjs js/build/gotest/bench/jsmutator.test.wasm

test-e2e: js-package deps-chromium build test-mutators
	$(NODE) js/scripts/build.mjs --tests
	CHROMIUM=$(CHROMIUM) $(NPM) run test:e2e -w js

## bench-browser: cold start and mutate p50/p99 in Chromium on OPFS and IndexedDB.
bench-browser: js-package deps-chromium build
	$(NODE) js/scripts/build.mjs --tests
	CHROMIUM=$(CHROMIUM) $(NODE) js/test/e2e/bench.mjs

## size-report: raw and compressed size of the wasm bundle, into js/README.md and README.md.
size-report: wasm-bundle js-package
	GO_VERSION="$$($(GO) env GOVERSION)" $(NODE) js/scripts/size-report.mjs --write
