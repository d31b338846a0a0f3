package cache_test

import (
	"fmt"
	"os/exec"
	"strconv"
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

// A master fails over to its replica: the hub finds the new master and
// subscribes there, so that the watcher gets one RESYNC for the gap and
// then that shard's expiries and other programs' writes again.
func TestClusterKeyspaceFollowsAFailover(t *testing.T) {
	nodes, addrs := startCluster(t, "notify-keyspace-events KEA")
	replica := redistest.Start(t, redistest.Options{Cluster: true, Config: []string{
		"cluster-node-timeout 1000", "cluster-require-full-coverage no", "notify-keyspace-events KEA",
	}})
	id, err := nodes[0].Do(t, "CLUSTER", "MYID")
	if err != nil {
		t.Fatal(err)
	}
	add := exec.Command("redis-cli", "--cluster", "add-node", replica.Addr, addrs[0], "--cluster-slave", "--cluster-master-id", strings.TrimSpace(id))
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster add-node: %v\n%s", err, out)
	}
	eventually(t, 15*time.Second, "the replica in sync", func() bool {
		info, err := replica.Do(t, "INFO", "replication")
		return err == nil && strings.Contains(info, "master_link_status:up")
	})

	opts := fastOptions("", &logBuffer{})
	opts.Addr = ""
	opts.ClusterAddrs = addrs[1:2] // not the master that fails
	c := newClient(t, opts)
	ready(t, c)
	changes := watch(t, c, cache.WatchFilter{Prefix: "fo:"})
	// A key on the master that will fail.
	key := ""
	for i := 0; key == ""; i++ {
		k := fmt.Sprintf("fo:%d", i)
		if _, err := nodes[0].Do(t, "SET", "school-erp:"+k, "1"); err == nil {
			key = k
		}
	}
	if x := next(t, changes, 5*time.Second); x.Key != key || x.Kind != cache.ChangeSet {
		t.Fatalf("before the failover: %+v; want SET %s", x, key)
	}

	nodes[0].Kill()
	eventually(t, 20*time.Second, "the replica promoted", func() bool {
		role, err := replica.Do(t, "ROLE")
		return err == nil && strings.HasPrefix(role, "[master")
	})
	// Write the key now and then with a short TTL until, after the RESYNC
	// for the gap, its expiry arrives from the new master.
	resyncs := 0
	deadline := time.After(15 * time.Second)
	write := time.NewTicker(300 * time.Millisecond)
	defer write.Stop()
	for i := 0; ; {
		select {
		case <-write.C:
			if _, err := replica.Do(t, "SET", "school-erp:"+key, strconv.Itoa(i), "PX", "100"); err != nil {
				t.Fatalf("SET on the promoted replica: %v", err)
			}
			i++
		case x := <-changes:
			if x.Kind == cache.ChangeResync {
				resyncs++
				continue
			}
			if x.Key == key && x.Kind == cache.ChangeExpired && resyncs > 0 {
				// Any other RESYNC would have come with the first.
				time.Sleep(200 * time.Millisecond)
				for more := true; more; {
					select {
					case x := <-changes:
						if x.Kind == cache.ChangeResync {
							resyncs++
						}
					default:
						more = false
					}
				}
				if resyncs != 1 {
					t.Errorf("RESYNCs across the failover = %d; want 1", resyncs)
				}
				return
			}
		case <-deadline:
			t.Fatalf("no EXPIRED of %s from the promoted master within 15s (RESYNCs %d)", key, resyncs)
		}
	}
}
