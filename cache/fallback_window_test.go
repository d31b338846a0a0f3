package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/school-erp/cache-service/internal/redistest"
)

// A command can be sent while the breaker is closed and answered after it
// opened. What Redis answered then (an error reply, or no reply at all) is
// still Redis's answer: the fallback tier must not answer instead, nor take
// a write, though it is active by then. Requests do not choose that moment,
// so this drives the request path's last step directly: the failure as the
// client classifies it (failed), handed to each operation's fallback, with
// the breaker open and the fallback holding the key.
func TestFallbackNeverAnswersForARedisAnswerThatCameLate(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	if _, err := srv.Do(t, "HSET", "h", "f", "v"); err != nil {
		t.Fatal(err)
	}
	// A real error reply, as valkey-go returns it.
	redis := srv.Client(t, 0)
	wrongType := redis.Do(context.Background(), redis.B().Get().Key("h").Build()).Error()
	if replyCode(wrongType) != "WRONGTYPE" {
		t.Fatalf("GET of a hash = %v; want a WRONGTYPE reply", wrongType)
	}
	expired, cancel := context.WithTimeout(context.Background(), -time.Second)
	defer cancel()
	live := context.Background()
	dialRefused := &dialError{err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}

	// The client's own Redis never answers: its breaker stays open, and
	// its fallback tier is active.
	c, err := New(Options{Addr: "127.0.0.1:1", Fallback: FallbackMemory, ProbeInterval: time.Hour, DialTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.Health().Fallback.Active {
		t.Fatal("fallback not active with Redis unreachable")
	}
	const rk = "school-erp:k"
	held := json.RawMessage(`"held"`)

	tests := []struct {
		name   string
		opCtx  context.Context
		err    error
		want   error
		answer bool // whether the fallback answers
	}{
		{"an error reply", live, wrongType, ErrRejected, false},
		{"no reply within the deadline", expired, context.DeadlineExceeded, ErrNoReply, false},
		{"the connection broke under the command", live, fmt.Errorf("read: %w", syscall.ECONNRESET), ErrNoReply, false},
		// The control: a command that never left is the fallback's to answer.
		{"no connection could be opened", live, dialRefused, ErrUnavailable, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			refused := func(op Op) outcome {
				c.avail.memory.clear()
				if err := c.avail.memory.set(rk, held, 0); err != nil {
					t.Fatal(err)
				}
				return c.failed(live, tt.opCtx, c.avail.epoch.Load(), op, tt.err)
			}
			check := func(op string, backend Backend, err error) {
				t.Helper()
				if tt.answer {
					if err != nil || backend != BackendMemory {
						t.Errorf("%s after %s = %s, %v; want answered by memory", op, tt.name, backend, err)
					}
					return
				}
				if !errors.Is(err, tt.want) || backend != "" {
					t.Errorf("%s after %s = %s, %v; want %v, not a fallback answer", op, tt.name, backend, err, tt.want)
				}
			}
			stillHeld := func(op string) {
				t.Helper()
				if v, ok := c.avail.memory.get(rk); !tt.answer && (!ok || string(v) != string(held)) {
					t.Errorf("%s after %s changed the fallback's copy to %s (present %v); want it untouched", op, tt.name, v, ok)
				}
			}

			v, b, err := c.fallbackGet(rk, refused(OpGet))
			check("Get", b, err)
			if !tt.answer && v != nil {
				t.Errorf("Get after %s = %s; want no value", tt.name, v)
			}
			_, b, err = c.fallbackExists(rk, refused(OpExists))
			check("Exists", b, err)
			e, err := c.fallbackEntry(rk, refused(OpEntry))
			if tt.answer {
				if err != nil || e == nil || e.Backend != BackendMemory {
					t.Errorf("GetEntry after %s = %+v, %v; want the held entry from memory", tt.name, e, err)
				}
			} else if !errors.Is(err, tt.want) || e != nil {
				t.Errorf("GetEntry after %s = %+v, %v; want %v, not a fallback answer", tt.name, e, err, tt.want)
			}
			r, err := c.fallbackSetWith(rk, json.RawMessage(`"new"`), SetOptions{}, refused(OpSet))
			check("Set", r.Backend, err)
			stillHeld("Set")
			_, b, err = c.fallbackDelete(rk, refused(OpDelete))
			check("Delete", b, err)
			stillHeld("Delete")
			_, b, err = c.fallbackExpire(rk, time.Minute, refused(OpExpire))
			check("Expire", b, err)
			stillHeld("Expire")
		})
	}
}
