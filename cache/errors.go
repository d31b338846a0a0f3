package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/valkey-io/valkey-go"
)

// Errors callers branch on. A miss is not an error: Get reports it as a nil
// value with a nil error.
var (
	// ErrUnavailable means the command was not executed: Redis could not be
	// reached (the breaker is open, a connection could not be opened, or
	// the server said it cannot serve now), or the caller's deadline passed
	// before it was sent. A read found nothing, a write stored nothing.
	ErrUnavailable = errors.New("redis unavailable")
	// ErrNoReply means the command may have reached Redis but no reply
	// came: the deadline passed, or the connection broke under it. A write
	// may or may not have been applied.
	ErrNoReply = errors.New("no reply from redis")
	// ErrRejected means Redis answered with an error (out of memory, wrong
	// type, no permission, ...): the command was not applied.
	ErrRejected = errors.New("redis rejected the command")
	// ErrInvalidInput means the key, value or TTL was not acceptable;
	// nothing was sent to Redis. The wrapped message says what is wrong.
	ErrInvalidInput = errors.New("invalid input")
	// ErrValueTooLarge means Redis holds a value at the key larger than
	// Options.MaxValueBytes (written by another program): it is not
	// returned, so one key cannot make a response of any size.
	ErrValueTooLarge = errors.New("value too large")
)

// dialError marks a failure to open a connection: whatever command was
// waiting for that connection was never sent. The dialer (dial.go) wraps
// every error it returns in one, so the classification below goes by type.
type dialError struct{ err error }

func (e *dialError) Error() string { return "dial: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// errDeadlineBeforeSend is the cause of ErrUnavailable when the caller's
// context was done before a command could be sent.
var errDeadlineBeforeSend = errors.New("the request's deadline passed before the command was sent")

// Error replies are classified by their code, the first word of the reply:
// that is Redis's protocol, not a library's wording. These codes mean the
// server did not execute the command because it cannot serve it now; a
// command that got one may be sent again safely. The value says whether
// the whole server is unable to serve (true: counts toward opening the
// breaker) or only this node's role is wrong for the moment (false: a
// failover or a slot migration under way, which Redis sorts out by itself;
// Health says degraded meanwhile).
var notExecutedCodes = map[string]bool{
	"LOADING":     true,  // restarting, loading its data set
	"BUSY":        true,  // a script is running
	"READONLY":    false, // a demoted master during failover: the write must go to the new one
	"MASTERDOWN":  false, // a replica that lost its master
	"CLUSTERDOWN": false,
	"TRYAGAIN":    false, // a cluster slot migrating
}

// refusedCodes are replies that say the server refuses this client: not an
// outage of Redis, but nothing will work until the configuration is fixed.
var refusedCodes = map[string]bool{"NOAUTH": true, "WRONGPASS": true}

// replyCodes are the error codes Redis puts first in an error reply that
// this package may meet. valkey-go strips the generic "ERR " prefix, so a
// reply whose first word is none of these is an ERR.
var replyCodes = map[string]bool{
	"WRONGTYPE": true, "OOM": true, "NOSCRIPT": true, "NOPERM": true, "EXECABORT": true,
	"NOREPLICAS": true, "MISCONF": true, "CROSSSLOT": true, "MOVED": true, "ASK": true,
	"LOADING": true, "BUSY": true, "READONLY": true, "MASTERDOWN": true, "CLUSTERDOWN": true,
	"TRYAGAIN": true, "NOAUTH": true, "WRONGPASS": true,
}

// replyCode is the error code of a Redis error reply ("ERR" for the
// generic one), or "" when err is not one.
func replyCode(err error) string {
	var verr *valkey.ValkeyError
	if !errors.As(err, &verr) || verr.IsNil() {
		return ""
	}
	if code, _, _ := strings.Cut(verr.Error(), " "); replyCodes[code] {
		return code
	}
	return "ERR"
}

// outcome is what a failed command came to.
type outcome struct {
	// err wraps one of the sentinel errors, keeping the cause.
	err  error
	kind failureKind
	// resend says the command was certainly not executed and the server
	// may take it on another try (a connection opened anew, a failover
	// finished).
	resend bool
	// fallback says the fallback tier may answer instead: Redis did not
	// execute the command and the breaker refuses it.
	fallback bool
}

// classify turns an error from valkey-go into what it means for the caller
// and for availability. opCtx is the operation's own context, caller the
// caller's, to tell our deadline from the caller giving up.
func classify(caller, opCtx context.Context, err error) outcome {
	var o outcome
	var dErr *dialError
	code := replyCode(err)
	serverDown, notExecuted := notExecutedCodes[code]
	switch {
	case notExecuted && serverDown:
		o = outcome{err: fmt.Errorf("%w: %w", ErrUnavailable, err), kind: unreachable, resend: true}
	case notExecuted:
		o = outcome{err: fmt.Errorf("%w: %w", ErrUnavailable, err), kind: switching, resend: true}
	case refusedCodes[code]:
		o = outcome{err: fmt.Errorf("%w: %w", ErrUnavailable, err), kind: unreachable}
	case code != "":
		o = outcome{err: fmt.Errorf("%w: %w", ErrRejected, err), kind: notAnOutage}
	case errors.As(err, &dErr), errors.Is(err, valkey.ErrClosing):
		// Nothing was sent: the connection could not be opened (or the
		// client is closing, or Sentinel named no master yet).
		o = outcome{err: fmt.Errorf("%w: %w", ErrUnavailable, err), kind: unreachable, resend: true}
	case errors.Is(err, context.Canceled) && opCtx.Err() == context.Canceled:
		// The caller went away; that says nothing about Redis.
		o = outcome{err: fmt.Errorf("%w: %w", ErrNoReply, err), kind: notAnOutage}
	case isTimeout(err):
		o = outcome{err: fmt.Errorf("%w: %w", ErrNoReply, err), kind: timedOut}
	default:
		// The connection broke under the command (EOF, reset): it may have
		// run. The dialer has counted the reset and asked for a probe;
		// valkey-go reconnects for the next command.
		o = outcome{err: fmt.Errorf("%w: %w", ErrNoReply, err), kind: notAnOutage}
	}
	if caller.Err() != nil && o.kind != notAnOutage {
		// The caller's own deadline or cancellation, not ours: it says
		// nothing about Redis, and there is no time to send again.
		o.kind, o.resend = notAnOutage, false
	}
	return o
}

// isDialFailure reports whether err is a connection that could not be
// opened.
func isDialFailure(err error) bool {
	var dErr *dialError
	return errors.As(err, &dErr)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// isConnectionBreak reports whether a read on a connection failed because
// the peer or the network closed it (as opposed to this process closing
// it, or a deadline).
func isConnectionBreak(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED)
}
