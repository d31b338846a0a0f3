package graph

//go:generate go tool gqlgen generate

import (
	"context"
	"encoding/json"
	"time"

	"github.com/school-erp/cache-service/cache"
)

// Cache is what the resolvers need from the cache client; *cache.Client
// implements it.
type Cache interface {
	Get(ctx context.Context, key string) (json.RawMessage, cache.Backend, error)
	GetRead(ctx context.Context, key string) cache.Read
	GetMany(ctx context.Context, keys []string) ([]cache.Read, error)
	Set(ctx context.Context, key string, value json.RawMessage, ttl time.Duration) (cache.Backend, error)
	Delete(ctx context.Context, key string) (bool, cache.Backend, error)
	Exists(ctx context.Context, key string) (bool, cache.Backend, error)
	GetEntry(ctx context.Context, key string) (*cache.Entry, error)
	SetWith(ctx context.Context, key string, value json.RawMessage, opts cache.SetOptions) (cache.SetResult, error)
	SetMany(ctx context.Context, entries []cache.SetEntry) ([]cache.WriteResult, error)
	DeleteMany(ctx context.Context, keys []string) ([]cache.DeleteResult, error)
	Increment(ctx context.Context, key string, by int64, ttl time.Duration) (int64, cache.Backend, error)
	Expire(ctx context.Context, key string, ttl time.Duration) (bool, cache.Backend, error)
	InvalidateTags(ctx context.Context, tags []string) (cache.InvalidateResult, error)
	Fetch(ctx context.Context, key string, leaseTTL, wait time.Duration) (cache.FetchResult, error)
	Health() cache.Health
}

var _ Cache = (*cache.Client)(nil)

// Resolver holds the resolvers' dependencies.
type Resolver struct {
	Cache Cache
	// Changes serves the subscriptions; nil refuses them.
	Changes Changes
}
