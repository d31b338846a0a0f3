// Package linearize records the history of concurrent get, set and delete
// calls on a key-value store and checks it with porcupine against a
// register per key, for the tests that ask whether the service is
// linearizable while faults are injected.
//
// What a call's outcome means is decided by the test, which knows the API:
// a call that certainly took effect is Completed; one that may have taken
// effect, at any time after it was sent (a write without a reply), is
// Unknown; one that certainly did not take effect, or a read that says
// nothing (answered without Redis), is left out of the history.
package linearize

import (
	"fmt"
	"hash/maphash"
	"sort"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// Kind is the operation a call performs.
type Kind uint8

const (
	Get Kind = iota
	Set
	Delete
)

func (k Kind) String() string {
	switch k {
	case Get:
		return "get"
	case Set:
		return "set"
	case Delete:
		return "delete"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Absent is the register's value while the key holds nothing. Values the
// tests write are positive, each written once, so a read names the write it
// saw.
const Absent int64 = 0

// Input is what a call asked for.
type Input struct {
	Kind Kind
	Key  string
	// Value is what a Set writes.
	Value int64
}

// Output is what a call was answered.
type Output struct {
	// Value is what a Get read (Absent for a miss).
	Value int64
	// Deleted is what a Delete said: whether a value was there to remove.
	Deleted bool
	// Unknown marks a call without an answer: it may have taken effect or
	// not, so nothing about its result constrains the register.
	Unknown bool
}

// Model is a register per key: Set replaces the value, Delete makes it
// Absent (and says whether it was present), Get returns it.
var Model = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(Input).Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		sort.Strings(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return Absent },
	Step: func(state, input, output any) (bool, any) {
		v, in, out := state.(int64), input.(Input), output.(Output)
		switch in.Kind {
		case Get:
			return out.Unknown || out.Value == v, v
		case Set:
			return true, in.Value
		case Delete:
			return out.Unknown || out.Deleted == (v != Absent), Absent
		}
		return false, v
	},
	Hash: func(state any) uint64 { return maphash.Comparable(seed, state.(int64)) },
	DescribeOperation: func(input, output any) string {
		in, out := input.(Input), output.(Output)
		switch {
		case out.Unknown && in.Kind == Set:
			return fmt.Sprintf("set(%s, %d) -> no reply", in.Key, in.Value)
		case out.Unknown:
			return fmt.Sprintf("%s(%s) -> no reply", in.Kind, in.Key)
		case in.Kind == Get:
			return fmt.Sprintf("get(%s) -> %s", in.Key, describeValue(out.Value))
		case in.Kind == Set:
			return fmt.Sprintf("set(%s, %d)", in.Key, in.Value)
		default:
			return fmt.Sprintf("delete(%s) -> deleted=%t", in.Key, out.Deleted)
		}
	},
	DescribeState: func(state any) string { return describeValue(state.(int64)) },
	DescribeOperationMetadata: func(info any) string {
		if info == nil {
			return ""
		}
		return info.(string)
	},
}

var seed = maphash.MakeSeed()

func describeValue(v int64) string {
	if v == Absent {
		return "absent"
	}
	return fmt.Sprint(v)
}

// History collects calls from many goroutines, with times on one monotonic
// clock.
type History struct {
	start time.Time

	mu      sync.Mutex
	ops     []porcupine.Operation
	unknown []porcupine.Operation
	last    int64
	clients int
}

// New starts a history whose clock reads zero now.
func New() *History { return &History{start: time.Now()} }

// Now is the history's clock, in nanoseconds. Read it just before a call is
// sent and just after its answer arrives.
func (h *History) Now() int64 { return int64(time.Since(h.start)) }

// Completed records a call that took effect between call and ret with the
// given answer. meta is shown in the visualization (the raw response, say).
func (h *History) Completed(client int, in Input, call, ret int64, out Output, meta string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret, Metadata: meta})
	h.last = max(h.last, ret)
	h.clients = max(h.clients, client+1)
}

// Unknown records a call sent at call that got no answer: it may take
// effect at any later time, or never.
func (h *History) Unknown(client int, in Input, call int64, meta string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.unknown = append(h.unknown, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: Output{Unknown: true}, Metadata: meta})
	h.last = max(h.last, call)
	h.clients = max(h.clients, client+1)
}

// Operations returns the history for porcupine. An unknown call's return is
// put after every other event, so it may be linearized anywhere after its
// call, and it gets a client row of its own (as a process that crashed) so
// the visualization does not draw it over its client's later calls.
func (h *History) Operations() []porcupine.Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]porcupine.Operation, 0, len(h.ops)+len(h.unknown))
	out = append(out, h.ops...)
	for i, op := range h.unknown {
		op.Return = h.last + 1
		op.ClientId = h.clients + i
		out = append(out, op)
	}
	return out
}

// Len is the number of calls recorded.
func (h *History) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.ops) + len(h.unknown)
}

// Check checks ops against Model, giving up after timeout (then the result
// is porcupine.Unknown: neither proven nor refuted). It stops at the first
// key found not linearizable, so a verdict of Illegal comes quickly.
func Check(ops []porcupine.Operation, timeout time.Duration) porcupine.CheckResult {
	return porcupine.CheckOperationsTimeout(Model, ops, timeout)
}

// Visualize checks ops again, this time keeping the partial linearizations
// of every key (slower: it cannot stop at the first bad key), writes
// porcupine's visualization of them with annotations to path, and returns
// Explain's lines. It gives up searching after timeout and shows what it
// found by then.
func Visualize(ops []porcupine.Operation, annotations []porcupine.Annotation, timeout time.Duration, path string) ([]string, error) {
	_, info := porcupine.CheckOperationsVerbose(Model, ops, timeout)
	info.AddAnnotations(annotations)
	return Explain(ops, info), porcupine.VisualizePath(Model, info, path)
}

// Relax returns ops with every call that overlaps [from, to] made
// uninformative: a read is dropped, a write becomes one without an answer
// (it may take effect at any time after its call, or never). If the
// relaxed history is linearizable where ops is not, every violation
// involves a call in that window; the failover test uses it to tell a
// loss inside the failover from one elsewhere.
func Relax(ops []porcupine.Operation, from, to int64) []porcupine.Operation {
	var last int64
	for _, op := range ops {
		last = max(last, op.Return)
	}
	out := make([]porcupine.Operation, 0, len(ops))
	for _, op := range ops {
		if op.Call <= to && op.Return >= from {
			if op.Input.(Input).Kind == Get {
				continue
			}
			op.Output, op.Return = Output{Unknown: true}, last
		}
		out = append(out, op)
	}
	return out
}

// Explain says, for each key whose history porcupine could not linearize,
// where the longest linearization it found stops: the register's value
// there and the first call (by return time) it could not place after it,
// with the write that produced the value that call read, if any. ops is
// what was checked, info what Check returned for it.
func Explain(ops []porcupine.Operation, info porcupine.LinearizationInfo) []string {
	type id struct {
		client    int
		call, ret int64
	}
	var out []string
	// Partition is deterministic, so its partitions are the ones info
	// holds, in the same order.
	partitions := Model.Partition(ops)
	for p, partials := range info.PartialLinearizationsOperations() {
		part := partitions[p]
		var longest []porcupine.Operation
		for _, l := range partials {
			if len(l) > len(longest) {
				longest = l
			}
		}
		key := part[0].Input.(Input).Key
		placed := map[id]bool{}
		state := Model.Init()
		for _, op := range longest {
			placed[id{op.ClientId, op.Call, op.Return}] = true
			_, state = Model.Step(state, op.Input, op.Output)
		}
		var stuck *porcupine.Operation
		for i, op := range part {
			if !placed[id{op.ClientId, op.Call, op.Return}] && (stuck == nil || op.Return < stuck.Return) {
				stuck = &part[i]
			}
		}
		if stuck == nil {
			continue // this key is linearizable
		}
		total := len(part)
		s := fmt.Sprintf("key %s: %d of %d calls linearized; the register holds %s when %s (client %d, %s to %s) cannot follow",
			key, len(longest), total, Model.DescribeState(state), Model.DescribeOperation(stuck.Input, stuck.Output),
			stuck.ClientId, seconds(stuck.Call), seconds(stuck.Return))
		if in, o := stuck.Input.(Input), stuck.Output.(Output); in.Kind == Get && o.Value != Absent {
			for _, w := range ops {
				if wi := w.Input.(Input); wi.Kind == Set && wi.Key == key && wi.Value == o.Value {
					s += fmt.Sprintf("; %d was written by a set from %s to %s answered %v", o.Value, seconds(w.Call), seconds(w.Return), w.Metadata)
				}
			}
		}
		if m := stuck.Metadata; m != nil {
			s += fmt.Sprintf("; the call was answered %v", m)
		}
		out = append(out, s)
	}
	return out
}

func seconds(ns int64) string { return fmt.Sprintf("%.3fs", float64(ns)/1e9) }
