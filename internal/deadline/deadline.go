// Package deadline has a context deadline that starts its timer only when
// something waits on it.
package deadline

import (
	"context"
	"sync"
	"time"
)

// Lazy is context.WithDeadline(parent, deadline), made when first asked
// for Done or Err: a context whose deadline nothing waits on (a read a
// local cache answers; a command sent with the deadline on its
// connection) starts no timer. Make one with New; call Cancel when done
// with it, as with the CancelFunc of context.WithDeadline.
type Lazy struct {
	parent   context.Context
	deadline time.Time

	mu       sync.Mutex
	ctx      context.Context // nil until started
	stop     context.CancelFunc
	canceled bool
}

var _ context.Context = (*Lazy)(nil)

// New is a Lazy ending at deadline, or when parent ends. Its Deadline is
// the sooner of deadline and the parent's, as context.WithDeadline's is.
func New(parent context.Context, deadline time.Time) *Lazy {
	if d, ok := parent.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	return &Lazy{parent: parent, deadline: deadline}
}

func (l *Lazy) started() context.Context {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ctx == nil {
		l.ctx, l.stop = context.WithDeadline(l.parent, l.deadline)
		if l.canceled {
			l.stop()
		}
	}
	return l.ctx
}

func (l *Lazy) Deadline() (time.Time, bool) { return l.deadline, true }
func (l *Lazy) Done() <-chan struct{}       { return l.started().Done() }

// Err answers without starting the timer while the deadline is ahead and
// the parent has not ended (as context.WithDeadline's would: nil), so
// that asking whether there is still time costs none.
func (l *Lazy) Err() error {
	l.mu.Lock()
	idle := l.ctx == nil && !l.canceled
	l.mu.Unlock()
	if idle && l.parent.Err() == nil && time.Now().Before(l.deadline) {
		return nil
	}
	return l.started().Err()
}

func (l *Lazy) Value(key any) any { return l.parent.Value(key) }

// AfterFunc lets a context made from this one (context.WithCancel,
// WithTimeout) hear of its end without a goroutine of its own: the
// context package uses it for a parent that is none of its types, and
// otherwise starts a goroutine for each child to watch both.
func (l *Lazy) AfterFunc(f func()) (stop func() bool) {
	return context.AfterFunc(l.started(), f)
}

// Cancel ends the context, and its timer if it started one. On a nil
// Lazy it does nothing.
func (l *Lazy) Cancel() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.canceled = true
	if l.stop != nil {
		l.stop()
	}
}
