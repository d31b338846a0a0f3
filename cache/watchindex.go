package cache

import "strings"

// watcherIndex finds the watchers a change matches without looking at the
// others: by key, by tag, and the prefix watchers (few, in practice) one
// by one. A hub of 10 000 watchers of different keys would otherwise test
// all 10 000 for every change, under its lock. Used under the hub's mutex.
type watcherIndex struct {
	byKey    map[string]map[*watcher]struct{}
	byTag    map[string]map[*watcher]struct{}
	prefixed map[*watcher]struct{}
	// epoch marks the watchers one delivery has visited (watcher.seen),
	// so that a watcher matching by key and by tag gets the change once.
	epoch uint64
}

func newWatcherIndex() watcherIndex {
	return watcherIndex{byKey: map[string]map[*watcher]struct{}{}, byTag: map[string]map[*watcher]struct{}{}, prefixed: map[*watcher]struct{}{}}
}

func (ix *watcherIndex) add(w *watcher) {
	for k := range w.keys {
		addTo(ix.byKey, k, w)
	}
	for t := range w.tags {
		addTo(ix.byTag, t, w)
	}
	if w.prefix != "" {
		ix.prefixed[w] = struct{}{}
	}
}

func (ix *watcherIndex) remove(w *watcher) {
	for k := range w.keys {
		removeFrom(ix.byKey, k, w)
	}
	for t := range w.tags {
		removeFrom(ix.byTag, t, w)
	}
	delete(ix.prefixed, w)
}

func addTo(m map[string]map[*watcher]struct{}, name string, w *watcher) {
	set := m[name]
	if set == nil {
		set = map[*watcher]struct{}{}
		m[name] = set
	}
	set[w] = struct{}{}
}

func removeFrom(m map[string]map[*watcher]struct{}, name string, w *watcher) {
	if set := m[name]; set != nil {
		delete(set, w)
		if len(set) == 0 {
			delete(m, name)
		}
	}
}

// each calls fn once for every watcher x matches: one of its keys, a key
// under its prefix, or one of x's tags among its tags
// (TestWatcherIndexAgreesWithMatches holds it to that rule).
func (ix *watcherIndex) each(x *Change, fn func(*watcher)) {
	ix.epoch++
	visit := func(w *watcher) {
		if w.seen != ix.epoch {
			w.seen = ix.epoch
			fn(w)
		}
	}
	for w := range ix.byKey[x.Key] {
		visit(w)
	}
	for w := range ix.prefixed {
		if strings.HasPrefix(x.Key, w.prefix) {
			visit(w)
		}
	}
	for _, t := range x.Tags {
		for w := range ix.byTag[t] {
			visit(w)
		}
	}
}
