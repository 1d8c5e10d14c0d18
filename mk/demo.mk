# The todo demo (demo-todo/): a React + Vite app on @sqlsync-go/client,
# built into demo-todo/dist, which `sqlsync serve` serves at / when run
# from the repository root (so `make run` serves it).
#
#   make demo-build   the wasm bundle, the package and the demo
#   make test-demo    the demo in Debian's Chromium, two people against the real coordinator
#   make demo-dev     Vite's dev server for the demo (run `make run` beside it)
#   make bench-demo   the demo timed in Chromium as a person meets it (part of make bench)

NPM      ?= npm
CHROMIUM ?= /usr/bin/chromium

.PHONY: demo-build test-demo demo-dev bench-demo

build: demo-build
test: test-demo

# npm ci only when node_modules is missing or older than the lockfile.
node_modules/.package-lock.json: package-lock.json
	$(NPM) ci --no-audit --no-fund

## demo-build: the todo demo in demo-todo/dist, with the worker and wasm bundle it serves.
demo-build: node_modules/.package-lock.json wasm-bundle
	$(NPM) run build -w js
	$(NPM) run build -w demo-todo

## test-demo: the demo driven as a person would, in two Chromium contexts.
test-demo: demo-build deps-chromium build
	$(GO) build -o $(BIN)/sqlsync-fill ./bench/cmd/sqlsync-fill
	CHROMIUM=$(CHROMIUM) $(NPM) run test:e2e -w demo-todo

## demo-dev: Vite's dev server on the demo, syncing with the coordinator of `make run`.
demo-dev: demo-build
	$(NPM) run dev -w demo-todo

## bench-demo: first visit, reload, second list, type-to-screen on the real demo in Chromium.
BENCH_DEMO_OUT ?= bench/results/demo.json
bench: bench-demo
bench-demo: demo-build deps-chromium build bin/plainsqlite.wasm bin/wasm_exec.js
	BENCH_DEMO_OUT=$(BENCH_DEMO_OUT) CHROMIUM=$(CHROMIUM) $(NODE) demo-todo/test/bench.mjs

# The benchmark's second baseline: the same SQLite on the same OPFS storage
# code, no sync (bench/browser/plainsqlite), served with Go's wasm_exec.js.
bin/plainsqlite.wasm: $(shell find bench/browser vfs internal -name '*.go' -not -name '*_test.go') go.mod go.sum
	@mkdir -p bin
	GOOS=js GOARCH=wasm $(GO) build -trimpath -ldflags="-s -w" -o $@ ./bench/browser/plainsqlite
bin/wasm_exec.js:
	@mkdir -p bin
	cp "$$($(GO) env GOROOT)/lib/wasm/wasm_exec.js" $@ 2>/dev/null || \
		cp "$$($(GO) env GOROOT)/misc/wasm/wasm_exec.js" $@

## profile-demo: a Chromium CPU profile of the demo's reload and typing, Go functions named (demo-todo/test-results/profile-*.md).
.PHONY: profile-demo
bin/sqlsync-names.wasm: $(shell find wasm client shared vfs internal -name '*.go' -not -name '*_test.go') go.mod go.sum
	GOOS=js GOARCH=wasm $(GO) build -trimpath -ldflags="-w" -o $@ ./wasm
profile-demo: demo-build deps-chromium build bin/sqlsync-names.wasm
	CHROMIUM=$(CHROMIUM) $(NODE) demo-todo/test/profile.mjs
