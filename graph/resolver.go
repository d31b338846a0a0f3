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
	GetMany(ctx context.Context, keys []string) ([]cache.Read, error)
	Set(ctx context.Context, key string, value json.RawMessage, ttl time.Duration) (cache.Backend, error)
	Delete(ctx context.Context, key string) (bool, cache.Backend, error)
	Exists(ctx context.Context, key string) (bool, cache.Backend, error)
	Health() cache.Health
}

var _ Cache = (*cache.Client)(nil)

// Resolver holds the resolvers' dependencies.
type Resolver struct {
	Cache Cache
}
