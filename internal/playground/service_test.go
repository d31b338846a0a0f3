package playground

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/school-erp/cache-service/cache"
	"github.com/school-erp/cache-service/graph"
	"github.com/school-erp/cache-service/internal/auth"
	"github.com/school-erp/cache-service/internal/redistest"
)

// startService serves the real GraphQL endpoint, backed by a redis-server
// of the test's own, and the playground, on one loopback test server, as
// the service mounts them. It returns once the client has reached Redis.
func startService(t *testing.T) (*httptest.Server, *cache.Client) {
	t.Helper()
	redis := redistest.Start(t, redistest.Options{})
	c, err := cache.New(cache.Options{Addr: redis.Addr})
	if err != nil {
		t.Fatalf("cache.New: %v", err)
	}
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatalf("wait for Redis at %s: %v", redis.Addr, err)
	}

	mux := http.NewServeMux()
	mux.Handle("/graphql", graph.NewHandler(&graph.Resolver{Cache: c}, graph.HandlerOptions{Introspection: true, Auth: auth.OpenAccess()}))
	Mount(mux, "School ERP cache", "/graphql")
	ts := httptest.NewServer(mux) // 127.0.0.1, a free port
	t.Cleanup(ts.Close)
	return ts, c
}

// graphQLResponse is the part of a GraphQL response the tests read.
type graphQLResponse struct {
	Data   map[string]json.RawMessage `json:"data"`
	Errors []struct {
		Message string `json:"message"`
	} `json:"errors"`
}

// postGraphQL runs one operation of document against the endpoint.
func postGraphQL(t *testing.T, endpoint, document, operationName string) graphQLResponse {
	t.Helper()
	body, err := json.Marshal(map[string]string{"query": document, "operationName": operationName})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(endpoint, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", endpoint, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	var out graphQLResponse
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("operation %s: status %d, response is not JSON: %v\n%s", operationName, resp.StatusCode, err, raw)
	}
	return out
}
