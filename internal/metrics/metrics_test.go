package metrics

import (
	"context"
	"encoding/json"
	"sort"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/school-erp/cache-service/cache"
	"github.com/school-erp/cache-service/internal/redistest"
)

// operationSeries is every cache_operations_total series in the registry.
func operationSeries(t *testing.T, m *Metrics) map[opKey]float64 {
	t.Helper()
	families, err := m.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[opKey]float64{}
	for _, f := range families {
		if f.GetName() != "cache_operations_total" {
			continue
		}
		for _, s := range f.GetMetric() {
			out[keyOf(s)] = s.GetCounter().GetValue()
		}
	}
	return out
}

func keyOf(s *dto.Metric) opKey {
	var k opKey
	for _, l := range s.GetLabel() {
		switch l.GetName() {
		case "op":
			k.op = cache.Op(l.GetValue())
		case "outcome":
			k.outcome = cache.Outcome(l.GetValue())
		case "backend":
			if l.GetValue() != "none" {
				k.backend = cache.Backend(l.GetValue())
			}
		}
	}
	return k
}

func TestOnlyPossibleSeriesAreCreatedUpFront(t *testing.T) {
	t.Parallel()
	series := operationSeries(t, New())
	for _, impossible := range []opKey{
		{cache.OpSet, cache.OutcomeHit, cache.BackendRedis},
		{cache.OpGet, cache.OutcomeStored, cache.BackendRedis},
		{cache.OpGet, cache.OutcomeHit, ""},
		{cache.OpGet, cache.OutcomeInvalid, cache.BackendMemory},
		{cache.OpDelete, cache.OutcomeLeaseGranted, cache.BackendRedis},
		{cache.OpFetch, cache.OutcomeMiss, cache.BackendRedis},
		{cache.OpIncrement, cache.OutcomeConditionNotMet, cache.BackendRedis},
	} {
		if _, ok := series[impossible]; ok {
			t.Errorf("series %+v created up front; that op cannot produce it", impossible)
		}
	}
	for _, op := range cache.Ops {
		if _, ok := series[opKey{op, cache.OutcomeInvalid, ""}]; !ok {
			t.Errorf("no series for %s/invalid/none up front: every op refuses bad input", op)
		}
	}
	if len(series) > 150 {
		t.Errorf("%d series up front; want only the possible ones (12 ops × 13 outcomes × 3 backends is 468)", len(series))
	}
}

// TestSeriesCreatedUpFrontCoverWhatOpsProduce runs every op through the
// outcomes it can reach, against a real Redis, then with Redis gone (the
// memory fallback answering, and without one), and fails on any series
// that only appeared when it happened: produces or backendsOf then misses
// a combination the cache produces.
func TestSeriesCreatedUpFrontCoverWhatOpsProduce(t *testing.T) {
	t.Parallel()
	m := New()
	upFront := operationSeries(t, m)
	srv := redistest.Start(t, redistest.Options{})
	ctx := context.Background()
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	v := json.RawMessage(`1`)

	exercise := func(c *cache.Client, redisUp bool) {
		_, _ = c.Set(ctx, "k", v, 0)
		_, _ = c.Set(ctx, "", v, 0)
		_, _ = c.Set(canceled, "k", v, 0)
		_, _ = c.SetWith(ctx, "k", v, cache.SetOptions{Condition: cache.Condition{IfAbsent: true}})
		_, _ = c.SetWith(ctx, "k", v, cache.SetOptions{Lease: "0123456789abcdef0123456789abcdef"})
		for _, key := range []string{"k", "absent", "", "h"} {
			_, _, _ = c.Get(ctx, key)
			_, _, _ = c.Exists(ctx, key)
			_, _ = c.GetEntry(ctx, key)
			_, _ = c.Fetch(ctx, key, time.Second, 0)
		}
		_, _, _ = c.Get(canceled, "k")
		_, _ = c.Fetch(ctx, "fetched", time.Second, 0) // the lease
		_, _ = c.Fetch(ctx, "fetched", time.Second, 0) // pending
		_, _ = c.Fetch(ctx, "k", 0, 0)                 // invalid
		_, _ = c.GetMany(ctx, []string{"k", "absent"})
		_, _ = c.GetMany(ctx, []string{"absent", ""})
		_, _ = c.GetMany(ctx, []string{"k", "h"})
		_, _ = c.GetMany(ctx, make([]string, cache.MaxGetManyKeys+1))
		_, _, _ = c.Increment(ctx, "n", 1, 0)
		_, _, _ = c.Increment(ctx, "k-text", 1, 0)
		_, _, _ = c.Increment(ctx, "", 1, 0)
		_, _, _ = c.Expire(ctx, "k", time.Minute)
		_, _, _ = c.Expire(ctx, "absent", time.Minute)
		_, _, _ = c.Expire(ctx, "", time.Minute)
		_, _ = c.SetMany(ctx, []cache.SetEntry{{Key: "a", Value: v, Tags: []string{"t"}}, {Key: "b", Value: v}})
		_, _ = c.SetMany(ctx, []cache.SetEntry{{Key: "a", Value: v}, {Key: "", Value: v}})
		_, _ = c.InvalidateTags(ctx, []string{"t"})
		_, _ = c.InvalidateTags(ctx, []string{"t"})
		_, _ = c.InvalidateTags(ctx, []string{""})
		_, _ = c.SetMany(ctx, []cache.SetEntry{{Key: "a", Value: v}, {Key: "b", Value: v}})
		_, _ = c.DeleteMany(ctx, []string{"a", "absent"})
		_, _ = c.DeleteMany(ctx, []string{"b", ""})
		_, _, _ = c.Delete(ctx, "k")
		_, _, _ = c.Delete(ctx, "k")
		_, _, _ = c.Delete(ctx, "")
		if redisUp {
			if _, err := srv.Do(t, "HSET", "school-erp:h", "f", "v"); err != nil {
				t.Fatal(err)
			}
			if _, err := srv.Do(t, "SET", "school-erp:k-text", "not a number"); err != nil {
				t.Fatal(err)
			}
		}
	}

	for _, fallback := range []cache.FallbackMode{cache.FallbackMemory, cache.FallbackNone} {
		c, err := cache.New(cache.Options{Addr: srv.Addr, Fallback: fallback, Observer: m,
			ReconnectMinBackoff: 10 * time.Millisecond, ReconnectMaxBackoff: 50 * time.Millisecond, ProbeInterval: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		waitCtx, done := context.WithTimeout(ctx, 5*time.Second)
		if err := c.WaitReady(waitCtx); err != nil {
			t.Fatal(err)
		}
		done()
		exercise(c, true)
		exercise(c, true) // now with the hash and the text key in place
		srv.Kill()
		for deadline := time.Now().Add(5 * time.Second); c.Health().Status != cache.StatusDisconnected; {
			if time.Now().After(deadline) {
				t.Fatal("client not disconnected 5s after Redis was killed")
			}
			time.Sleep(10 * time.Millisecond)
		}
		exercise(c, false)
		c.Close()
		srv.Start()
	}

	var late []string
	for k, n := range operationSeries(t, m) {
		if _, ok := upFront[k]; !ok {
			late = append(late, string(k.op)+"/"+string(k.outcome)+"/"+backendLabel(k.backend)+" ("+jsonNumber(n)+")")
		}
	}
	sort.Strings(late)
	for _, s := range late {
		t.Errorf("series %s was produced but not created up front: add it to produces or backendsOf", s)
	}
	// The scenario must reach what it claims to: some of each kind.
	seen := operationSeries(t, m)
	for _, k := range []opKey{
		{cache.OpGet, cache.OutcomeHit, cache.BackendMemory},
		{cache.OpGet, cache.OutcomeError, ""},
		{cache.OpGet, cache.OutcomeCanceled, ""},
		{cache.OpGet, cache.OutcomeUnavailable, ""},
		{cache.OpSet, cache.OutcomeConditionNotMet, cache.BackendRedis},
		{cache.OpSet, cache.OutcomeLeaseInvalid, cache.BackendRedis},
		{cache.OpFetch, cache.OutcomeLeaseGranted, cache.BackendRedis},
		{cache.OpFetch, cache.OutcomePending, cache.BackendRedis},
		{cache.OpIncrement, cache.OutcomeNotStored, ""},
		{cache.OpGetMany, cache.OutcomeInvalid, cache.BackendRedis},
		{cache.OpSetMany, cache.OutcomeInvalid, cache.BackendRedis},
		{cache.OpInvalidateTags, cache.OutcomeHit, cache.BackendRedis},
	} {
		if seen[k] == 0 {
			t.Errorf("the scenario never produced %s/%s/%s", k.op, k.outcome, backendLabel(k.backend))
		}
	}
}

func jsonNumber(f float64) string {
	b, _ := json.Marshal(f)
	return string(b)
}

func TestBuildInfo(t *testing.T) {
	t.Parallel()
	m := New()
	m.SetBuildInfo("1.2.3", "go1.26.8")
	m.SetBuildInfo("1.2.4", "go1.26.8") // replaces, never adds a series
	families, err := m.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range families {
		if f.GetName() != "cache_build_info" {
			continue
		}
		for _, s := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range s.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			got = append(got, labels["version"]+" "+labels["goversion"]+" "+jsonNumber(s.GetGauge().GetValue()))
		}
	}
	if len(got) != 1 || got[0] != "1.2.4 go1.26.8 1" {
		t.Errorf("cache_build_info = %v; want one series, version 1.2.4, goversion go1.26.8, value 1", got)
	}
}
