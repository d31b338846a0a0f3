package cache

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valkey-io/valkey-go"
)

type probeResult struct {
	latency time.Duration
	server  *ServerInfo
	mode    Mode
	addr    string
	resp    int
	cluster *ClusterInfo
	// partial says why a cluster is degraded: some nodes did not answer.
	partial string
	err     error
}

// probe checks Redis: PING for latency, then INFO (version, memory,
// uptime) and CLIENT INFO (protocol) where the ACL allows them; a user that
// may not run them only leaves those fields out. A cluster is probed node
// by node.
func (c *Client) probe(ctx context.Context, vk *valkeyClient) probeResult {
	ctx, cancel := context.WithTimeout(ctx, c.opts.DialTimeout+c.opts.CommandTimeout)
	defer cancel()
	mode := Mode(vk.Mode())
	if mode == ModeCluster {
		return c.probeCluster(ctx, vk)
	}
	dc, release, latency, err := pingDedicated(ctx, vk)
	defer release()
	if err != nil {
		return probeResult{err: err}
	}
	p := probeResult{latency: latency, mode: mode, addr: c.addrs}
	if mode == ModeSentinel {
		for addr := range vk.Nodes() {
			p.addr = addr // the current master
		}
	}
	p.server = serverInfo(ctx, dc)
	p.resp = respVersion(ctx, dc)
	return p
}

func (c *Client) probeCluster(ctx context.Context, vk *valkeyClient) probeResult {
	nodes := vk.Nodes()
	type answer struct {
		addr    string
		latency time.Duration
		err     error
	}
	answers := make([]answer, 0, len(nodes))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for addr, node := range nodes {
		wg.Go(func() {
			_, release, latency, err := pingDedicated(ctx, node)
			defer release()
			mu.Lock()
			answers = append(answers, answer{addr, latency, err})
			mu.Unlock()
		})
	}
	wg.Wait()
	sort.Slice(answers, func(i, j int) bool { return answers[i].addr < answers[j].addr })

	p := probeResult{mode: ModeCluster, addr: c.addrs, cluster: &ClusterInfo{Nodes: len(answers)}}
	var down []string
	var firstErr error
	var reachable valkey.Client
	for _, a := range answers {
		if a.err != nil {
			down = append(down, a.addr)
			if firstErr == nil {
				firstErr = fmt.Errorf("%s: %w", a.addr, a.err)
			}
			continue
		}
		p.cluster.Reachable++
		p.latency = max(p.latency, a.latency) // the slowest node is the one requests wait on
		if reachable == nil {
			reachable = nodes[a.addr]
		}
	}
	if reachable == nil {
		if firstErr == nil {
			firstErr = fmt.Errorf("no cluster node known")
		}
		return probeResult{err: firstErr}
	}
	if len(down) > 0 {
		p.partial = fmt.Sprintf("%d of %d cluster nodes unreachable: %s", len(down), len(answers), strings.Join(down, ","))
	}
	dc, release := reachable.Dedicate()
	defer release()
	if text, err := dc.Do(ctx, dc.B().ClusterInfo().Build().Pin()).ToString(); err == nil {
		fields := infoFields(text)
		p.cluster.State = fields["cluster_state"]
		p.cluster.KnownNodes, _ = strconv.Atoi(fields["cluster_known_nodes"])
		if p.cluster.State != "" && p.cluster.State != "ok" && p.partial == "" {
			p.partial = "cluster_state is " + p.cluster.State
		}
	}
	p.server = serverInfo(ctx, dc)
	p.resp = respVersion(ctx, dc)
	return p
}

// The probe's commands run on a dedicated connection (valkey-go's
// Dedicate). Requests share the pipelined connections, and valkey-go makes
// every command on a connection wait for its redial whatever their own
// deadlines: if the probe, with its longer deadline, redialled one of those,
// requests would wait on it.

// pingDedicated PINGs on a dedicated connection and returns it for more
// commands. A connection that the server or the network had closed (an
// idle pooled one after CLIENT KILL, say) gets one more try on a fresh
// connection: one closed connection is not an outage.
func pingDedicated(ctx context.Context, vk valkey.Client) (valkey.DedicatedClient, func(), time.Duration, error) {
	dc, release := vk.Dedicate()
	latency, err := ping(ctx, dc)
	if err != nil && ctx.Err() == nil && brokenConnection(err) {
		release()
		dc, release = vk.Dedicate()
		latency, err = ping(ctx, dc)
	}
	return dc, release, latency, err
}

// brokenConnection reports whether err says an established connection
// was closed under a command, rather than that none could be opened, that
// the server answered with an error, or that a deadline passed.
func brokenConnection(err error) bool {
	var dErr *dialError
	_, isReply := valkey.IsValkeyErr(err)
	return !isReply && !errors.As(err, &dErr) && !isTimeout(err)
}

func ping(ctx context.Context, c valkey.CoreClient) (time.Duration, error) {
	start := time.Now()
	if err := c.Do(ctx, c.B().Ping().Build().Pin()).Error(); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func serverInfo(ctx context.Context, c valkey.CoreClient) *ServerInfo {
	text, err := c.Do(ctx, c.B().Info().Build().Pin()).ToString()
	if err != nil {
		return nil
	}
	return parseInfo(text)
}

// respVersion asks the server which protocol this connection speaks
// (CLIENT INFO, Redis 6.2 and later); 0 when it cannot tell.
func respVersion(ctx context.Context, c valkey.CoreClient) int {
	text, err := c.Do(ctx, c.B().ClientInfo().Build().Pin()).ToString()
	if err != nil {
		return 0
	}
	for _, kv := range strings.Fields(text) {
		if v, ok := strings.CutPrefix(kv, "resp="); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

// infoFields splits "key:value" lines of INFO-style replies. Over RESP3
// these come as verbatim strings, whose "txt:" format prefix valkey-go keeps.
func infoFields(text string) map[string]string {
	text = strings.TrimPrefix(text, "txt:")
	out := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			out[k] = v
		}
	}
	return out
}
