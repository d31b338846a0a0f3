package cache

import (
	"context"
	"time"

	"github.com/school-erp/cache-service/internal/deadline"
)

// commandContext bounds a read by CommandTimeout from now, as
// context.WithTimeout would, without starting a timer until something
// waits on it. A read the local cache answers never waits (valkey-go
// answers a hit without looking at the context), and one valkey-go sends
// on an idle connection uses the deadline for the connection itself; only
// a read that queues behind others asks for Done, and starts the timer.
// A caller's deadline that comes no later bounds the read already: then
// ctx itself is used, and the request's deadline is the only one (the
// Lazy returned is then nil; its Cancel, which the caller defers, does
// nothing). A *Lazy rather than a CancelFunc: a method value would be one
// more allocation a read.
func (c *Client) commandContext(ctx context.Context) (context.Context, *deadline.Lazy) {
	deadlineAt := time.Now().Add(c.opts.CommandTimeout)
	if d, ok := ctx.Deadline(); ok && !d.After(deadlineAt) {
		return ctx, nil
	}
	l := deadline.New(ctx, deadlineAt)
	return l, l
}
