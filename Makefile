# One command per daily job; see README.md.
.PHONY: run build test lint generate check-generate check-tidy image image-check test-clients check-generate-clients node-modules

# Build and start the service (reads .env when present; ARGS are passed
# on, make run ARGS=--check-config). Not go run: go run exits 1 when it is
# interrupted, whatever the service did, so Ctrl-C ended in make's Error 1;
# the service itself exits 0 after a clean shutdown.
run: build
	$(BIN) $(ARGS)

# The version stamped into the binary (--version, the start-up line, health
# details, cache_build_info): git describe by default; a release sets it,
# make build VERSION=1.2.0.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
BIN ?= bin/cache-service

build:
	go build -ldflags '-X main.version=$(VERSION)' -o $(BIN) .

# Regenerate gqlgen code from schema.graphqls.
generate:
	go generate ./...

# gofmt, go vet and staticcheck (pinned in go.mod as a tool).
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	go vet ./...
	go tool staticcheck ./...

# Fails when the generated code differs from what the schema produces.
check-generate:
	scripts/check-generate

# Fails when go mod tidy would change go.mod or go.sum.
check-tidy:
	go mod tidy -diff

# The TypeScript client's packages, from its package-lock.json (npm ci),
# again whenever the lock file changes.
CLIENT := clients/typescript
node-modules: $(CLIENT)/node_modules/.package-lock.json
$(CLIENT)/node_modules/.package-lock.json: $(CLIENT)/package-lock.json
	cd $(CLIENT) && npm ci --no-audit --no-fund

# Fails when the client's generated types (src/generated.ts) differ from what
# schema.graphqls and clients/operations.graphql produce (npm run generate
# in clients/typescript regenerates them).
check-generate-clients: node-modules
	cd $(CLIENT) && npm run --silent check-generate >/dev/null || { echo "$(CLIENT)/src/generated.ts is stale (run 'npm run generate' in $(CLIENT) and commit)"; exit 1; }

# Node's test runner: the TypeScript client, and the GraphQL-over-HTTP audit
# (graphql-http's auditServer), against the built binary and their own
# redis-server processes.
test-clients: build node-modules
	cd $(CLIENT) && CACHE_SERVICE_BIN=$(CURDIR)/bin/cache-service npm test

# The container image (deploy/container/Containerfile), built with podman
# from a static binary: make image, or make image IMAGE=registry/name:tag.
IMAGE ?= localhost/school-erp/cache-service:$(VERSION)
image:
	VERSION=$(VERSION) scripts/image-build $(IMAGE)

# Builds the image and runs it against a redis-server of its own, as a
# deployment would; skipped, saying why, where podman cannot run.
image-check:
	scripts/image-check

# The test command: the habits above and the container image, then every
# test with the race detector (the Kubernetes manifests and the systemd
# unit are checked there too), whose summary closes the output. Tests start
# their own redis-server processes (Debian's redis-server); then the
# client's and the HTTP audit's tests.
# One package at a time (-p 1): the root package's fault tests hold the
# service to its command timeout while Redis misbehaves, and on a 2-core
# machine another package's tests running beside them (under the race
# detector) have made a request take over a second. Within a package the
# parallel tests still run together; the serial ones (TestFaults) run
# alone.
test: lint check-generate check-tidy image-check check-generate-clients
	go test -race -count=1 -p 1 ./...
	$(MAKE) --no-print-directory test-clients

# Load benchmark against redis-benchmark, webdis and the Go and Node references; writes BENCHMARKS.md (bench/README.md).
# Phony: bench/ is also a directory.
.PHONY: bench
bench:
	bench/run

# Mutation testing of cache/, graph/ and config/ with gremlins, writing
# MUTANTS.md (scripts/mutants says how to bound it). Not part of make test
# nor CI: it takes hours over every file.
.PHONY: mutants
mutants:
	scripts/mutants
