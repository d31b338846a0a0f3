package graph

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/extension"
)

// TestPersistedQueriesMatchGqlgens: persistedQueries stands in for gqlgen's
// extension.AutomaticPersistedQuery. Where gqlgen's accepts a request, both
// leave the same query and stats; where it refuses one, ours refuses it
// too, with gqlgen's code if it has one and a code of ours otherwise.
func TestPersistedQueriesMatchGqlgens(t *testing.T) {
	const query = `{ cacheExists(key: "apq") }`
	ext := func(version any, hash any) map[string]any {
		return map[string]any{"persistedQuery": map[string]any{"version": version, "sha256Hash": hash}}
	}
	tests := []struct {
		name     string
		query    string
		ext      map[string]any
		wantCode string // "" when accepted
	}{
		{"no extension", query, nil, ""},
		{"null extension", query, map[string]any{"persistedQuery": nil}, ""},
		{"hash alone, unknown", "", ext(json.Number("1"), sha(query)), CodePersistedQueryNotFound},
		{"registration", query, ext(json.Number("1"), sha(query)), ""},
		{"hash alone, registered", "", ext(json.Number("1"), sha(query)), ""},
		{"hash of another query", query, ext(json.Number("1"), sha(query+" ")), CodePersistedQueryHashMismatch},
		{"hash in upper case", query, ext(json.Number("1"), "ABC"), CodePersistedQueryHashMismatch},
		{"version 2", query, ext(json.Number("2"), sha(query)), CodePersistedQueryVersion},
		{"version 0, hash alone", "", ext(json.Number("0"), sha(query)), CodePersistedQueryVersion},
		{"no version", query, map[string]any{"persistedQuery": map[string]any{"sha256Hash": sha(query)}}, CodePersistedQueryVersion},
		{"version not a number", query, ext("1", sha(query)), CodeBadRequest},
		{"hash not a string", query, ext(json.Number("1"), json.Number("5")), CodeBadRequest},
		{"not an object", query, map[string]any{"persistedQuery": "x"}, CodeBadRequest},
	}
	ours := persistedQueries{store: graphql.MapCache[string]{}}
	theirs := extension.AutomaticPersistedQuery{Cache: graphql.MapCache[string]{}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := func(m graphql.OperationParameterMutator) (*graphql.RawParams, *extension.ApqStats, string, bool) {
				ctx := graphql.WithOperationContext(context.Background(), &graphql.OperationContext{})
				p := &graphql.RawParams{Query: tt.query, Extensions: tt.ext}
				err := m.MutateOperationParameters(ctx, p)
				var code string
				if err != nil {
					code, _ = err.Extensions["code"].(string)
				}
				return p, extension.GetApqStats(ctx), code, err != nil
			}
			p, stats, code, failed := run(ours)
			tp, tstats, tcode, tfailed := run(theirs)
			if code != tt.wantCode || failed != (tt.wantCode != "") {
				t.Errorf("ours: code %q, failed %v; want %q", code, failed, tt.wantCode)
			}
			if failed != tfailed {
				t.Errorf("ours failed %v, gqlgen's %v", failed, tfailed)
			}
			if tcode != "" && tcode != code {
				t.Errorf("gqlgen's code %q, ours %q", tcode, code)
			}
			if !failed && (p.Query != tp.Query || (stats == nil) != (tstats == nil) || stats != nil && *stats != *tstats) {
				t.Errorf("ours: query %q, stats %+v; gqlgen's: %q, %+v", p.Query, stats, tp.Query, tstats)
			}
		})
	}
}
