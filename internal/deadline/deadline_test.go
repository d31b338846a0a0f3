package deadline

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
)

// TestLazyAsWithDeadline: a Lazy reports and ends as context.WithDeadline
// would, with a parent's sooner deadline, and after Cancel.
func TestLazyAsWithDeadline(t *testing.T) {
	soon := time.Now().Add(20 * time.Millisecond)
	parent, cancelParent := context.WithDeadline(context.Background(), soon)
	defer cancelParent()
	l := New(parent, time.Now().Add(time.Hour))
	defer l.Cancel()
	if d, ok := l.Deadline(); !ok || !d.Equal(soon) {
		t.Errorf("Deadline() = %v, %v; want the parent's %v", d, ok, soon)
	}
	<-l.Done()
	if !errors.Is(l.Err(), context.DeadlineExceeded) {
		t.Errorf("Err() = %v; want DeadlineExceeded", l.Err())
	}

	var nilLazy *Lazy
	nilLazy.Cancel() // does nothing

	c := New(context.Background(), time.Now().Add(time.Hour))
	if err := c.Err(); err != nil {
		t.Errorf("Err() before anything = %v; want nil", err)
	}
	c.Cancel()
	if !errors.Is(c.Err(), context.Canceled) {
		t.Errorf("Err() after Cancel = %v; want Canceled", c.Err())
	}
	select {
	case <-c.Done():
	default:
		t.Error("Done open after Cancel")
	}
}

// TestLazyChildren: a context made from a Lazy ends with it, and making it
// starts no goroutine (Lazy.AfterFunc).
func TestLazyChildren(t *testing.T) {
	l := New(context.Background(), time.Now().Add(time.Hour))
	before := runtime.NumGoroutine()
	children := make([]context.CancelFunc, 100)
	var ctxs []context.Context
	for i := range children {
		var ctx context.Context
		ctx, children[i] = context.WithTimeout(l, time.Hour)
		ctxs = append(ctxs, ctx)
	}
	if after := runtime.NumGoroutine(); after > before+5 {
		t.Errorf("%d goroutines after making 100 children; %d before", after, before)
	}
	l.Cancel()
	for i, ctx := range ctxs {
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
			t.Fatalf("child %d still open after its parent's Cancel", i)
		}
		children[i]()
	}
}
