package cache_test

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/school-erp/cache-service/cache"
)

// While Redis cannot be reached, operations return at once: a read is a
// miss with ErrUnavailable, a write reports that nothing was stored.
func ExampleClient_redisDown() {
	// A port nothing listens on.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()

	c, err := cache.New(cache.Options{Addr: addr})
	if err != nil {
		panic(err)
	}
	defer c.Close()

	ctx := context.Background()
	value, _, err := c.Get(ctx, "student:42")
	fmt.Println("found:", value != nil, "unavailable:", errors.Is(err, cache.ErrUnavailable))

	_, err = c.SetValue(ctx, "student:42", map[string]string{"name": "Ada"}, 0)
	fmt.Println("stored:", err == nil, "unavailable:", errors.Is(err, cache.ErrUnavailable))

	fmt.Println("status:", c.Health().Status)
	// Output:
	// found: false unavailable: true
	// stored: false unavailable: true
	// status: disconnected
}
