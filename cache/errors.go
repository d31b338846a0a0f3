package cache

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/valkey-io/valkey-go"
)

// Errors callers branch on. A miss is not an error: Get reports it as
// found == false with a nil error.
var (
	// ErrUnavailable means Redis could not be reached, so the command was
	// not executed: a read found nothing, a write stored nothing.
	ErrUnavailable = errors.New("redis unavailable")
	// ErrNoReply means the command was sent but no reply came within the
	// deadline, or the connection broke before it did. A write may or may
	// not have been applied.
	ErrNoReply = errors.New("no reply from redis")
	// ErrRejected means Redis answered with an error (out of memory, wrong
	// type, no permission, ...): the command was not applied.
	ErrRejected = errors.New("redis rejected the command")
	// ErrInvalidInput means the key, value or TTL was not acceptable;
	// nothing was sent to Redis. The wrapped message says what is wrong.
	ErrInvalidInput = errors.New("invalid input")
)

// unavailableReplies are error replies that mean the server cannot serve
// now, rather than that it refused this particular command.
var unavailableReplies = []string{"LOADING", "BUSY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "NOAUTH", "WRONGPASS"}

// classify turns an error from valkey-go into one of the sentinel errors,
// keeping the cause. outage reports whether it counts against Redis's
// availability; ctx is the operation's own context, to tell our deadline
// from the caller giving up.
func classify(ctx context.Context, err error) (classified error, outage bool) {
	if verr, ok := valkey.IsValkeyErr(err); ok {
		msg := verr.Error()
		for _, prefix := range unavailableReplies {
			if strings.HasPrefix(msg, prefix) {
				return fmt.Errorf("%w: %w", ErrUnavailable, err), true
			}
		}
		return fmt.Errorf("%w: %w", ErrRejected, err), false
	}
	if errors.Is(err, context.Canceled) && ctx.Err() == context.Canceled {
		// The caller went away; that says nothing about Redis.
		return fmt.Errorf("%w: %w", ErrNoReply, err), false
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" || errors.Is(err, valkey.ErrClosing) {
		// Nothing was sent: the connection could not be opened.
		return fmt.Errorf("%w: %w", ErrUnavailable, err), true
	}
	// A deadline, a reset or EOF mid-command: the command may have run.
	return fmt.Errorf("%w: %w", ErrNoReply, err), true
}
