package main

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/school-erp/cache-service/internal/redistest"
)

// Subscriptions (cacheChanged over graphql-transport-ws) on the two other
// topologies, through the built binary as operators run it: on Sentinel
// they must survive a failover with one RESYNC and go on, and on Cluster
// they must hear keys of every master, the service's own writes and other
// programs' alike. TestSubscriptionSeesChangesMadeThroughAnotherInstance
// is the standalone model.

// topoEnv is testEnv without a standalone address, plus extra.
func topoEnv(extra map[string]string) map[string]string {
	env := testEnv("")
	delete(env, "REDIS_HOST")
	delete(env, "REDIS_PORT")
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// asService lets the service helpers (graphql, warm) drive a binary.
func asService(p *process) *service { return &service{url: p.url, bearer: p.bearer} }

// topoSet runs cacheSet of key through s until Redis stores it (a topology
// change may refuse a few writes), for at most within.
func topoSet(t *testing.T, s *service, key string, value any, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		r := s.graphql(t, `mutation($k: String!, $v: JSON!) { cacheSet(key: $k, value: $v) { stored } }`, map[string]any{"k": key, "v": value})
		var sp struct{ Stored bool }
		if r.Errors == nil {
			_ = json.Unmarshal(r.Data["cacheSet"], &sp)
		}
		if sp.Stored {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cacheSet(%q) not stored within %s: %+v", key, within, r)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestSubscriptionAcrossSentinelFailover(t *testing.T) {
	t.Parallel()
	_, replica, sentinels, addrs := startSentinelTopology(t)
	env := topoEnv(map[string]string{
		"REDIS_SENTINEL_ADDRS":  strings.Join(addrs, ","),
		"REDIS_SENTINEL_MASTER": "mymaster",
	})
	a, b := asService(startBinary(t, env)), asService(startBinary(t, env))
	c, _, err := dialURL(t, b.url, wsDial{})
	if err != nil {
		t.Fatal(err)
	}
	c.ack()
	c.subscribe("1", watchQuery, map[string]any{"prefix": "sn:"})
	warm(t, c, "1", a, "sn:")

	topoSet(t, a, "sn:before", map[string]any{"a": 1}, 5*time.Second)
	if x := c.change("1", 2*time.Second); x.Key != "sn:before" || x.Kind != "SET" || x.Etag == nil || *x.Etag != sha1hex(`{"a":1}`) {
		t.Fatalf("before the failover: %+v; want SET sn:before with etag %s", x, sha1hex(`{"a":1}`))
	}

	linEventually(t, 10*time.Second, "SENTINEL FAILOVER accepted", func() bool {
		_, err := sentinels[0].Do(t, "SENTINEL", "FAILOVER", "mymaster")
		if err != nil {
			time.Sleep(200 * time.Millisecond) // NOGOODSLAVE until the replica is known fresh
		}
		return err == nil
	})
	failover := time.Now()

	// The socket stays open and its one message is the RESYNC: nothing
	// was written meanwhile.
	x := c.change("1", 30*time.Second)
	if x.Kind != "RESYNC" || x.Key != "" {
		t.Fatalf("first event after SENTINEL FAILOVER = %+v; want RESYNC", x)
	}
	resyncAfter := time.Since(failover)
	// Changes may have been missed since At: from before the failover,
	// the last moment B's subscription was known to hear everything.
	if at, err := time.Parse(time.RFC3339Nano, x.At); err != nil || at.After(failover) {
		t.Errorf("RESYNC at = %q (%v); want a time before SENTINEL FAILOVER (%s)", x.At, err, failover.Format(time.RFC3339Nano))
	}

	// Both instances follow the new master; then a write through A
	// reaches B's subscription.
	for _, s := range []*service{a, b} {
		linEventually(t, 30*time.Second, "health of "+s.url+" names the new master", func() bool {
			h, ok := linRedisHealth(s.url)
			return ok && h.Status == "connected" && h.Addr == replica.Addr
		})
	}
	t.Logf("SENTINEL FAILOVER: RESYNC after %s, both instances on the new master after %s",
		resyncAfter.Round(time.Millisecond), time.Since(failover).Round(time.Millisecond))
	topoSet(t, a, "sn:after", map[string]any{"b": 2}, 10*time.Second)
	// A write the old master took before it was demoted is lost with its
	// announcement; a RESYNC may come for it. Either way sn:after comes.
	deadline := time.Now().Add(10 * time.Second)
	for {
		x := c.change("1", time.Until(deadline))
		if x.Kind == "RESYNC" {
			continue
		}
		if x.Key != "sn:after" || x.Kind != "SET" || x.Etag == nil || *x.Etag != sha1hex(`{"b":2}`) {
			t.Errorf("after the failover: %+v; want SET sn:after with etag %s", x, sha1hex(`{"b":2}`))
		}
		break
	}
	if v, err := replica.Do(t, "GET", "school-erp:sn:after"); err != nil || v != `{"b":2}` {
		t.Errorf("new master GET school-erp:sn:after = %q, %v", v, err)
	}
	if err := c.closeErr(); err != nil {
		t.Errorf("socket: %v; want it open across the failover", err)
	}
}

// startTopoCluster starts three masters with extra configuration and joins
// them into a cluster.
func startTopoCluster(t *testing.T, extra ...string) []*redistest.Server {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Fatalf("redis-cli not found (Debian's redis-tools, a dependency of redis-server): %v", err)
	}
	var nodes []*redistest.Server
	var addrs []string
	for range 3 {
		n := redistest.Start(t, redistest.Options{Cluster: true, Config: append([]string{"cluster-node-timeout 1000"}, extra...)})
		nodes = append(nodes, n)
		addrs = append(addrs, n.Addr)
	}
	create := exec.Command("redis-cli", append(append([]string{"--cluster", "create"}, addrs...), "--cluster-yes")...)
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, n := range nodes {
		linEventually(t, 15*time.Second, "cluster_state ok on "+n.Addr, func() bool {
			text, err := n.Do(t, "CLUSTER", "INFO")
			return err == nil && strings.Contains(text, "cluster_state:ok")
		})
	}
	return nodes
}

// ownerOf is the index of the node that owns key's slot: the others answer
// MOVED.
func ownerOf(t *testing.T, nodes []*redistest.Server, key string) int {
	t.Helper()
	for i, n := range nodes {
		if _, err := n.Do(t, "EXISTS", key); err == nil {
			return i
		} else if !strings.Contains(err.Error(), "MOVED") {
			t.Fatalf("EXISTS %s on %s: %v", key, n.Addr, err)
		}
	}
	t.Fatalf("no node owns %s", key)
	return -1
}

func TestSubscriptionInACluster(t *testing.T) {
	t.Parallel()
	nodes := startTopoCluster(t, "notify-keyspace-events KEA")
	// One key per master, hence in different slots.
	keys := make([]string, len(nodes))
	for i, found := 0, 0; found < len(nodes); i++ {
		if i == 1000 {
			t.Fatalf("no key on every master among 1000: %v", keys)
		}
		k := fmt.Sprintf("cl:%d", i)
		if n := ownerOf(t, nodes, "school-erp:"+k); keys[n] == "" {
			keys[n] = k
			found++
		}
	}
	slots := map[string]bool{}
	for _, k := range keys {
		s, err := nodes[0].Do(t, "CLUSTER", "KEYSLOT", "school-erp:"+k)
		if err != nil {
			t.Fatal(err)
		}
		slots[s] = true
	}
	if len(slots) != len(keys) {
		t.Fatalf("keys %v in slots %v; want one slot each", keys, slots)
	}

	// A seeds from the first node, B from the last: each discovers the rest.
	a := asService(startBinary(t, topoEnv(map[string]string{"REDIS_CLUSTER_ADDRS": nodes[0].Addr})))
	b := asService(startBinary(t, topoEnv(map[string]string{"REDIS_CLUSTER_ADDRS": nodes[2].Addr})))
	c, _, err := dialURL(t, b.url, wsDial{})
	if err != nil {
		t.Fatal(err)
	}
	c.ack()
	c.subscribe("keys", watchQuery, map[string]any{"keys": keys})
	c.subscribe("prefix", watchQuery, map[string]any{"prefix": "cl:"})
	// Both subscriptions share B's one connection to the cluster, live
	// once the later one is.
	warm(t, c, "prefix", a, "cl:")

	t.Run("cacheSet through A of keys on every master arrives on B as SET", func(t *testing.T) {
		want := map[string]string{} // "id key" -> etag
		for i, k := range keys {
			topoSet(t, a, k, i, 5*time.Second)
			want["keys "+k], want["prefix "+k] = sha1hex(strconv.Itoa(i)), sha1hex(strconv.Itoa(i))
		}
		// Each write's announcement, with its etag, on both subscriptions.
		// Its keyspace echo is dropped when it comes within the hold
		// (README, Keyspace notifications); on a loaded machine it may
		// come later, and is then a SET without etag: allowed, as the
		// README says, and logged. Anything else fails.
		echoes := 0
		deadline := time.Now().Add(5 * time.Second)
		for len(want) > 0 {
			m, ok := c.next(time.Until(deadline))
			if !ok {
				t.Fatalf("still want %v; socket closed: %v", want, c.closeErr())
			}
			var r struct {
				Data struct{ CacheChanged changeEvent } `json:"data"`
			}
			if m.Type != "next" || json.Unmarshal(m.Payload, &r) != nil {
				t.Fatalf("message %s %s %s; want an event", m.Type, m.ID, m.Payload)
			}
			x := r.Data.CacheChanged
			id := m.ID + " " + x.Key
			switch etag, wanted := want[id]; {
			case x.Kind == "SET" && x.Etag == nil && slices.Contains(keys, x.Key):
				echoes++
			case wanted && x.Kind == "SET" && x.Etag != nil && *x.Etag == etag:
				delete(want, id)
			default:
				t.Fatalf("unexpected event %s %+v; still want %v", id, x, want)
			}
		}
		for i, k := range keys {
			if v, err := nodes[i].Do(t, "GET", "school-erp:"+k); err != nil || v != strconv.Itoa(i) {
				t.Errorf("master %d GET school-erp:%s = %q, %v; want %d", i, k, v, err, i)
			}
		}
		// Late echoes, if any, and nothing else.
		for quiet := false; !quiet; {
			select {
			case m := <-c.msgs:
				var r struct {
					Data struct{ CacheChanged changeEvent } `json:"data"`
				}
				_ = json.Unmarshal(m.Payload, &r)
				if x := r.Data.CacheChanged; m.Type != "next" || x.Kind != "SET" || x.Etag != nil || !slices.Contains(keys, x.Key) {
					t.Fatalf("after the writes: %s %s %s; want nothing more", m.Type, m.ID, m.Payload)
				}
				echoes++
			case <-time.After(300 * time.Millisecond):
				quiet = true
			}
		}
		if echoes > 0 {
			t.Logf("%d keyspace echoes came after the 25 ms hold (a loaded machine)", echoes)
		}
	})

	t.Run("a write by redis-cli on each master is SET", func(t *testing.T) {
		// The per-master keyspace subscriptions may come up after the
		// service's channel, so each master gets a few tries, each with a
		// key of its own that only the prefix subscription hears.
		for n := range nodes {
			var heard string
			for try := 0; heard == "" && try < 20; try++ {
				k := ""
				for i := 0; k == ""; i++ {
					if i == 1000 {
						t.Fatalf("no key on master %d", n)
					}
					cand := fmt.Sprintf("cl:cli:%d:%d:%d", n, try, i)
					if ownerOf(t, nodes, "school-erp:"+cand) == n {
						k = cand
					}
				}
				if _, err := nodes[n].Do(t, "SET", "school-erp:"+k, `"from redis-cli"`); err != nil {
					t.Fatal(err)
				}
				select {
				case m, ok := <-c.msgs:
					if !ok {
						t.Fatalf("socket closed: %v", c.closeErr())
					}
					var r struct {
						Data struct{ CacheChanged changeEvent } `json:"data"`
					}
					_ = json.Unmarshal(m.Payload, &r)
					x := r.Data.CacheChanged
					if m.Type != "next" || m.ID != "prefix" || !strings.HasPrefix(x.Key, fmt.Sprintf("cl:cli:%d:", n)) || x.Kind != "SET" || x.Etag != nil {
						t.Fatalf("message %s %s %s; want SET of a redis-cli key on master %d without etag, on the prefix subscription", m.Type, m.ID, m.Payload, n)
					}
					heard = x.Key
				case <-time.After(500 * time.Millisecond):
				}
			}
			if heard == "" {
				t.Fatalf("no redis-cli write on master %d heard in 20 tries", n)
			}
			// Later tries' events, if any, arrive now.
			for more := true; more; {
				select {
				case m := <-c.msgs:
					if !strings.Contains(string(m.Payload), fmt.Sprintf(`"cl:cli:%d:`, n)) || !strings.Contains(string(m.Payload), `"SET"`) {
						t.Fatalf("message %s %s %s; want another redis-cli SET on master %d", m.Type, m.ID, m.Payload, n)
					}
				case <-time.After(600 * time.Millisecond):
					more = false
				}
			}
		}
	})
}
