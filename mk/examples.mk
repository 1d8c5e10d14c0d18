# The example apps (examples/): stock bundler apps on @sqlsync-go/client,
# built with their bundler's production build as an npm user would, and
# driven in Debian's Chromium against the real coordinator on another origin.
#
#   make test-examples   build each example and run its end-to-end test

NPM      ?= npm
CHROMIUM ?= /usr/bin/chromium
EXAMPLES := examples/vite-react

.PHONY: test-examples

test: test-examples

## test-examples: each example app's production build, served on its own origin, in Chromium.
test-examples: js-package deps-chromium build
	for e in $(EXAMPLES); do \
		$(NPM) run build -w $$e || exit 1; \
		CHROMIUM=$(CHROMIUM) $(NPM) run test:e2e -w $$e || exit 1; \
	done
