package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/maypok86/otter/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/lexer"
)

// Sizes of the per-process document caches, in bytes: the parsed-document
// cache (a repeated query is not parsed and validated again) and the
// Automatic Persisted Query store (queries remembered by hash). A count of
// entries would bound nothing: a document may be megabytes long.
const (
	// DefaultQueryCacheBytes bounds the parsed-document cache
	// (GRAPHQL_QUERY_CACHE_BYTES).
	DefaultQueryCacheBytes = 4 << 20
	// DefaultPersistedQueryCacheBytes bounds the APQ store
	// (GRAPHQL_APQ_CACHE_BYTES).
	DefaultPersistedQueryCacheBytes = 4 << 20
	// DefaultMaxCachedDocumentBytes: a document whose entry would weigh
	// more is not cached at all (GRAPHQL_CACHE_MAX_DOCUMENT_BYTES), so one
	// large document cannot push out many small ones, and parsing it again
	// costs no more than it did the first time.
	DefaultMaxCachedDocumentBytes = 64 << 10
)

// What an entry is estimated to hold, beyond the text of its key and
// value. Estimates err on the large side: the bound is on memory.
const (
	// entryOverhead is the cache's own entry: otter's node, its hash
	// table slot, the string headers (about 93 bytes measured with otter
	// v2.4).
	entryOverhead = 128
	// bytesPerToken is the parsed and validated AST built from one lexical
	// token. Measured with gqlparser v2.5.64, retained heap over tokens:
	// 66 bytes (aliased fields) to 234 (elements of a list of strings);
	// an ast.Position and a *ast.Value per list element dominate.
	bytesPerToken = 256
)

// docCache is a graphql.Cache bounded by the bytes its entries hold:
// eviction is by cost (otter's weighted TinyLFU), and an entry heavier than
// maxEntry is not stored.
type docCache[T any] struct {
	entries  *otter.Cache[string, weighed[T]]
	maxEntry int
	// weigh estimates an entry's bytes; it may stop counting once past
	// limit, the entry being refused anyway.
	weigh func(key string, value T, limit int) int
}

type weighed[T any] struct {
	value  T
	weight uint32
}

var (
	_ graphql.Cache[*ast.QueryDocument] = (*docCache[*ast.QueryDocument])(nil)
	_ graphql.Cache[string]             = (*docCache[string])(nil)
)

func newDocCache[T any](maxBytes, maxEntry int, weigh func(key string, value T, limit int) int) *docCache[T] {
	return &docCache[T]{
		entries: otter.Must(&otter.Options[string, weighed[T]]{
			MaximumWeight: uint64(maxBytes),
			Weigher:       func(_ string, e weighed[T]) uint32 { return e.weight },
		}),
		maxEntry: min(maxEntry, maxBytes),
		weigh:    weigh,
	}
}

// newParsedCache is the parsed-document cache, keyed by the query text.
func newParsedCache(maxBytes, maxEntry int) *docCache[*ast.QueryDocument] {
	return newDocCache(maxBytes, maxEntry, func(query string, _ *ast.QueryDocument, limit int) int {
		return parsedWeight(query, limit)
	})
}

// newPersistedCache is the APQ store: query text by its SHA-256.
func newPersistedCache(maxBytes, maxEntry int) *docCache[string] {
	return newDocCache(maxBytes, maxEntry, func(hash, query string, _ int) int {
		return len(hash) + allocated(len(query)) + entryOverhead
	})
}

func (c *docCache[T]) Get(_ context.Context, key string) (T, bool) {
	e, ok := c.entries.GetIfPresent(key)
	return e.value, ok
}

func (c *docCache[T]) Add(_ context.Context, key string, value T) {
	w := c.weigh(key, value, c.maxEntry)
	if w > c.maxEntry {
		return
	}
	c.entries.Set(key, weighed[T]{value: value, weight: uint32(w)})
}

// parsedWeight estimates the bytes a parsed document holds: its text (the
// AST's source, and the cache's key), bytesPerToken for each token, the
// value of each string token again (the lexer copies a string with escapes,
// and every block string), and the entry. It is only computed for a
// document parsed anew, and the tokens are counted only up to limit.
func parsedWeight(query string, limit int) int {
	w := allocated(len(query)) + entryOverhead
	lex := lexer.New(&ast.Source{Input: query})
	for w <= limit {
		tok, err := lex.ReadToken()
		if err != nil || tok.Kind == lexer.EOF {
			break
		}
		w += bytesPerToken
		if tok.Kind == lexer.String || tok.Kind == lexer.BlockString {
			w += allocated(len(tok.Value))
		}
	}
	return w
}

// allocated is what the Go allocator takes for n bytes: sizes are rounded
// up to a size class, or to whole pages for large objects, wasting up to
// an eighth.
func allocated(n int) int { return n + n/8 }
