package linearize

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// call is one recorded call for the table below; ret < 0 marks a call
// without an answer.
type call struct {
	client    int
	in        Input
	call, ret int64
	out       Output
}

func set(key string, v int64) Input { return Input{Kind: Set, Key: key, Value: v} }
func get(key string) Input          { return Input{Kind: Get, Key: key} }
func del(key string) Input          { return Input{Kind: Delete, Key: key} }

// TestCheck pins what the checker must accept and refuse, so that a verdict
// on the service's history can be trusted.
func TestCheck(t *testing.T) {
	tests := []struct {
		name  string
		calls []call
		want  porcupine.CheckResult
	}{
		{"read your write", []call{
			{0, set("a", 1), 0, 10, Output{}},
			{1, get("a"), 20, 30, Output{Value: 1}},
		}, porcupine.Ok},
		{"acknowledged write vanishes", []call{
			{0, set("a", 1), 0, 10, Output{}},
			{1, get("a"), 20, 30, Output{Value: Absent}},
		}, porcupine.Illegal},
		{"read concurrent with the write may miss it", []call{
			{0, set("a", 1), 0, 10, Output{}},
			{1, get("a"), 5, 30, Output{Value: Absent}},
		}, porcupine.Ok},
		{"stale read after a newer write", []call{
			{0, set("a", 1), 0, 10, Output{}},
			{0, set("a", 2), 20, 30, Output{}},
			{1, get("a"), 40, 50, Output{Value: 1}},
		}, porcupine.Illegal},
		{"value never written", []call{
			{0, set("a", 1), 0, 10, Output{}},
			{1, get("a"), 20, 30, Output{Value: 7}},
		}, porcupine.Illegal},
		{"write without a reply may apply late", []call{
			{0, set("a", 5), 0, -1, Output{}},
			{1, set("a", 6), 10, 20, Output{}},
			{1, get("a"), 30, 40, Output{Value: 6}},
			{1, get("a"), 50, 60, Output{Value: 5}},
		}, porcupine.Ok},
		{"write without a reply may never apply", []call{
			{0, set("a", 5), 0, -1, Output{}},
			{1, get("a"), 30, 40, Output{Value: Absent}},
		}, porcupine.Ok},
		{"write without a reply cannot apply before it was sent", []call{
			{1, get("a"), 0, 10, Output{Value: 5}},
			{0, set("a", 5), 20, -1, Output{}},
		}, porcupine.Illegal},
		{"write without a reply applies once", []call{
			{0, set("a", 5), 0, -1, Output{}},
			{1, get("a"), 10, 20, Output{Value: 5}},
			{1, set("a", 6), 30, 40, Output{}},
			{1, get("a"), 50, 60, Output{Value: 6}},
			{1, get("a"), 70, 80, Output{Value: 5}},
		}, porcupine.Illegal},
		{"delete says whether a value was there", []call{
			{0, set("a", 1), 0, 10, Output{}},
			{1, del("a"), 20, 30, Output{Deleted: true}},
			{1, del("a"), 40, 50, Output{Deleted: false}},
			{1, get("a"), 60, 70, Output{Value: Absent}},
		}, porcupine.Ok},
		{"delete of an absent key claims a value", []call{
			{1, del("a"), 0, 10, Output{Deleted: true}},
		}, porcupine.Illegal},
		{"delete misses a confirmed value", []call{
			{0, set("a", 1), 0, 10, Output{}},
			{1, del("a"), 20, 30, Output{Deleted: false}},
		}, porcupine.Illegal},
		{"value reappears after a confirmed delete", []call{
			{0, set("a", 1), 0, 10, Output{}},
			{1, del("a"), 20, 30, Output{Deleted: true}},
			{1, get("a"), 40, 50, Output{Value: 1}},
		}, porcupine.Illegal},
		{"keys are independent registers", []call{
			{0, set("a", 1), 0, 10, Output{}},
			{1, get("b"), 20, 30, Output{Value: Absent}},
			{1, get("a"), 20, 30, Output{Value: 1}},
		}, porcupine.Ok},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New()
			for _, c := range tt.calls {
				if c.ret < 0 {
					h.Unknown(c.client, c.in, c.call, "")
				} else {
					h.Completed(c.client, c.in, c.call, c.ret, c.out, "")
				}
			}
			ops := h.Operations()
			if got := Check(ops, 5*time.Second); got != tt.want {
				t.Errorf("Check() = %s; want %s", got, tt.want)
			}
			// The visualization replays the model over the partial
			// linearizations; it must work for any verdict, and explain
			// exactly the bad ones.
			lines, err := Visualize(ops, nil, 5*time.Second, filepath.Join(t.TempDir(), "v.html"))
			if err != nil {
				t.Errorf("Visualize() error = %v", err)
			}
			if bad := tt.want == porcupine.Illegal; bad != (len(lines) > 0) {
				t.Errorf("Explain() = %q for a history that is %s", lines, tt.want)
			}
		})
	}
}

func TestUnknownReturnsAfterEverything(t *testing.T) {
	h := New()
	h.Unknown(0, set("a", 1), 5, "")
	h.Completed(1, get("a"), 10, 100, Output{}, "")
	h.Completed(0, get("a"), 20, 30, Output{}, "")
	var unknown porcupine.Operation
	for _, op := range h.Operations() {
		if op.Output.(Output).Unknown {
			unknown = op
		}
	}
	if unknown.Return <= 100 {
		t.Errorf("unknown call returns at %d; want after the last event (100)", unknown.Return)
	}
	if unknown.ClientId < 2 {
		t.Errorf("unknown call on client row %d; want a row of its own (>= 2)", unknown.ClientId)
	}
}

func TestRelax(t *testing.T) {
	// A write confirmed in the window is lost, and a read in the window
	// saw it: only relaxing the window makes the history linearizable.
	h := New()
	h.Completed(0, set("a", 1), 0, 10, Output{}, "")
	h.Completed(0, set("a", 2), 20, 30, Output{}, "")
	h.Completed(1, get("a"), 35, 38, Output{Value: 2}, "")
	h.Completed(1, get("a"), 50, 60, Output{Value: 1}, "")
	ops := h.Operations()
	if got := Check(ops, 5*time.Second); got != porcupine.Illegal {
		t.Fatalf("Check() = %s; want Illegal", got)
	}
	if got := Check(Relax(ops, 20, 40), 5*time.Second); got != porcupine.Ok {
		t.Errorf("Check(Relax(20, 40)) = %s; want Ok", got)
	}
	if got := Check(Relax(ops, 40, 45), 5*time.Second); got != porcupine.Illegal {
		t.Errorf("Check(Relax(40, 45)) = %s; want Illegal: no call is in the window", got)
	}
}
