package graph

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/school-erp/cache-service/cache"
)

// DefaultMaxResponseBytes bounds the bytes of values one response may hold
// (GRAPHQL_MAX_RESPONSE_BYTES).
const DefaultMaxResponseBytes = 16 << 20

// CodeResponseTooLarge: the values a query would return take more than
// GRAPHQL_MAX_RESPONSE_BYTES; the request was refused as a whole, and its
// response built without them.
const CodeResponseTooLarge = "RESPONSE_TOO_LARGE"

// A response budget counts the bytes of values one request will return, as
// the resolvers read them and before the response is built: without it, a
// query of a few aliased cacheGetMany fields, each naming the same large
// key a hundred times, built a response of hundreds of megabytes and took
// several times that in memory.
//
// What is read but not yet counted is bounded too. Each read first
// reserves, at the largest size a value can have (CACHE_MAX_VALUE_BYTES),
// room for the keys it reads; reads take only as many keys as fit in what
// is left of the budget, and wait while other fields' reads hold the rest.
// A read may always take one key when no other is in flight, so a value
// as large as CACHE_MAX_VALUE_BYTES can always be read. (A value that is
// not JSON is returned as a JSON string, which may be up to six times
// longer; it is counted at that length once read.)
type responseBudget struct {
	limit    int64
	maxValue int64

	mu   sync.Mutex
	wake *sync.Cond
	// used is what has been counted; reserved is what reads in flight may
	// bring, at maxValue a key.
	used, reserved int64
	// fields is what was counted for each root field, by response key;
	// -1 for a field refused before it read anything.
	fields map[string]int64
	over   bool
}

func newResponseBudget(limit, maxValue int) *responseBudget {
	b := &responseBudget{limit: int64(limit), maxValue: int64(maxValue), fields: map[string]int64{}}
	b.wake = sync.NewCond(&b.mu)
	return b
}

// read reads up to n keys within the budget: it reserves room for as many
// as fit (waiting while other reads hold the rest), calls readKeys with
// that number, and counts the bytes readKeys says the response will hold.
// The reservation is returned whatever readKeys does, panics included, so
// that no other field waits for it forever. It returns how many keys were
// read, and errResponseTooLarge once the budget is spent.
func (b *responseBudget) read(ctx context.Context, n int, readKeys func(n int) (bytes int64)) (k int, err error) {
	if k, err = b.reserve(ctx, n); err != nil {
		return 0, err
	}
	var bytes int64
	defer func() {
		if serr := b.settle(ctx, k, bytes); serr != nil {
			err = serr
		}
	}()
	bytes = readKeys(k)
	return k, err
}

// reserve waits until some of n keys may be read and returns how many, or
// errResponseTooLarge once the budget is spent.
func (b *responseBudget) reserve(ctx context.Context, n int) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		if b.over {
			if name := fieldKey(ctx); b.fields[name] == 0 {
				b.fields[name] = -1 // named in the refusal, though it read nothing
			}
			return 0, errResponseTooLarge
		}
		k := min(int64(n), (b.limit-b.used-b.reserved)/b.maxValue)
		if k < 1 && b.reserved == 0 {
			k = 1
		}
		if k >= 1 {
			b.reserved += k * b.maxValue
			return int(k), nil
		}
		// Reads in flight hold the rest; each ends within its command
		// deadline and wakes this one.
		b.wake.Wait()
	}
}

// settle counts the bytes a read of n reserved keys brought.
func (b *responseBudget) settle(ctx context.Context, n int, bytes int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	defer b.wake.Broadcast()
	b.reserved -= int64(n) * b.maxValue
	b.used += bytes
	b.fields[fieldKey(ctx)] += bytes // a field reads before it can be refused: never -1 here
	if b.used > b.limit {
		b.over = true
	}
	if b.over {
		return errResponseTooLarge
	}
	return nil
}

// refusal is the one error of a refused response: it names the fields that
// read values, with what was counted for each.
func (b *responseBudget) refusal() *gqlerror.Error {
	b.mu.Lock()
	defer b.mu.Unlock()
	names := slices.Sorted(maps.Keys(b.fields))
	counted := make([]string, len(names))
	for i, name := range names {
		counted[i] = fmt.Sprintf("%s (%d bytes)", name, b.fields[name])
		if b.fields[name] < 0 {
			counted[i] = name + " (not read)"
		}
	}
	return &gqlerror.Error{
		Message: fmt.Sprintf("the values this query asks for take more than %d bytes (GRAPHQL_MAX_RESPONSE_BYTES); counted before reading stopped: %s. Ask for fewer keys in each request",
			b.limit, strings.Join(counted, ", ")),
		Extensions: map[string]any{"code": CodeResponseTooLarge, "fields": names},
	}
}

// errResponseTooLarge is what a field whose values do not fit returns; the
// response is then replaced as a whole by the refusal.
var errResponseTooLarge = coded(CodeResponseTooLarge, "the response would exceed GRAPHQL_MAX_RESPONSE_BYTES")

func fieldKey(ctx context.Context) string {
	if fc := graphql.GetFieldContext(ctx); fc != nil {
		return fc.Field.Alias
	}
	return ""
}

type budgetKey struct{}

// budgetOf is the request's budget; nil (no limit) outside a request.
func budgetOf(ctx context.Context) *responseBudget {
	b, _ := ctx.Value(budgetKey{}).(*responseBudget)
	return b
}

// responseLimit gives each request its budget, and refuses a response
// whose values did not fit it: data null and one RESPONSE_TOO_LARGE error,
// whatever else the fields said.
type responseLimit struct{ limit, maxValue int }

var _ interface {
	graphql.HandlerExtension
	graphql.ResponseInterceptor
} = responseLimit{}

func (responseLimit) ExtensionName() string                   { return "ResponseLimit" }
func (responseLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (l responseLimit) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	b := newResponseBudget(l.limit, l.maxValue)
	resp := next(context.WithValue(ctx, budgetKey{}, b))
	if resp == nil || !b.over {
		return resp
	}
	return &graphql.Response{Errors: gqlerror.List{b.refusal()}}
}

// getWithin is Cache.GetRead within the request's budget.
func getWithin(ctx context.Context, c Cache, key string) cache.Read {
	b := budgetOf(ctx)
	if b == nil {
		return c.GetRead(ctx, key)
	}
	var rd cache.Read
	if _, berr := b.read(ctx, 1, func(int) int64 {
		rd = c.GetRead(ctx, key)
		return int64(len(rd.Value))
	}); berr != nil {
		return cache.Read{Err: berr}
	}
	return rd
}

// getManyWithin is Cache.GetMany within the request's budget. A key named
// more than once is read once (and counted as often as the response would
// hold it); keys are read in batches as large as the budget allows, one
// round trip per server for each, and reading stops once the budget is
// spent.
func getManyWithin(ctx context.Context, c Cache, keys []string) ([]cache.Read, error) {
	b := budgetOf(ctx)
	if b == nil || len(keys) > cache.MaxGetManyKeys {
		return c.GetMany(ctx, keys) // too many keys: refused whole, nothing read
	}
	times := make(map[string]int64, len(keys))
	var distinct []string
	for _, k := range keys {
		if times[k] == 0 {
			distinct = append(distinct, k)
		}
		times[k]++
	}
	read := make(map[string]cache.Read, len(distinct))
	var err error
	for rest := distinct; len(rest) > 0 && err == nil; {
		n, berr := b.read(ctx, len(rest), func(n int) (bytes int64) {
			var reads []cache.Read
			reads, err = c.GetMany(ctx, rest[:n])
			for i, rd := range reads {
				read[rest[i]] = rd
				bytes += int64(len(rd.Value)) * times[rest[i]]
			}
			return bytes
		})
		if berr != nil {
			return nil, berr
		}
		rest = rest[n:]
	}
	if err != nil {
		return nil, err
	}
	out := make([]cache.Read, len(keys))
	for i, k := range keys {
		out[i] = read[k]
	}
	return out, nil
}
