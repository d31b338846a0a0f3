package cache

import (
	"runtime"
	"strings"
	"testing"
)

// TestFormMemo: the memo answers as a scan would, for the bytes it was
// given, and never for other bytes at the same length, even once the
// remembered ones are collected and their memory reused.
func TestFormMemo(t *testing.T) {
	var m formMemo
	compact := []byte(`"` + strings.Repeat("x", formMemoMin) + `"`)
	spaced := []byte(`[ "` + strings.Repeat("x", formMemoMin-4) + `"]`)
	for _, tc := range []struct {
		name string
		b    []byte
		want bool
	}{{"compact", compact, true}, {"spaced", spaced, false}} {
		for i := range 3 { // a scan, then the memo's answers
			if _, got := m.scanJSON(tc.b, true); got != tc.want {
				t.Errorf("%s, read %d: compact = %v; want %v", tc.name, i, got, tc.want)
			}
		}
	}
	// Strings of one length, remembered and dropped in turn: each one's
	// own form, whatever address it gets.
	for i := range 2000 {
		n := formMemoMin
		b := []byte(`"` + strings.Repeat("x", n) + `"`)
		want := i%2 == 0
		if !want {
			b = []byte(`[ "` + strings.Repeat("x", n-3) + `"]`) // the same length
		}
		v, got := m.scanJSON(b, true)
		if got != want || string(v) != string(b) {
			t.Fatalf("string %d (%.8q): compact = %v; want %v", i, b, got, want)
		}
		if i%100 == 0 {
			runtime.GC()
		}
	}
}
