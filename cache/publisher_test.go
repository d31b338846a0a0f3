package cache

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/school-erp/cache-service/internal/redistest"
)

// Announcements lost (a full queue, a failed PUBLISH) are followed by a
// RESYNC announcement before the next ones, dated from the first loss.
func TestPublisherAnnouncesWhatItLost(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c, err := New(Options{Addr: srv.Addr, ReconnectMinBackoff: 10 * time.Millisecond, ReconnectMaxBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	ch, err := c.Watch(ctx, WatchFilter{Keys: []string{"k"}})
	if err != nil {
		t.Fatal(err)
	}
	lostAt := time.Now().Add(-time.Second).Truncate(time.Microsecond)
	c.publisher.lost(lostAt.UnixMicro())
	if _, err := c.Set(ctx, "k", json.RawMessage(`1`), 0); err != nil {
		t.Fatal(err)
	}
	for _, want := range []ChangeKind{ChangeResync, ChangeSet} {
		select {
		case x := <-ch:
			if x.Kind != want || want == ChangeResync && !x.At.Equal(lostAt) {
				t.Errorf("change = %+v; want %s (RESYNC at %s)", x, want, lostAt)
			}
		case <-ctx.Done():
			t.Fatalf("no %s", want)
		}
	}
}
