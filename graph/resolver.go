package graph

//go:generate go tool gqlgen generate

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/school-erp/cache-service/cache"
)

// Cache is what the resolvers need from the cache client; *cache.Client
// implements it.
type Cache interface {
	Get(ctx context.Context, key string) (json.RawMessage, bool, error)
	Set(ctx context.Context, key string, value json.RawMessage, ttl time.Duration) error
	Delete(ctx context.Context, key string) (bool, error)
	Exists(ctx context.Context, key string) (bool, error)
	Health() cache.Health
}

// Resolver holds the resolvers' dependencies.
type Resolver struct {
	Cache  Cache
	Logger *slog.Logger
}
