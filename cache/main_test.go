package cache_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test closes what it opens: no goroutine of the client (monitor,
// valkey-go's connections, a dial still running aside) may outlive it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// valkey-go's cluster client delays a topology refresh after a
		// MOVED or a node failure with a goroutine that sleeps under a
		// second and then finds the client closed; it is valkey-go's, it
		// ends by itself, and Close cannot wait for it.
		goleak.IgnoreAnyFunction("github.com/valkey-io/valkey-go.(*call).DelayDo.func1"),
		// After a topology change (a failover) it closes the connections of
		// nodes no longer in the cluster 5 s later, from a goroutine that
		// sleeps; also valkey-go's, and it ends by itself.
		goleak.IgnoreAnyFunction("github.com/valkey-io/valkey-go.(*clusterClient)._refresh.func2"),
	)
}
