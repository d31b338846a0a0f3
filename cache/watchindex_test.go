package cache

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// matches is the rule the index implements, written as plainly as it is
// said (Watch's documentation): a key of the filter, a key under its
// prefix, or a change carrying one of its tags.
func (w *watcher) matches(x *Change) bool {
	if _, ok := w.keys[x.Key]; ok {
		return true
	}
	if w.prefix != "" && strings.HasPrefix(x.Key, w.prefix) {
		return true
	}
	for _, t := range x.Tags {
		if _, ok := w.tags[t]; ok {
			return true
		}
	}
	return false
}

// The index finds exactly the watchers matches accepts, each once, as
// watchers come and go.
func TestWatcherIndexAgreesWithMatches(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	name := func(kind string) string { return fmt.Sprintf("%s%d", kind, rng.IntN(8)) }
	ix := newWatcherIndex()
	live := map[*watcher]struct{}{}
	for round := range 2000 {
		if len(live) < 40 || rng.IntN(3) > 0 {
			w := &watcher{}
			if rng.IntN(2) == 0 {
				w.keys = map[string]struct{}{}
				for range 1 + rng.IntN(3) {
					w.keys[name("k")] = struct{}{}
				}
			}
			if rng.IntN(3) == 0 {
				w.prefix = fmt.Sprintf("k%d", rng.IntN(8))[:1+rng.IntN(2)]
			}
			if rng.IntN(2) == 0 {
				w.tags = map[string]struct{}{}
				for range 1 + rng.IntN(2) {
					w.tags[name("t")] = struct{}{}
				}
			}
			ix.add(w)
			live[w] = struct{}{}
		} else {
			for w := range live {
				ix.remove(w)
				delete(live, w)
				break
			}
		}
		x := &Change{Key: name("k")}
		for range rng.IntN(3) {
			x.Tags = append(x.Tags, name("t"))
		}
		got := map[*watcher]int{}
		ix.each(x, func(w *watcher) { got[w]++ })
		for w := range live {
			if want := w.matches(x); want != (got[w] == 1) {
				t.Fatalf("round %d: watcher keys %v prefix %q tags %v, change %s %v: visited %d times; matches = %v", round, w.keys, w.prefix, w.tags, x.Key, x.Tags, got[w], want)
			}
		}
		for w := range got {
			if _, ok := live[w]; !ok {
				t.Fatalf("round %d: a removed watcher was visited", round)
			}
		}
	}
}
