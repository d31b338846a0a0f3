package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/school-erp/cache-service/internal/redistest"
)

// The tag index stays bounded: entries whose keys are gone are pruned by
// the sweep and by an invalidation, but only once they are older than the
// horizon, so a write still under way keeps its entry.
func TestTagIndexIsPruned(t *testing.T) {
	old := minTagHorizon
	minTagHorizon = 300 * time.Millisecond
	defer func() { minTagHorizon = old }()

	srv := redistest.Start(t, redistest.Options{})
	c, err := New(Options{Addr: srv.Addr, CommandTimeout: 20 * time.Millisecond, ProbeInterval: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := c.SetWith(ctx, fmt.Sprint("k", i), json.RawMessage(`1`), SetOptions{Tags: []string{"t"}}); err != nil {
			t.Fatal(err)
		}
	}
	set := c.tagSetKey("t")
	card := func() string {
		n, _ := srv.Do(t, "ZCARD", set)
		return n
	}
	// Half the keys go away behind the index's back.
	for i := range 5 {
		if _, err := srv.Do(t, "DEL", fmt.Sprint("school-erp:k", i)); err != nil {
			t.Fatal(err)
		}
	}
	c.sweep(ctx)
	if n := card(); n != "10" {
		t.Errorf("ZCARD = %s after a sweep within the horizon; want 10: young entries are kept", n)
	}
	time.Sleep(400 * time.Millisecond)
	c.sweep(ctx)
	if n := card(); n != "5" {
		t.Errorf("ZCARD = %s after a sweep past the horizon; want 5: the dead entries pruned", n)
	}
	time.Sleep(400 * time.Millisecond)
	if r, err := c.InvalidateTags(ctx, []string{"t"}); err != nil || r.Deleted != 5 {
		t.Fatalf("InvalidateTags = %+v, %v; want 5", r, err)
	}
	if n, err := srv.Do(t, "EXISTS", set); n != "0" {
		t.Errorf("EXISTS tag set = %s, %v after invalidating it past the horizon; want it gone", n, err)
	}
}
