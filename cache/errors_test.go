package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/valkey-io/valkey-go"
)

// Error replies are classified in tests against real servers (faults_test.go,
// client_test.go); these are the failures that come without a reply.

func TestClassify(t *testing.T) {
	live := context.Background()
	expired, cancel := context.WithCancel(context.Background())
	cancel()
	dialRefused := &dialError{err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	tests := []struct {
		name   string
		caller context.Context
		op     context.Context
		err    error
		want   error
		kind   failureKind
		resend bool
	}{
		// The connection closed before the command could be sent: it was
		// never sent, and may be sent on a fresh connection.
		{"unsent: no connection could be opened", live, live, dialRefused, ErrUnavailable, unreachable, true},
		{"unsent: the client is closing", live, live, valkey.ErrClosing, ErrUnavailable, unreachable, true},
		// The connection closed under the command: it may have run.
		{"possibly sent: EOF mid-command", live, live, io.EOF, ErrNoReply, notAnOutage, false},
		{"possibly sent: reset mid-command", live, live, fmt.Errorf("read: %w", syscall.ECONNRESET), ErrNoReply, notAnOutage, false},
		{"possibly sent: no reply in time", live, live, context.DeadlineExceeded, ErrNoReply, timedOut, false},
		{"caller gave up", expired, expired, context.Canceled, ErrNoReply, notAnOutage, false},
		{"caller's deadline, not ours: not an outage", expired, live, context.DeadlineExceeded, ErrNoReply, notAnOutage, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := classify(tt.caller, tt.op, tt.err)
			if !errors.Is(o.err, tt.want) || o.kind != tt.kind || o.resend != tt.resend {
				t.Errorf("classify(%v) = %v, kind %d, resend %v; want %v, kind %d, resend %v", tt.err, o.err, o.kind, o.resend, tt.want, tt.kind, tt.resend)
			}
			if !errors.Is(o.err, tt.err) {
				t.Errorf("classify(%v) = %v; want the cause kept", tt.err, o.err)
			}
		})
	}
}
