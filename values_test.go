package main

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/school-erp/cache-service/internal/redistest"
)

// TestValuesAreStoredAsSent: a value passed in a variable is stored as the
// JSON text the request carried (less whitespace between tokens) and comes
// back byte for byte: object keys in the order sent, numbers as written,
// escapes as sent. A literal in the document is converted, as documented.
func TestValuesAreStoredAsSent(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	svc := startService(t, testEnv(srv.Addr))
	svc.waitRedisStatus(t, "connected", 5*time.Second)

	const set = `mutation($k: String!, $v: JSON) { cacheSet(key: $k, value: $v) { stored } }`
	tests := []struct {
		name string
		// body is the whole request, so that the variables' JSON text is
		// exactly what is written here.
		body   string
		key    string
		stored string // what Redis must hold, and cacheGet return
	}{
		{"keys in the order sent", `{"query":` + q(set) + `,"variables":{"k":"order","v":{"zeta":1,"alpha":{"y":2,"x":3}}}}`, "order", `{"zeta":1,"alpha":{"y":2,"x":3}}`},
		{"numbers as written", `{"query":` + q(set) + `,"variables":{"k":"numbers","v":[1.50,1e3,-0.0,9007199254740993]}}`, "numbers", `[1.50,1e3,-0.0,9007199254740993]`},
		{"escapes as sent", `{"query":` + q(set) + `,"variables":{"k":"escapes","v":"\u00e9 é <b>&amp; \/ \ud83d\ude00"}}`, "escapes", `"\u00e9 é <b>&amp; \/ \ud83d\ude00"`},
		{"whitespace between tokens dropped", `{"query":` + q(set) + `,"variables":{"k":"spaces","v":  { "a" :  [ 1 , 2 ] ,` + "\n" + `  "b" : " x  y " } }}`, "spaces", `{"a":[1,2],"b":" x  y "}`},
		{"null", `{"query":` + q(set) + `,"variables":{"k":"null-var","v":null}}`, "null-var", `null`},
		{"null literal", `{"query":` + q(`mutation { cacheSet(key: "null-lit", value: null) { stored } }`) + `}`, "null-lit", `null`},
		{"a literal is converted: keys sorted, numbers shortest", `{"query":` + q(`mutation { cacheSet(key: "literal", value: {zeta: 1.0, alpha: [1e3, "<"]}) { stored } }`) + `}`, "literal", `{"alpha":[1000,"<"],"zeta":1}`},
		{"in cacheSetMany", `{"query":` + q(`mutation($e: [CacheSetInput!]!) { cacheSetMany(entries: $e) { stored } }`) + `,"variables":{"e":[{"value":{"b":1,"a":2.50},"key":"many"}]}}`, "many", `{"b":1,"a":2.50}`},
		{"in cacheSetMany, null", `{"query":` + q(`mutation($e: [CacheSetInput!]!) { cacheSetMany(entries: $e) { stored } }`) + `,"variables":{"e":[{"key":"many-null","value":null}]}}`, "many-null", `null`},
		{"in cacheSetMany, one entry for the list", `{"query":` + q(`mutation($e: [CacheSetInput!]!) { cacheSetMany(entries: $e) { stored } }`) + `,"variables":{"e":{"key":"many-one","value":{"b":1,"a":2}}}}`, "many-one", `{"b":1,"a":2}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, raw := send(t, http.MethodPost, svc.url+"/graphql", "", tt.body)
			if status != http.StatusOK || !strings.Contains(raw, `"stored":true`) || strings.Contains(raw, `"errors"`) {
				t.Fatalf("write = %d %s; want stored", status, raw)
			}
			if got, err := srv.Do(t, "GET", "school-erp:"+tt.key); err != nil || got != tt.stored {
				t.Errorf("Redis holds %s (%v); want %s", got, err, tt.stored)
			}
			read, _ := json.Marshal(map[string]any{"query": `query($k: String!) { cacheGet(key: $k) cacheEntry(key: $k) { value etag } cacheExists(key: $k) }`, "variables": map[string]any{"k": tt.key}})
			_, _, got := send(t, http.MethodPost, svc.url+"/graphql", "", string(read))
			sum := sha1.Sum([]byte(tt.stored))
			want := `{"data":{"cacheGet":` + tt.stored + `,"cacheEntry":{"value":` + tt.stored + `,"etag":"` + hex.EncodeToString(sum[:]) + `"},"cacheExists":true}}`
			if got != want {
				t.Errorf("read back:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// q is s as a JSON string.
func q(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestValueIsRequired: null is a value, but a write without one is refused
// with a message that says so, and stores nothing.
func TestValueIsRequired(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	svc := startService(t, testEnv(srv.Addr))
	svc.waitRedisStatus(t, "connected", 5*time.Second)

	tests := []struct {
		name   string
		body   string
		key    string
		wantAt string // the error's path and code
		status int
	}{
		{"omitted", `{"query":` + q(`mutation { cacheSet(key: "omitted") { stored } }`) + `}`, "omitted", `["cacheSet"] BAD_USER_INPUT`, http.StatusOK},
		{"a variable left unset", `{"query":` + q(`mutation($v: JSON) { cacheSet(key: "unset", value: $v) { stored } }`) + `}`, "unset", `["cacheSet"] BAD_USER_INPUT`, http.StatusOK},
		{"omitted in cacheSetMany", `{"query":` + q(`mutation { cacheSetMany(entries: [{key: "ok", value: 1}, {key: "omitted-many"}]) { stored } }`) + `}`, "omitted-many", `["cacheSetMany",1] BAD_USER_INPUT`, http.StatusOK},
		// A body that is not UTF-8 is not JSON: the request is refused
		// whole, before anything runs, as a body that does not parse.
		{"not UTF-8", `{"query":` + q(`mutation($v: JSON) { cacheSet(key: "not-utf8", value: $v) { stored } }`) + `,"variables":{"v":"` + "\xff" + `"}}`, "not-utf8", `null INVALID_UTF8`, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, raw := send(t, http.MethodPost, svc.url+"/graphql", "", tt.body)
			var r fullResponse
			if err := json.Unmarshal([]byte(raw), &r); err != nil {
				t.Fatalf("HTTP %d %s: %v", status, raw, err)
			}
			if got := r.errorsAt(); status != tt.status || len(got) != 1 || got[0] != tt.wantAt {
				t.Fatalf("HTTP %d, errors %q (%s); want HTTP %d, one error %s", status, got, raw, tt.status, tt.wantAt)
			}
			if tt.name != "not UTF-8" && !strings.Contains(r.Errors[0].Message, "null stores JSON null") {
				t.Errorf("message %q does not say that null is how to store null", r.Errors[0].Message)
			}
			if got, _ := srv.Do(t, "EXISTS", "school-erp:"+tt.key); got != "0" {
				t.Errorf("EXISTS %s = %s; want nothing stored", tt.key, got)
			}
		})
	}
}
