package cache_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/school-erp/cache-service/cache"
	"github.com/school-erp/cache-service/internal/redistest"
)

// eventually polls cond every 20ms until it is true or within passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true within %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func infoField(t *testing.T, srv *redistest.Server, section, field string) string {
	t.Helper()
	text, err := srv.Do(t, "INFO", section)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}

func TestACLUser(t *testing.T) {
	base := "user cache-svc on >svc-pw ~school-erp:* +get +set +del +exists +ping +hello +client|setname +client|info"
	cached := " +client|tracking +client|caching +multi +exec +pttl"
	tests := []struct {
		name        string
		acl         string
		wantInfo    bool
		clientCache cache.ClientCacheState
	}{
		{"minimal commands and INFO", base + " +info", true, cache.ClientCacheUnsupported},
		{"minimal commands without INFO", base, false, cache.ClientCacheUnsupported},
		// Tracking allowed, but not what a cached read sends: reads must
		// still work, without the cache.
		{"tracking without MULTI and EXEC", base + " +client|tracking", false, cache.ClientCacheUnsupported},
		{"everything client-side caching needs", base + cached + " +info", true, cache.ClientCacheOn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := redistest.Start(t, redistest.Options{Config: []string{"user default off", tt.acl}})
			logs := &logBuffer{}
			opts := fastOptions(srv.Addr, logs)
			opts.Username, opts.Password = "cache-svc", "svc-pw"
			c := newClient(t, opts)
			ready(t, c)
			ctx := context.Background()
			if err := set(ctx, c, "k", json.RawMessage(`{"ok":1}`), time.Minute); err != nil {
				t.Fatalf("Set() error = %v", err)
			}
			for range 5 {
				if got, ok, err := get(ctx, c, "k"); err != nil || !ok || string(got) != `{"ok":1}` {
					t.Fatalf("Get() = %s, %v, %v", got, ok, err)
				}
			}
			if ok, err := exists(ctx, c, "k"); err != nil || !ok {
				t.Errorf("Exists() = %v, %v", ok, err)
			}
			if ok, err := del(ctx, c, "k"); err != nil || !ok {
				t.Errorf("Delete() = %v, %v", ok, err)
			}
			h := waitStatus(t, c, cache.StatusConnected, 5*time.Second)
			if (h.Server != nil) != tt.wantInfo {
				t.Errorf("Health().Server = %v; want INFO fields %v", h.Server, tt.wantInfo)
			}
			if h.RESP != 3 || h.ClientCache != tt.clientCache {
				t.Errorf("Health() RESP %d, client cache %s; want 3, %s", h.RESP, h.ClientCache, tt.clientCache)
			}
			if n := logs.count("redis unreachable"); n != 0 {
				t.Errorf("%d outage lines for a reachable Redis:\n%s", n, strings.Join(logs.Lines(), "\n"))
			}
		})
	}
}

func TestSentinelFailover(t *testing.T) {
	master := redistest.Start(t, redistest.Options{})
	replica := redistest.Start(t, redistest.Options{Config: []string{"replicaof 127.0.0.1 " + strconv.Itoa(master.Port)}})
	eventually(t, 10*time.Second, "replica in sync", func() bool {
		return infoField(t, replica, "replication", "master_link_status") == "up"
	})
	var sentinels []*redistest.Server
	var addrs []string
	for range 3 {
		s := redistest.Start(t, redistest.Options{Sentinel: true, Config: []string{
			"sentinel monitor mymaster 127.0.0.1 " + strconv.Itoa(master.Port) + " 2",
			"sentinel down-after-milliseconds mymaster 500",
			"sentinel failover-timeout mymaster 3000",
		}})
		sentinels = append(sentinels, s)
		addrs = append(addrs, s.Addr)
	}
	// A failover needs the Sentinels to know each other (hello messages
	// every 2s) to elect a leader.
	for _, s := range sentinels {
		eventually(t, 15*time.Second, "sentinels discover each other", func() bool {
			text, err := s.Do(t, "SENTINEL", "SENTINELS", "mymaster")
			return err == nil && strings.Count(text, "runid:") >= 2
		})
	}

	logs := &logBuffer{}
	opts := fastOptions("", logs)
	opts.Addr = ""
	opts.Sentinel = cache.SentinelOptions{Addrs: addrs, MasterSet: "mymaster"}
	c := newClient(t, opts)
	ready(t, c)
	ctx := context.Background()
	changes := watch(t, c, cache.WatchFilter{Prefix: "w:"})
	if err := set(ctx, c, "w:before", json.RawMessage(`1`), 0); err != nil {
		t.Fatal(err)
	}
	if x := next(t, changes, 2*time.Second); x.Kind != cache.ChangeSet || x.Key != "w:before" {
		t.Errorf("change before the failover = %+v; want SET w:before", x)
	}
	if err := set(ctx, c, "before", json.RawMessage(`1`), 0); err != nil {
		t.Fatalf("Set() before failover error = %v", err)
	}
	if h := waitStatus(t, c, cache.StatusConnected, 5*time.Second); h.Mode != cache.ModeSentinel || h.Addr != master.Addr {
		t.Errorf("Health() = mode %s addr %s; want sentinel, master %s", h.Mode, h.Addr, master.Addr)
	}
	eventually(t, 10*time.Second, "replica has the value", func() bool {
		v, err := replica.Do(t, "GET", "school-erp:before")
		return err == nil && v == "1"
	})

	master.Kill()
	killed := time.Now()
	// Writes resume against the promoted replica without a restart.
	eventually(t, 30*time.Second, "writes succeed after failover", func() bool {
		return set(ctx, c, "probe", json.RawMessage(`true`), 0) == nil
	})
	t.Logf("writes resumed %s after the master was killed", time.Since(killed).Round(time.Millisecond))

	// The watcher's subscription moved to the new master, with one RESYNC
	// for what it may have missed.
	if x := next(t, changes, 10*time.Second); x.Kind != cache.ChangeResync || x.At.After(killed) {
		t.Errorf("change after the failover = %+v; want RESYNC since before the kill", x)
	}
	time.Sleep(100 * time.Millisecond)
	if err := set(ctx, c, "w:after", json.RawMessage(`2`), 0); err != nil {
		t.Fatal(err)
	}
	if x := next(t, changes, 5*time.Second); x.Kind != cache.ChangeSet || x.Key != "w:after" {
		t.Errorf("change after the RESYNC = %+v; want SET w:after", x)
	}

	// Every operation works against the new master.
	exerciseOperations(t, c, "sentinel:")

	// Nothing written after the failover is lost.
	for i := range 50 {
		if err := set(ctx, c, fmt.Sprintf("after:%d", i), json.RawMessage(strconv.Itoa(i)), 0); err != nil {
			t.Fatalf("Set(after:%d) error = %v", i, err)
		}
	}
	for i := range 50 {
		got, ok, err := get(ctx, c, fmt.Sprintf("after:%d", i))
		if err != nil || !ok || string(got) != strconv.Itoa(i) {
			t.Errorf("Get(after:%d) = %s, %v, %v", i, got, ok, err)
		}
		if v, err := replica.Do(t, "GET", fmt.Sprintf("school-erp:after:%d", i)); err != nil || v != strconv.Itoa(i) {
			t.Errorf("new master GET after:%d = %q, %v", i, v, err)
		}
	}
	if v, ok, err := get(ctx, c, "before"); err != nil || !ok || string(v) != "1" {
		t.Errorf("Get(before) after failover = %s, %v, %v; want the replicated value", v, ok, err)
	}
	eventually(t, 5*time.Second, "health names the new master", func() bool {
		h := c.Health()
		return h.Status == cache.StatusConnected && h.Addr == replica.Addr
	})
}

// startCluster starts three masters on free ports and joins them into a
// cluster that keeps serving the other slots while one master is down;
// extra is more configuration for every node.
func startCluster(t *testing.T, extra ...string) ([]*redistest.Server, []string) {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Fatalf("redis-cli not found (Debian's redis-tools, a dependency of redis-server): %v", err)
	}
	var nodes []*redistest.Server
	var addrs []string
	for range 3 {
		n := redistest.Start(t, redistest.Options{Cluster: true, Config: append([]string{
			"cluster-node-timeout 1000",
			// Keys on the surviving masters keep working while one is down.
			"cluster-require-full-coverage no",
		}, extra...)})
		nodes = append(nodes, n)
		addrs = append(addrs, n.Addr)
	}
	create := exec.Command("redis-cli", append(append([]string{"--cluster", "create"}, addrs...), "--cluster-yes")...)
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, n := range nodes {
		eventually(t, 15*time.Second, "cluster_state ok on "+n.Addr, func() bool {
			text, err := n.Do(t, "CLUSTER", "INFO")
			return err == nil && strings.Contains(text, "cluster_state:ok")
		})
	}
	return nodes, addrs
}

func TestCluster(t *testing.T) {
	nodes, addrs := startCluster(t)

	opts := fastOptions("", &logBuffer{})
	opts.Addr = ""
	opts.ClusterAddrs = addrs[:1] // one seed; the rest is discovered
	c := newClient(t, opts)
	ready(t, c)
	ctx := context.Background()

	const keys = 200
	changes := watch(t, c, cache.WatchFilter{Prefix: "key:"})
	for i := range keys {
		if err := set(ctx, c, fmt.Sprintf("key:%d", i), json.RawMessage(strconv.Itoa(i)), 0); err != nil {
			t.Fatalf("Set(key:%d) error = %v", i, err)
		}
	}
	// Announcements are classic pub/sub, which a cluster broadcasts: keys
	// of every slot arrive on the one subscription.
	for i := range keys {
		if x := next(t, changes, 2*time.Second); x.Kind != cache.ChangeSet || x.Key != fmt.Sprintf("key:%d", i) {
			t.Fatalf("change %d = %+v; want SET key:%d", i, x, i)
		}
	}
	// Where did each key land? Ask every node directly.
	owner := make([]int, keys)
	for i := range keys {
		owner[i] = -1
		for n, node := range nodes {
			if v, _ := node.Do(t, "EXISTS", fmt.Sprintf("school-erp:key:%d", i)); v == "1" {
				owner[i] = n
			}
		}
		if owner[i] < 0 {
			t.Fatalf("key:%d is on no node", i)
		}
	}
	perNode := make([]int, len(nodes))
	for _, o := range owner {
		perNode[o]++
	}
	for n, count := range perNode {
		if count == 0 {
			t.Errorf("node %d holds none of %d keys; want keys in every slot range", n, keys)
		}
	}
	for i := range keys {
		got, ok, err := get(ctx, c, fmt.Sprintf("key:%d", i))
		if err != nil || !ok || string(got) != strconv.Itoa(i) {
			t.Fatalf("Get(key:%d) = %s, %v, %v", i, got, ok, err)
		}
	}
	h := waitStatus(t, c, cache.StatusConnected, 5*time.Second)
	if h.Mode != cache.ModeCluster || h.Cluster == nil || h.Cluster.State != "ok" || h.Cluster.Reachable != 3 || h.Cluster.KnownNodes != 3 {
		t.Errorf("Health() = mode %s cluster %+v; want cluster, state ok, 3 of 3 reachable", h.Mode, h.Cluster)
	}

	const dead = 1
	nodes[dead].Kill()
	eventually(t, 5*time.Second, "health sees a node down", func() bool {
		h := c.Health()
		return h.Status == cache.StatusDegraded && h.Cluster != nil && h.Cluster.Reachable == 2
	})
	for i := range keys {
		key := fmt.Sprintf("key:%d", i)
		got, ok, err := get(ctx, c, key)
		if owner[i] == dead {
			if ok || !(errors.Is(err, cache.ErrUnavailable) || errors.Is(err, cache.ErrNoReply)) {
				t.Errorf("Get(%s) on the dead node = %s, %v, %v; want a miss with an outage error", key, got, ok, err)
			}
			if err := set(ctx, c, key, json.RawMessage(`0`), 0); err == nil {
				t.Errorf("Set(%s) on the dead node reported stored", key)
			}
			continue
		}
		if err != nil || !ok || string(got) != strconv.Itoa(i) {
			t.Errorf("Get(%s) on a live node = %s, %v, %v; want the value", key, got, ok, err)
		}
		if err := set(ctx, c, key, json.RawMessage(`-1`), 0); err != nil {
			t.Errorf("Set(%s) on a live node error = %v", key, err)
		}
	}
	if h := c.Health(); h.Status == cache.StatusDisconnected {
		t.Errorf("Health().Status = %s with 2 of 3 masters up; want degraded", h.Status)
	}
}

// A server without HELLO (Redis 5, some managed services) speaks only RESP2:
// the client connects anyway and health says which protocol it got.
func TestServerWithoutRESP3(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Password: "pw", Config: []string{`rename-command HELLO ""`}})
	logs := &logBuffer{}
	opts := fastOptions(srv.Addr, logs)
	opts.Password = "pw"
	c := newClient(t, opts)
	ready(t, c)
	if err := set(context.Background(), c, "k", json.RawMessage(`[1]`), 0); err != nil {
		t.Fatalf("Set() over RESP2 error = %v", err)
	}
	if got, ok, err := get(context.Background(), c, "k"); err != nil || !ok || string(got) != "[1]" {
		t.Errorf("Get() over RESP2 = %s, %v, %v", got, ok, err)
	}
	if h := waitStatus(t, c, cache.StatusConnected, 5*time.Second); h.RESP != 2 || h.Server == nil || h.ClientCache != cache.ClientCacheUnsupported {
		t.Errorf("Health() RESP %d, server %v, client cache %s; want 2 with INFO fields, client cache unsupported", h.RESP, h.Server, h.ClientCache)
	}
	if n := logs.count("refused client tracking"); n != 1 {
		t.Errorf("%d lines about client tracking being refused; want 1", n)
	}
}

// An ACL user with exactly the commands README lists can do everything the
// service does, the operations beyond get and set included.
func TestACLUserForEveryOperation(t *testing.T) {
	const readme = "~school-erp:* +get +set +del +exists +ping +hello +client|setname +client|info +info +client|tracking +client|caching +multi +exec +pttl +incrby +pexpire +persist +evalsha +eval +zadd +zscan +zrange +zscore +zrem +time +scan +publish +psubscribe +punsubscribe allchannels"
	srv := redistest.Start(t, redistest.Options{Config: []string{"user cache-svc on >svc-pw " + readme}})
	opts := fastOptions(srv.Addr, &logBuffer{})
	opts.Username, opts.Password = "cache-svc", "svc-pw"
	c := newClient(t, opts)
	ready(t, c)
	ctx := context.Background()
	changes := watch(t, c, cache.WatchFilter{Keys: []string{"k", "n"}})
	steps := map[string]func() error{
		"set with tags": func() error {
			_, err := c.SetWith(ctx, "k", json.RawMessage(`1`), cache.SetOptions{Tags: []string{"t"}, TTL: time.Minute})
			return err
		},
		"compare-and-set": func() error {
			_, err := c.SetWith(ctx, "k", json.RawMessage(`2`), cache.SetOptions{Condition: cache.Condition{IfETag: cache.ETag([]byte("1"))}})
			return err
		},
		"entry":     func() error { _, err := c.GetEntry(ctx, "k"); return err },
		"increment": func() error { _, _, err := c.Increment(ctx, "n", 1, time.Minute); return err },
		"expire":    func() error { _, _, err := c.Expire(ctx, "n", 0); return err },
		"invalidate": func() error {
			_, err := c.InvalidateTags(ctx, []string{"t"})
			return err
		},
	}
	for _, name := range []string{"set with tags", "compare-and-set", "entry", "increment", "expire", "invalidate"} {
		if err := steps[name](); err != nil {
			t.Errorf("%s as the README's ACL user = %v", name, err)
		}
	}
	if h := c.Health(); h.ClientCache != cache.ClientCacheOn {
		t.Errorf("Health().ClientCache = %s for the README's ACL user; want on", h.ClientCache)
	}
	// The writes were announced and heard: set, compare-and-set,
	// increment, expire, invalidate.
	for _, want := range []cache.ChangeKind{cache.ChangeSet, cache.ChangeSet, cache.ChangeIncremented, cache.ChangeTTL, cache.ChangeInvalidated} {
		if x := next(t, changes, 2*time.Second); x.Kind != want {
			t.Errorf("change = %+v; want %s", x, want)
		}
	}
	// Without +config the notification setting cannot be read.
	if got := c.Health().KeyspaceNotifications; got != cache.KeyspaceUnknown {
		t.Errorf("Health().KeyspaceNotifications = %s without CONFIG GET; want unknown", got)
	}
}
