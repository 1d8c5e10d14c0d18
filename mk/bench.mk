# The benchmark suite (bench/README.md). `make bench` runs every scenario,
# bounded in time (under 15 minutes on 2 cores), writes
# bench/results/latest.json, prints the Markdown table and draws the plots.
# Pass scenario knobs in BENCH_FLAGS, e.g.
#   make bench BENCH_FLAGS='-scenarios local,wire -local.samples 200'
#   make bench BENCH_FLAGS='-cpuprofile bench/results/prof'

BENCH_FLAGS ?=
BENCH_OUT   ?= bench/results/latest.json

.PHONY: bench-build bench-table bench-plot

bench-build:
	$(GO) build -o $(BIN)/sqlsync-bench ./bench/cmd/sqlsync-bench

## bench: run the benchmarks, write $(BENCH_OUT), print the table, draw the plots.
bench: bench-build
	$(BIN)/sqlsync-bench run -out $(BENCH_OUT) $(BENCH_FLAGS)
	$(BIN)/sqlsync-bench plot -in $(BENCH_OUT) -dir $(dir $(BENCH_OUT))

## bench-table: print the table of $(BENCH_OUT) again (with browser.json merged).
bench-table: bench-build
	$(BIN)/sqlsync-bench table -in $(BENCH_OUT)

## bench-plot: redraw the plots from $(BENCH_OUT).
bench-plot: bench-build
	$(BIN)/sqlsync-bench plot -in $(BENCH_OUT) -dir $(dir $(BENCH_OUT))

## bench-mutators: the todo demo's mutator modules, AssemblyScript against Go: bytes, first use in Chromium, per-mutation cost on the coordinator.
# Writes $(BENCH_MUTATORS_OUT) and a Markdown table beside it (.md);
# bench/README.md, "Mutator modules: AssemblyScript and Go". About a minute.
BENCH_MUTATORS_OUT ?= $(dir $(BENCH_OUT))mutators.json
.PHONY: bench-mutators
bench: bench-mutators
bench-mutators: mutators wasm-bundle deps-chromium node_modules/.package-lock.json
	$(GO) build -o $(BIN)/sqlsync ./cmd/sqlsync
	$(GO) build -o $(BIN)/sqlsync-mutator-bench ./bench/cmd/sqlsync-mutator-bench
	$(NPM) run build -w js
	BENCH_MUTATORS_OUT=$(BENCH_MUTATORS_OUT) CHROMIUM=$(CHROMIUM) $(NODE) bench/mutators/bench.mjs
