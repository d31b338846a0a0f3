package cache_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/school-erp/cache-service/cache"
	"github.com/school-erp/cache-service/internal/redistest"
)

// setOnOwner writes a key as another program would, on the master that
// owns its slot (the others answer MOVED), and returns that master's index.
func setOnOwner(t *testing.T, nodes []*redistest.Server, args ...string) int {
	t.Helper()
	for i, n := range nodes {
		if _, err := n.Do(t, args...); err == nil {
			return i
		} else if !strings.Contains(err.Error(), "MOVED") {
			t.Fatalf("%v on %s: %v", args, n.Addr, err)
		}
	}
	t.Fatalf("%v: no node took it", args)
	return -1
}

// In a cluster each master sends keyspace notifications only for its own
// keys: a watcher hears other programs' writes and expiries from every
// master, and after a master's subscription is cut, one RESYNC and then
// that master's events again.
func TestClusterKeyspaceNotificationsFromEveryMaster(t *testing.T) {
	nodes, addrs := startCluster(t, "notify-keyspace-events KEA")
	opts := fastOptions("", &logBuffer{})
	opts.Addr = ""
	opts.ClusterAddrs = addrs[:1]
	c := newClient(t, opts)
	ready(t, c)
	changes := watch(t, c, cache.WatchFilter{Prefix: "ks:"})

	const keys = 30
	perNode := make([]int, len(nodes))
	for i := range keys {
		perNode[setOnOwner(t, nodes, "SET", fmt.Sprintf("school-erp:ks:%d", i), "1", "PX", "300")]++
	}
	for n, count := range perNode {
		if count == 0 {
			t.Fatalf("node %d holds none of %d keys; want keys on every master", n, keys)
		}
	}
	// Each key: SET and TTL_CHANGED (held, as any write may be the
	// service's own) and then EXPIRED.
	want := map[string]bool{}
	for i := range keys {
		want[fmt.Sprintf("ks:%d SET", i)] = true
		want[fmt.Sprintf("ks:%d EXPIRED", i)] = true
	}
	deadline := time.After(10 * time.Second)
	for len(want) > 0 {
		select {
		case x := <-changes:
			if x.Kind == cache.ChangeResync {
				t.Fatalf("RESYNC %+v with every master up", x)
			}
			delete(want, x.Key+" "+string(x.Kind))
		case <-deadline:
			t.Fatalf("within 10s, missing %d changes: %v", len(want), want)
		}
	}

	// Cut every master's subscription to this client; each is made again.
	for _, n := range nodes {
		if _, err := n.Do(t, "CLIENT", "KILL", "TYPE", "pubsub"); err != nil {
			t.Fatalf("CLIENT KILL on %s: %v", n.Addr, err)
		}
	}
	sawResync := false
	eventually(t, 10*time.Second, "every master heard again after the cut", func() bool {
		for _, n := range nodes {
			if v, err := n.Do(t, "PUBSUB", "NUMPAT"); err != nil || v == "0" {
				return false
			}
		}
		return true
	})
	for i := range keys {
		setOnOwner(t, nodes, "SET", fmt.Sprintf("school-erp:ks:%d", i), "2")
	}
	want = map[string]bool{}
	for i := range keys {
		want[fmt.Sprintf("ks:%d SET", i)] = true
	}
	deadline = time.After(10 * time.Second)
	for len(want) > 0 {
		select {
		case x := <-changes:
			if x.Kind == cache.ChangeResync {
				sawResync = true
				continue
			}
			delete(want, x.Key+" "+string(x.Kind))
		case <-deadline:
			t.Fatalf("after the cut, within 10s, missing %d changes: %v", len(want), want)
		}
	}
	if !sawResync {
		t.Error("no RESYNC after every subscription was cut")
	}
}
