package graph

import (
	"context"

	"github.com/school-erp/cache-service/cache"
	"github.com/school-erp/cache-service/graph/model"
)

// The work of the write fields, one function each, called by gqlgen's
// resolvers (schema.resolvers.go) and by the compiled write plans
// (compiledwrites.go) alike: the same cache calls, outcomes and errors
// whichever path a mutation takes. What differs between the paths is only
// how the arguments were read.

// setArgs are cacheSet's arguments as the field received them.
type setArgs struct {
	key   string
	value model.JSON
	// valueGiven says the value argument was given (null included); a
	// value of nil without it is a missing value, which is refused.
	valueGiven bool
	ttlSeconds *int
	ifAbsent   *bool
	ifEtag     *string
	tags       []string
	lease      *string
}

// cacheSet stores a value as cacheSet does: the payload, or an error for
// input that is refused (BAD_USER_INPUT).
func cacheSet(ctx context.Context, c Cache, a setArgs) (*model.CacheSetPayload, error) {
	value, err := requiredValue(a.value, a.valueGiven)
	if err != nil {
		return nil, err
	}
	ttl, err := ttlFromSeconds(a.ttlSeconds)
	if err != nil {
		return nil, err
	}
	opts := cache.SetOptions{TTL: ttl, Tags: a.tags}
	if a.lease != nil {
		opts.Lease = *a.lease
	}
	if a.ifAbsent != nil {
		opts.IfAbsent = *a.ifAbsent
	}
	if a.ifEtag != nil {
		opts.IfETag = *a.ifEtag
	}
	res, err := c.SetWith(ctx, a.key, []byte(value), opts)
	return setPayload(a.key, a.ttlSeconds, res, err)
}

// cacheDelete removes a key as cacheDelete does.
func cacheDelete(ctx context.Context, c Cache, key string) (*model.CacheDeletePayload, error) {
	deleted, backend, err := c.Delete(ctx, key)
	return deletePayload(key, deleted, backend, err)
}

// cacheIncrement adds to a counter as cacheIncrement does.
func cacheIncrement(ctx context.Context, c Cache, key string, by *model.Int64, ttlSeconds *int) (*model.CacheCounterPayload, error) {
	ttl, err := ttlFromSeconds(ttlSeconds)
	if err != nil {
		return nil, err
	}
	step := int64(1)
	if by != nil {
		step = int64(*by)
	}
	n, backend, err := c.Increment(ctx, key, step, ttl)
	if err != nil {
		failure, message, ferr := writeFailure(err)
		if ferr != nil {
			return nil, ferr
		}
		return &model.CacheCounterPayload{Key: key, Failure: &failure, Message: &message}, nil
	}
	value := model.Int64(n)
	return &model.CacheCounterPayload{Key: key, Value: &value, Backend: backendModel(backend)}, nil
}

// cacheExpire sets or removes a key's TTL as cacheExpire does.
func cacheExpire(ctx context.Context, c Cache, key string, ttlSeconds *int) (*model.CacheExpirePayload, error) {
	ttl, err := ttlFromSeconds(ttlSeconds)
	if err != nil {
		return nil, err
	}
	existed, backend, err := c.Expire(ctx, key, ttl)
	if err != nil {
		failure, message, ferr := writeFailure(err)
		if ferr != nil {
			return nil, ferr
		}
		return &model.CacheExpirePayload{Key: key, Failure: &failure, Message: &message}, nil
	}
	return &model.CacheExpirePayload{Key: key, Existed: existed, Backend: backendModel(backend)}, nil
}

// cacheDeleteMany removes keys as cacheDeleteMany does: a key refused is
// null in the list, with its error at [field, index] (so ctx must be a
// field's context in a response's).
func cacheDeleteMany(ctx context.Context, c Cache, keys []string) ([]*model.CacheDeletePayload, error) {
	results, err := c.DeleteMany(ctx, keys)
	if err != nil {
		return nil, err
	}
	out := make([]*model.CacheDeletePayload, len(keys))
	for i, res := range results {
		p, err := deletePayload(keys[i], res.Deleted, res.Backend, res.Err)
		if err != nil {
			addErrorHere(atIndex(ctx, i), err)
			continue
		}
		out[i] = p
	}
	return out, nil
}

// cacheSetMany stores values as cacheSetMany does: an entry refused is
// null in the list, with its error at [field, index] (so ctx must be a
// field's context in a response's).
func cacheSetMany(ctx context.Context, c Cache, entries []*model.CacheSetInput) ([]*model.CacheSetPayload, error) {
	in := make([]cache.SetEntry, len(entries))
	refused := make([]error, len(entries))
	for i, e := range entries {
		value, err := requiredValue(e.Value.Value(), e.Value.IsSet())
		in[i] = cache.SetEntry{Key: e.Key, Value: []byte(value), Tags: e.Tags}
		in[i].TTL, refused[i] = ttlFromSeconds(e.TTLSeconds)
		if err != nil {
			refused[i] = err
		}
		if refused[i] != nil {
			in[i].Key = "" // refused here; the cache sends nothing for it
		}
	}
	results, err := c.SetMany(ctx, in)
	if err != nil {
		return nil, err
	}
	out := make([]*model.CacheSetPayload, len(entries))
	for i, res := range results {
		ctx := atIndex(ctx, i)
		if refused[i] != nil {
			addErrorHere(ctx, refused[i])
			continue
		}
		p, err := setPayload(entries[i].Key, entries[i].TTLSeconds, cache.SetResult{Backend: res.Backend}, res.Err)
		if err != nil {
			addErrorHere(ctx, err)
			continue
		}
		out[i] = p
	}
	return out, nil
}

// cacheInvalidateTags deletes the keys written with tags as
// cacheInvalidateTags does.
func cacheInvalidateTags(ctx context.Context, c Cache, tags []string) (*model.CacheInvalidatePayload, error) {
	res, err := c.InvalidateTags(ctx, tags)
	p := &model.CacheInvalidatePayload{Tags: tags, Deleted: res.Deleted, Backend: backendModel(res.Backend)}
	if err != nil {
		failure, _, ferr := writeFailure(err)
		if ferr != nil {
			return nil, ferr
		}
		message := invalidateMessage(failure, res)
		p.Failure, p.Message = &failure, &message
	}
	return p, nil
}
