package cache

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestCommandContext: the command's context ends as context.WithTimeout's
// would, whether or not anything waited on it before.
func TestCommandContext(t *testing.T) {
	c := &Client{opts: Options{CommandTimeout: 30 * time.Millisecond}}
	type key struct{}
	base := context.WithValue(context.Background(), key{}, "v")

	t.Run("ends at the command timeout", func(t *testing.T) {
		start := time.Now()
		ctx, lazy := c.commandContext(base)
		defer lazy.Cancel()
		if d, ok := ctx.Deadline(); !ok || d.Sub(start) > 31*time.Millisecond || d.Before(start.Add(30*time.Millisecond)) {
			t.Errorf("Deadline() = %v, %v; want about now+30ms", d.Sub(start), ok)
		}
		if got := ctx.Value(key{}); got != "v" {
			t.Errorf("Value = %v; want the parent's", got)
		}
		time.Sleep(40 * time.Millisecond) // nothing waited: no timer yet
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
			t.Fatal("Done not closed after the deadline")
		}
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Errorf("Err() = %v; want DeadlineExceeded", ctx.Err())
		}
	})
	t.Run("Err alone, before and after the deadline", func(t *testing.T) {
		ctx, lazy := c.commandContext(base)
		defer lazy.Cancel()
		if err := ctx.Err(); err != nil {
			t.Errorf("Err() before the deadline = %v; want nil", err)
		}
		time.Sleep(40 * time.Millisecond)
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Errorf("Err() after the deadline = %v; want DeadlineExceeded", ctx.Err())
		}
		select {
		case <-ctx.Done():
		default:
			t.Error("Done open after Err said the deadline passed")
		}
	})
	t.Run("a waiter sees the deadline", func(t *testing.T) {
		ctx, lazy := c.commandContext(base)
		defer lazy.Cancel()
		start := time.Now()
		<-ctx.Done()
		if waited := time.Since(start); waited > 500*time.Millisecond {
			t.Errorf("waited %v; want about 30ms", waited)
		}
	})
	t.Run("canceled before anything waited", func(t *testing.T) {
		ctx, lazy := c.commandContext(base)
		lazy.Cancel()
		select {
		case <-ctx.Done():
		default:
			t.Fatal("Done open after cancel")
		}
		if !errors.Is(ctx.Err(), context.Canceled) {
			t.Errorf("Err() = %v; want Canceled", ctx.Err())
		}
	})
	t.Run("the caller's cancellation", func(t *testing.T) {
		parent, cancelParent := context.WithCancel(base)
		ctx, lazy := c.commandContext(parent)
		defer lazy.Cancel()
		cancelParent()
		<-ctx.Done()
		if !errors.Is(ctx.Err(), context.Canceled) {
			t.Errorf("Err() = %v; want Canceled", ctx.Err())
		}
	})
	t.Run("a sooner deadline of the caller's is the only one", func(t *testing.T) {
		parent, cancelParent := context.WithTimeout(base, 10*time.Millisecond)
		defer cancelParent()
		if ctx, lazy := c.commandContext(parent); ctx != parent || lazy != nil {
			t.Errorf("commandContext made %T; want the caller's context", ctx)
		} else {
			lazy.Cancel() // does nothing
		}
		later, cancelLater := context.WithTimeout(base, time.Second)
		defer cancelLater()
		ctx, lazy := c.commandContext(later)
		defer lazy.Cancel()
		if d, _ := ctx.Deadline(); time.Until(d) > 31*time.Millisecond {
			t.Errorf("deadline in %v; want the command timeout's", time.Until(d))
		}
	})
}
