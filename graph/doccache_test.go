package graph

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"
	"github.com/vektah/gqlparser/v2/validator/rules"
)

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// held is what a cache holds once its pending evictions are done.
func held[T any](c *docCache[T]) (entries int, bytes uint64) {
	c.entries.CleanUp()
	return c.entries.EstimatedSize(), c.entries.WeightedSize()
}

// TestDocCacheEvictsByCost: the cache holds bytes, not a number of entries:
// as many light documents as fit, and fewer heavy ones.
func TestDocCacheEvictsByCost(t *testing.T) {
	const maxBytes = 64 << 10
	ctx := context.Background()
	for _, size := range []int{100, 1000, 8000} {
		t.Run(fmt.Sprintf("queries of %d bytes", size), func(t *testing.T) {
			c := newPersistedCache(maxBytes, maxBytes)
			weight := 64 + allocated(size) + entryOverhead
			for i := range 1000 {
				q := fmt.Sprintf("%0*d", size, i)
				c.Add(ctx, sha(q), q)
			}
			n, bytes := held(c)
			if bytes > maxBytes || n == 0 || n > maxBytes/weight {
				t.Errorf("after 1000 entries of %d bytes: %d entries, %d bytes; want 1 to %d entries within %d bytes", weight, n, bytes, maxBytes/weight, maxBytes)
			}
			if bytes != uint64(n*weight) {
				t.Errorf("%d entries of %d bytes weigh %d; want %d", n, weight, bytes, n*weight)
			}
		})
	}
}

func TestDocCacheSkipsOversizedDocuments(t *testing.T) {
	ctx := context.Background()
	const maxEntry = 16 << 10

	apq := newPersistedCache(1<<20, maxEntry)
	small, large := strings.Repeat("a", 1000), strings.Repeat("b", maxEntry)
	apq.Add(ctx, sha(small), small)
	apq.Add(ctx, sha(large), large)
	if _, ok := apq.Get(ctx, sha(small)); !ok {
		t.Error("a 1000-byte query was not stored")
	}
	if _, ok := apq.Get(ctx, sha(large)); ok {
		t.Errorf("a %d-byte query was stored; the limit is %d", len(large), maxEntry)
	}

	parsed := newParsedCache(1<<20, maxEntry)
	// Short texts: what decides is the AST their tokens make.
	few := `{ cacheGet(key: "k") }`
	many := `mutation { cacheSet(key: "k", value: [` + strings.Repeat("1,", maxEntry/bytesPerToken) + `]) { stored } }`
	for _, q := range []string{few, many} {
		doc, err := parser.ParseQuery(&ast.Source{Input: q})
		if err != nil {
			t.Fatal(err)
		}
		parsed.Add(ctx, q, doc)
	}
	if _, ok := parsed.Get(ctx, few); !ok {
		t.Error("a small document was not cached")
	}
	if _, ok := parsed.Get(ctx, many); ok {
		t.Errorf("a document of %d bytes and %d tokens was cached; at %d bytes a token it weighs more than %d", len(many), maxEntry/bytesPerToken, bytesPerToken, maxEntry)
	}
	if n, bytes := held(parsed); n != 1 || bytes != uint64(parsedWeight(few, maxEntry)) {
		t.Errorf("the cache holds %d entries, %d bytes; want the small document alone, %d bytes", n, bytes, parsedWeight(few, maxEntry))
	}
}

// TestParsedWeightCoversTheHeap keeps the estimate an upper bound: for
// documents of each shape, the heap a parsed and validated document keeps
// (beyond its text) is at most what parsedWeight counts for it.
func TestParsedWeightCoversTheHeap(t *testing.T) {
	schema := NewExecutableSchema(Config{}).Schema()
	numbered := func(n int, f func(i int) string) string {
		var b strings.Builder
		for i := range n {
			b.WriteString(f(i))
		}
		return b.String()
	}
	docs := map[string]string{
		"one field":            `{ cacheGet(key: "k") }`,
		"variables":            `query($k: String!) { cacheGet(key: $k) }`,
		"mutation payload":     `mutation($k: String!, $v: JSON!, $ttl: Int) { cacheSet(key: $k, value: $v, ttlSeconds: $ttl) { key stored backend ttlSeconds failure message } }`,
		"nested selection":     `{ redisHealth { status latencyMs reason mode tls addr breaker fallback { mode active off entries bytes } cluster { state nodes } } }`,
		"fragments":            `{ ...F } fragment F on Query { redisHealth { ...G } } fragment G on RedisHealth { status fallback { mode } }`,
		"20 aliases":           "{" + numbered(20, func(i int) string { return fmt.Sprintf(" a%d: cacheGet(key: \"k%d\")", i, i) }) + " }",
		"100 literal keys":     `{ cacheGetMany(keys: [` + strings.Repeat(`"student:12345", `, 100) + `]) }`,
		"list of numbers":      `mutation { cacheSet(key: "k", value: [` + strings.Repeat("1,", 2000) + `]) { stored } }`,
		"list of strings":      `mutation { cacheSet(key: "k", value: [` + strings.Repeat(`"a\n", `, 1500) + `]) { stored } }`,
		"object of numbers":    `mutation { cacheSet(key: "k", value: {` + numbered(1500, func(i int) string { return fmt.Sprintf("f%d: %d ", i, i) }) + `}) { stored } }`,
		"nested lists":         `mutation { cacheSet(key: "k", value: ` + strings.Repeat("[", 400) + strings.Repeat("]", 400) + `) { stored } }`,
		"one long string":      `{ cacheExists(key: "` + strings.Repeat("x", 100000) + `") }`,
		"escapes in a string":  `{ cacheExists(key: "` + strings.Repeat(`\n`, 10000) + `") }`,
		"a block string":       `mutation { cacheSet(key: "k", value: """` + strings.Repeat("  line\\n\n", 5000) + `""") { stored } }`,
		"a long comment":       `{ cacheExists(key: "k") } #` + strings.Repeat("x", 100000),
		"directives":           `query($s: Boolean!) { a: cacheGet(key: "a") @skip(if: $s) b: cacheGet(key: "b") @include(if: $s) }`,
		"operations and names": numbered(10, func(i int) string { return fmt.Sprintf("query Q%d { cacheExists(key: \"k%d\") } ", i, i) }),
	}
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	for name, q := range docs {
		t.Run(name, func(t *testing.T) {
			const n = 40
			texts := make([]string, n)
			for i := range texts {
				texts[i] = q + fmt.Sprintf(" # %d", i) // distinct, as cached documents are
			}
			docs := make([]*ast.QueryDocument, n)
			before := heap()
			for i, text := range texts {
				doc, err := parser.ParseQuery(&ast.Source{Input: text})
				if err != nil {
					t.Fatal(err)
				}
				if errs := validator.ValidateWithRules(schema, doc, rules.NewDefaultRules()); len(errs) > 0 {
					t.Fatal(errs)
				}
				docs[i] = doc
			}
			kept := int(heap()-before) / n
			runtime.KeepAlive(docs)
			// The text is counted once, in the weight; the heap measured
			// is beyond it.
			if w := parsedWeight(texts[0], 1<<30) - allocated(len(texts[0])) - entryOverhead; kept > w {
				t.Errorf("a parsed document keeps %d bytes beyond its text; parsedWeight counts %d", kept, w)
			}
		})
	}
}
