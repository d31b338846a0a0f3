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

// failureKind says what a failed command tells about Redis's availability.
type failureKind int

const (
	// notAnOutage: Redis answered (with an error), or the caller gave up.
	notAnOutage failureKind = iota
	// connectionLost: Redis could not be reached, or the connection broke.
	connectionLost
	// timedOut: no reply within the deadline. Redis may be slow or hung;
	// only a probe can tell.
	timedOut
)

// classify turns an error from valkey-go into one of the sentinel errors,
// keeping the cause, and says what it tells about availability. ctx is the
// operation's own context, to tell our deadline from the caller giving up.
func classify(ctx context.Context, err error) (failureKind, error) {
	if verr, ok := valkey.IsValkeyErr(err); ok {
		msg := verr.Error()
		for _, prefix := range unavailableReplies {
			if strings.HasPrefix(msg, prefix) {
				return connectionLost, fmt.Errorf("%w: %w", ErrUnavailable, err)
			}
		}
		return notAnOutage, fmt.Errorf("%w: %w", ErrRejected, err)
	}
	if errors.Is(err, context.Canceled) && ctx.Err() == context.Canceled {
		// The caller went away; that says nothing about Redis.
		return notAnOutage, fmt.Errorf("%w: %w", ErrNoReply, err)
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" || errors.Is(err, valkey.ErrClosing) {
		// Nothing was sent: the connection could not be opened.
		return connectionLost, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if isTimeout(err) {
		return timedOut, fmt.Errorf("%w: %w", ErrNoReply, err)
	}
	// A reset or EOF mid-command: the command may have run.
	return connectionLost, fmt.Errorf("%w: %w", ErrNoReply, err)
}
