# One command per daily job; see README.md.
.PHONY: run build test lint generate check-generate check-tidy test-clients check-generate-clients node-modules

# Start the service (reads .env when present).
run:
	go run .

build:
	go build -o bin/cache-service .

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

# The test command: the habits above, then every test with the race detector,
# then the client's and the HTTP audit's tests. Tests start their own
# redis-server processes (Debian's redis-server).
test: lint check-generate check-tidy check-generate-clients
	go test -race -count=1 ./...
	$(MAKE) --no-print-directory test-clients

# Load benchmark against the Redis limit; writes BENCHMARKS.md (bench/README.md).
# Phony: bench/ is also a directory.
.PHONY: bench
bench:
	bench/run
