package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/school-erp/cache-service/cache"
	"github.com/school-erp/cache-service/internal/auth"
)

// failingCache answers every read with err, as the cache client reports a
// read that Redis refused, could not be reached for, or did not answer.
type failingCache struct {
	stubCache
	err error
}

func (c failingCache) Get(context.Context, string) (json.RawMessage, cache.Backend, error) {
	return nil, "", c.err
}

func (c failingCache) GetMany(_ context.Context, keys []string) ([]cache.Read, error) {
	reads := make([]cache.Read, len(keys))
	for i := range reads {
		reads[i] = cache.Read{Err: c.err}
	}
	return reads, nil
}

func (c failingCache) Exists(context.Context, string) (bool, cache.Backend, error) {
	return false, "", c.err
}

func (c failingCache) GetEntry(context.Context, string) (*cache.Entry, error) { return nil, c.err }

type readAnswer struct {
	Data   map[string]json.RawMessage `json:"data"`
	Errors []struct {
		Path       []any          `json:"path"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
	Extensions struct {
		Warnings []struct {
			Code string `json:"code"`
			Path []any  `json:"path"`
		} `json:"warnings"`
	} `json:"extensions"`
}

// A read Redis refused is an error at the field's path (REDIS_REJECTED),
// never a miss: a miss says the key holds nothing, while it holds something
// this service cannot read. An outage or a read without a reply is a miss
// with a warning instead. Checked on both read paths (the compiled plan and
// gqlgen's executor), each of which could turn one into the other.
func TestReadFailuresReachTheClient(t *testing.T) {
	type want struct {
		code    string // the error's extensions.code; "" for none
		warning string // the warning's code; "" for none
	}
	failures := []struct {
		name string
		err  error
		want want
	}{
		{"rejected", fmt.Errorf("%w: WRONGTYPE Operation against a key holding the wrong kind of value", cache.ErrRejected), want{code: CodeRedisRejected}},
		{"unavailable", fmt.Errorf("%w: connection refused", cache.ErrUnavailable), want{warning: WarningRedisUnavailable}},
		{"no reply", fmt.Errorf("%w: i/o timeout", cache.ErrNoReply), want{warning: WarningNoReply}},
	}
	fields := []struct {
		name, query string
		path        []any  // where the error or warning must be
		miss        string // the field's value when the read is a miss
	}{
		{"cacheGet", `{ cacheGet(key: "h") }`, []any{"cacheGet"}, `null`},
		{"cacheGetMany", `{ cacheGetMany(keys: ["h"]) }`, []any{"cacheGetMany", 0.0}, `[null]`},
		{"cacheExists", `{ cacheExists(key: "h") }`, []any{"cacheExists"}, `false`},
		{"cacheEntry", `{ cacheEntry(key: "h") { value } }`, []any{"cacheEntry"}, `null`},
	}
	for _, f := range failures {
		r := &Resolver{Cache: failingCache{err: f.err}}
		opts := HandlerOptions{Auth: auth.OpenAccess()}
		plainOpts := opts
		plainOpts.NoCompiledReads = true
		compiled, plain := NewHandler(r, opts), NewHandler(r, plainOpts)
		for _, fl := range fields {
			body := request(fl.query, nil)
			handlers := map[string]func() string{
				"compiled": func() string { send(compiled, body, nil); return send(compiled, body, nil).body },
				"gqlgen":   func() string { return send(plain, body, nil).body },
			}
			for path, answerOf := range handlers {
				t.Run(f.name+"/"+fl.name+"/"+path, func(t *testing.T) {
					raw := answerOf()
					var a readAnswer
					if err := json.Unmarshal([]byte(raw), &a); err != nil {
						t.Fatalf("%s: %v", raw, err)
					}
					var codes, warnings []string
					for _, e := range a.Errors {
						code, _ := e.Extensions["code"].(string)
						codes = append(codes, code)
						if fmt.Sprint(e.Path) != fmt.Sprint(fl.path) {
							t.Errorf("error path = %v; want %v (%s)", e.Path, fl.path, raw)
						}
					}
					for _, w := range a.Extensions.Warnings {
						warnings = append(warnings, w.Code)
						if fmt.Sprint(w.Path) != fmt.Sprint(fl.path) {
							t.Errorf("warning path = %v; want %v (%s)", w.Path, fl.path, raw)
						}
					}
					if fmt.Sprint(codes) != fmt.Sprint(nonEmptyList(f.want.code)) || fmt.Sprint(warnings) != fmt.Sprint(nonEmptyList(f.want.warning)) {
						t.Errorf("%s answered error codes %v, warnings %v; want %v, %v", fl.query, codes, warnings, nonEmptyList(f.want.code), nonEmptyList(f.want.warning))
					}
					value := string(a.Data[fl.name])
					switch {
					case f.want.code != "" && fl.name != "cacheGetMany" && value != "null":
						t.Errorf("%s = %s with an error; want null", fl.name, value)
					case f.want.code != "" && fl.name == "cacheGetMany" && value != "[null]":
						t.Errorf("%s = %s with an error at its index; want [null]", fl.name, value)
					case f.want.warning != "" && value != fl.miss:
						t.Errorf("%s = %s with a warning; want the miss %s", fl.name, value, fl.miss)
					}
				})
			}
		}
	}
}

func nonEmptyList(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// Errors and warnings come in the order of the fields they are about, as
// the query has them (not by name, nor as the fields happened to finish),
// and within a list by index; an error without a path comes first.
func TestErrorsAndWarningsInFieldOrder(t *testing.T) {
	// The last field through an inline fragment: the order is of the
	// fields as the operation's root type collects them.
	query := `{ z: cacheGet(key: "h") m: cacheGetMany(keys: ["h", "h"]) ... on Query { a: cacheExists(key: "h") } }`
	for name, err := range map[string]error{
		"errors":   fmt.Errorf("%w: WRONGTYPE", cache.ErrRejected),
		"warnings": fmt.Errorf("%w: connection refused", cache.ErrUnavailable),
	} {
		r := &Resolver{Cache: failingCache{err: err}}
		for _, noCompiled := range []bool{false, true} {
			h := NewHandler(r, HandlerOptions{Auth: auth.OpenAccess(), NoCompiledReads: noCompiled})
			body := request(query, nil)
			send(h, body, nil)
			raw := send(h, body, nil).body
			var a readAnswer
			if err := json.Unmarshal([]byte(raw), &a); err != nil {
				t.Fatalf("%s: %v", raw, err)
			}
			var paths []string
			for _, e := range a.Errors {
				paths = append(paths, fmt.Sprint(e.Path))
			}
			for _, w := range a.Extensions.Warnings {
				paths = append(paths, fmt.Sprint(w.Path))
			}
			if got, want := strings.Join(paths, " "), "[z] [m 0] [m 1] [a]"; got != want {
				t.Errorf("%s (compiled reads off: %v) in the order %s; want %s (%s)", name, noCompiled, got, want, raw)
			}
		}
	}
}

func TestComparePaths(t *testing.T) {
	order := map[string]int{"z": 0, "a": 1}
	p := func(parts ...any) ast.Path {
		var path ast.Path
		for _, x := range parts {
			switch x := x.(type) {
			case string:
				path = append(path, ast.PathName(x))
			case int:
				path = append(path, ast.PathIndex(x))
			}
		}
		return path
	}
	tests := []struct {
		a, b ast.Path
		want int
	}{
		{nil, nil, 0},
		{nil, p("z"), -1},
		{p("z"), nil, 1},
		{p("z"), p("a"), -1},
		{p("a"), p("z"), 1},
		{p("z"), p("z"), 0},
		{p("z", 1), p("z", 2), -1},
		{p("z", 10), p("z", 2), 1},
		{p("z"), p("z", 0), -1},
		{p("z", 0, "value"), p("z", 0), 1},
		{p("z", "b"), p("z", "c"), -1}, // below the root, by name
		{p("z", 0), p("z", "x"), -1},   // an index before a name
		{p("z", "x"), p("z", 0), 1},
	}
	for _, tt := range tests {
		if got := comparePaths(order, tt.a, tt.b); sign(got) != tt.want {
			t.Errorf("comparePaths(%v, %v) = %d; want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// GetRead is Get as a Read.
func (c failingCache) GetRead(ctx context.Context, key string) cache.Read {
	v, backend, err := c.Get(ctx, key)
	return cache.Read{Value: v, Backend: backend, Err: err}
}
