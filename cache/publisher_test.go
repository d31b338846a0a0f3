package cache

import (
	"context"
	"crypto/sha1"
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

// The hand-written encoding of an announcement is the bytes json.Marshal
// gives its wireChange, the ETag from the digest included.
func TestAppendWireIsJSONMarshal(t *testing.T) {
	value := []byte(`{"a":1}`)
	cases := []queued{
		{wireChange: wireChange{Key: "user:1", Kind: ChangeSet, At: 1700000000000000}, sum: sha1.Sum(value), hasSum: true},
		{wireChange: wireChange{Key: "k", Kind: ChangeDelete, At: 1}},
		{wireChange: wireChange{Key: `q"u\o<t>e&`, Kind: ChangeInvalidated, At: -5, Tags: []string{"t1", "ü", "a\"b"}}},
		{wireChange: wireChange{Key: "é\u2028x", Kind: ChangeIncremented, ETag: ETag([]byte("7")), At: 42, Tags: []string{}}},
		{wireChange: wireChange{Kind: ChangeResync, At: 9}},
	}
	for _, x := range cases {
		want := x.wireChange
		if x.hasSum {
			want.ETag = ETag(value)
		}
		wantJSON, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendWire([]byte("prefix"), x); string(got) != "prefix"+string(wantJSON) {
			t.Errorf("appendWire(%+v) = %s; want prefix%s", x.wireChange, got, wantJSON)
		}
	}
}

// A batch's deadline ends its context as context.WithTimeout would, and a
// batch after one that timed out starts with a fresh, open context.
func TestSendDeadline(t *testing.T) {
	var s sendDeadline
	ctx := s.arm(time.Hour)
	if err := ctx.Err(); err != nil {
		t.Fatalf("Err() = %v before the deadline; want nil", err)
	}
	if d, ok := ctx.Deadline(); !ok || time.Until(d) < 59*time.Minute {
		t.Fatalf("Deadline() = %v, %v; want about an hour from now", d, ok)
	}
	s.disarm()
	timer := s.timer
	ctx = s.arm(time.Millisecond)
	if s.timer != timer {
		t.Error("a timer that had not fired was not reused")
	}
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done() not closed after the deadline")
	}
	if err := ctx.Err(); err != context.DeadlineExceeded {
		t.Fatalf("Err() = %v after the deadline; want %v", err, context.DeadlineExceeded)
	}
	s.disarm()
	ctx = s.arm(time.Hour)
	if err := ctx.Err(); err != nil {
		t.Fatalf("Err() = %v in the batch after a timeout; want nil", err)
	}
	select {
	case <-ctx.Done():
		t.Fatal("Done() closed in the batch after a timeout")
	default:
	}
	s.disarm()
}
