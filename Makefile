# Sidechain edge realtime. `make dev` serves the worker locally; `make test` runs every test.
# Both install whatever is missing first and are quick when everything is installed.
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)
export WRANGLER_SEND_METRICS := false

WORKER_BUILD_VERSION := 0.8.7
WASM_BINDGEN_VERSION := $(shell sed -n '/^name = "wasm-bindgen"$$/{n;s/version = "\(.*\)"/\1/p}' Cargo.lock)
SOURCES := $(shell find src -name '*.rs') Cargo.toml Cargo.lock

.PHONY: setup toolchain npm dev dev-startup test test-rust test-miniflare build token bench d1-local clean chromium demo

setup: toolchain npm .dev.vars

toolchain:
	@rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
	@[ "$$(worker-build --version 2>/dev/null)" = "$(WORKER_BUILD_VERSION)" ] || cargo install worker-build --version $(WORKER_BUILD_VERSION) --locked
	@[ "$$(wasm-bindgen --version 2>/dev/null)" = "wasm-bindgen $(WASM_BINDGEN_VERSION)" ] || cargo install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION)

# npm ci only when the lock file changed since the last install.
npm: node_modules/.installed
node_modules/.installed: package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

.dev.vars:
	@node -e "console.log('JWT_SECRET=' + require('crypto').randomBytes(32).toString('hex'))" > $@
	@echo "created .dev.vars with a random JWT_SECRET"

build: setup build/index.js
build/index.js: $(SOURCES) scripts/build.sh
	bash scripts/build.sh

# DB (error reports) and every history shard named by HISTORY_SHARDS in wrangler.toml.
HISTORY_SHARDS := $(shell sed -n 's/^HISTORY_SHARDS = "\(.*\)"/\1/p' wrangler.toml)
d1-local: setup
	@for db in $$(echo "DB,$(HISTORY_SHARDS)" | tr ',' '\n' | awk 'NF && !seen[$$0]++'); do \
	  echo "d1 migrations: $$db"; CI=1 npx wrangler d1 migrations apply $$db --local > /dev/null || exit 1; \
	done

# Builds first only when a source changed; wrangler's own [build] step is then a no-op
# (wrangler.toml). DEV_PORT=… serves on another port than 8787.
dev: setup build/index.js d1-local demo
	npx wrangler dev $(if $(DEV_PORT),--port $(DEV_PORT))

# The demo page (public/, served as Workers static assets): bundle the SDK for browsers and print
# URLs carrying development tokens (minted here from .dev.vars; the worker cannot mint any).
demo: public/vendor/sidechain-realtime.js .dev.vars
	@node client/demo-urls.mjs
public/vendor/sidechain-realtime.js: $(wildcard client/src/*.js) package-lock.json | node_modules/.installed
	node client/build-browser.mjs

# Debian's Chromium for the browser test (playwright-core comes with npm).
chromium:
	@[ -x /usr/bin/chromium ] || { apt-get update -qq && apt-get install -y -qq chromium > /dev/null; }

test: setup d1-local build test-rust test-miniflare

test-rust:
	cargo test --release

test-miniflare: chromium
	node --test --test-concurrency=1 miniflare-tests/

# A development token: make token USER=alice [DOCS='{"channel:abc:*":"write"}'] [SERVICE=1]
# (without USER= on the command line the shell's $USER is used; USER_ID= overrides both)
token: .dev.vars
	@node scripts/token.mjs $(or $(USER_ID),$(USER),alice) $(if $(DOCS),'$(DOCS)') $(if $(SERVICE),--service)

bench: setup build chromium
	cargo bench --bench engine
	node bench/ws-replay.mjs
	node bench/engagement-fanout.mjs
	node bench/notify-fanout.mjs
	node bench/reconnect-storm.mjs
	node bench/abuse.mjs
	node bench/hot-documents.mjs 5 1,16,64 1,200,1000
	node bench/wake-cost.mjs 10000 6 6 10
	node bench/feed-fanout.mjs one 1000 10
	SOCKETS=8 node bench/feed-fanout.mjs one 10000 5
	node bench/feed-fanout.mjs many 1000 100 1000 20
	node bench/canvas-viewport.mjs
	node bench/yjs.mjs
	TMPDIR=/dev/shm node bench/yjs.mjs
	node bench/yjs-profile.mjs 4000 25
	node bench/wasm-cold-start.mjs
	bash bench/dev-startup.sh 2

# Seconds from `make dev` on a built tree until /health answers (twice), on port 8799.
dev-startup: setup build
	bash bench/dev-startup.sh 2

clean:
	rm -rf build target .wrangler
