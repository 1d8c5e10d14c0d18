# The AssemblyScript mutator SDK (@sqlsync-go/mutator, in mutator/): its
# build command tested as a user meets it, from the packed package in a
# fresh project. Its Go tests (the JSON args against the Go SDK's, and the
# contract suite on an AssemblyScript module) run with make test-go.
#
#   make test-mutator-sdk   the packed package's build command, in node

NPM ?= npm

.PHONY: test-mutator-sdk

test: test-mutator-sdk

## test-mutator-sdk: npm pack, install in a fresh project, build mutators with npx sqlsync-mutator.
test-mutator-sdk: node_modules/.package-lock.json
	$(NPM) test -w mutator
