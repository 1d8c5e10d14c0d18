# Fuzzing of every decoder reachable from the network (docs/security.md):
# `make test` runs each such fuzz target for a short, bounded time;
# `make fuzz-long` runs every fuzz target for longer, on demand.
#
#   make test-fuzz                      network-reachable targets, FUZZTIME_CI each
#   make fuzz-long FUZZTIME_LONG=1h     every target, FUZZTIME_LONG each
#   make fuzz-list                      the targets found, and which test-fuzz runs
#
# Targets are found, not listed: every `func FuzzXxx` in a _test.go file
# is run unless FUZZ_NOT_NETWORK names it, so a new decoder's fuzz target
# is covered as soon as it exists, wherever its package moves. Today that
# is the protocol frame decoder, the coordinator's frame handling and token
# verification, a replica applying diffs, and the mutator host's checks of
# modules and requests (a replica runs the module its coordinator serves).
# A crash found is saved under the package's testdata/fuzz and replayed by
# plain `go test` from then on.

FUZZTIME_CI   ?= 6s
FUZZTIME_LONG ?= 10m

# Fuzz targets whose input cannot come from the network, and why:
#   FuzzDecodeResponse  the guest SDK decoding its own host's answers
FUZZ_NOT_NETWORK ?= FuzzDecodeResponse

# Prints "dir:FuzzName" for every fuzz target in the tree.
FUZZ_FIND = grep -rnoE --include='*_test.go' --exclude-dir=node_modules \
	--exclude-dir=testdata --exclude-dir=.git '^func Fuzz[A-Za-z0-9_]*\(' . | \
	sed -E 's|^(.*)/[^/]*_test\.go:[0-9]+:func (Fuzz[A-Za-z0-9_]*)\($$|\1:\2|' | sort

# $(call run_fuzz,FUZZTIME,SKIP): run every target not named in SKIP.
#
# Go 1.26's fuzzing coordinator can fail a target with a bare "context
# deadline exceeded" when -fuzztime runs out while a worker is mid-input
# (go.dev/issue/75804, fixed in Go 1.27): nothing was found, no input is
# written. Such a run, and only such a run, goes once more; any other
# failure, or a written failing input, fails at once.
define run_fuzz
	@targets="$$($(FUZZ_FIND))"; \
	if [ -z "$$targets" ]; then echo "fuzz: no fuzz targets found" >&2; exit 1; fi; \
	out=$$(mktemp); trap 'rm -f "$$out"' EXIT; \
	for t in $$targets; do \
		dir=$${t%%:*}; name=$${t##*:}; \
		case " $(2) " in *" $$name "*) echo "fuzz: skip $$name ($$dir): not reachable from the network"; continue;; esac; \
		echo "fuzz: $$name ($$dir) for $(1)"; \
		$(GO) test "$$dir" -run '^$$' -fuzz "^$$name\$$" -fuzztime $(1) >"$$out" 2>&1; rc=$$?; cat "$$out"; \
		if [ $$rc -ne 0 ]; then \
			if grep -q 'context deadline exceeded' "$$out" && ! grep -qE 'Failing input written|panic:|^[[:space:]]+[A-Za-z0-9_]+\.go:[0-9]+:' "$$out"; then \
				echo "fuzz: $$name stopped on Go's -fuzztime shutdown race (go.dev/issue/75804), no input found: once more"; \
				$(GO) test "$$dir" -run '^$$' -fuzz "^$$name\$$" -fuzztime $(1) || exit 1; \
			else exit 1; fi; \
		fi; \
	done
endef

.PHONY: test-fuzz fuzz-long fuzz-list

test: test-fuzz

## test-fuzz: every fuzz target reachable from the network, FUZZTIME_CI each.
test-fuzz:
	$(call run_fuzz,$(FUZZTIME_CI),$(FUZZ_NOT_NETWORK))

## fuzz-long: every fuzz target, FUZZTIME_LONG each.
fuzz-long:
	$(call run_fuzz,$(FUZZTIME_LONG),)

## fuzz-list: the fuzz targets found, and whether test-fuzz runs them.
fuzz-list:
	@for t in $$($(FUZZ_FIND)); do \
		case " $(FUZZ_NOT_NETWORK) " in *" $${t##*:} "*) echo "$$t	(fuzz-long only)";; *) echo "$$t";; esac; \
	done
