package cache

import "testing"

func TestParseNotify(t *testing.T) {
	for _, tt := range []struct {
		value string
		want  KeyspaceNotifications
	}{
		{"", KeyspaceOff},
		{"KEA", KeyspaceOn},
		{"AK", KeyspaceOn},
		{"Kg$xe", KeyspaceOn},
		{"Kx", KeyspaceOff},   // expiries only: no writes, no evictions
		{"EA", KeyspaceOff},   // keyevent channels only: not the ones subscribed
		{"Kg$x", KeyspaceOff}, // no evictions
		{"K$xeg", KeyspaceOn}, // any order
		{"Kg$xelshz", KeyspaceOn},
	} {
		if got := parseNotify(tt.value); got != tt.want {
			t.Errorf("parseNotify(%q) = %s; want %s", tt.value, got, tt.want)
		}
	}
}

func TestKeyspaceKind(t *testing.T) {
	for _, tt := range []struct {
		event string
		kind  ChangeKind
		hold  bool
	}{
		{"expired", ChangeExpired, false},
		{"evicted", ChangeEvicted, false},
		{"set", ChangeSet, true},
		{"setrange", ChangeSet, true},
		{"append", ChangeSet, true},
		{"rename_to", ChangeSet, true},
		{"hset", ChangeSet, true},
		{"del", ChangeDelete, true},
		{"rename_from", ChangeDelete, true},
		{"incrby", ChangeIncremented, true},
		{"incrbyfloat", ChangeIncremented, true},
		{"expire", ChangeTTL, true},
		{"persist", ChangeTTL, true},
		{"new", "", false},
	} {
		if kind, hold := keyspaceKind(tt.event); kind != tt.kind || hold != tt.hold {
			t.Errorf("keyspaceKind(%q) = %s, %v; want %s, %v", tt.event, kind, hold, tt.kind, tt.hold)
		}
	}
}

func TestGlobEscape(t *testing.T) {
	if got, want := globEscape(`a*b?c[d]e\f`), `a\*b\?c\[d\]e\\f`; got != want {
		t.Errorf("globEscape = %q; want %q", got, want)
	}
}
