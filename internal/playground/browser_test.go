package playground

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromiumPath returns the browser to test with, or "" when there is none.
func chromiumPath() string {
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// cspViolations collects the page's Content-Security-Policy violations. It
// runs before any script of the page, and as an injected script it is not
// itself subject to the policy.
const cspViolations = `
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline') + ' at ' + e.sourceFile + ':' + e.lineNumber);
});
`

// TestPlaygroundInBrowser loads the playground in headless Chromium against
// the real service and Redis, runs operations through the page's UI, and
// fails if the page asked for anything outside the service's own origin or
// broke its Content-Security-Policy.
func TestPlaygroundInBrowser(t *testing.T) {
	bin := chromiumPath()
	if bin == "" {
		t.Skip("browser test skipped: no Chromium found (/usr/bin/chromium, or chromium, chromium-browser or google-chrome on PATH); install Debian's chromium to run it")
	}
	ts, c := startService(t)
	if _, err := c.SetValue(t.Context(), "greeting", map[string]string{"hello": "browser"}, 0); err != nil {
		t.Fatalf("store the value the page will read: %v", err)
	}
	origin, err := url.Parse(ts.URL)
	if err != nil {
		t.Fatal(err)
	}

	// One bound for everything the browser does, start-up included: the
	// allocator kills Chromium when it expires.
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(bin),
		chromedp.NoSandbox, // root in a container
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.WindowSize(1280, 900), // room for the result pane beside the editor
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// Name resolution fails for every host but the test server's, so
		// nothing the browser might try on its own leaves the machine; the
		// page's own requests are checked below whether or not they could
		// succeed.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE "+origin.Hostname()),
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()

	var (
		mu         sync.Mutex
		requested  []string
		exceptions []string
	)
	// Listen starts the browser; the callback must return fast, so it only
	// records.
	err = chromedp.Listen(bctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			requested = append(requested, ev.Request.URL)
		case *network.EventWebSocketCreated:
			requested = append(requested, ev.URL)
		case *runtime.EventExceptionThrown:
			exceptions = append(exceptions, exceptionText(ev.ExceptionDetails))
		}
	})
	if err != nil {
		t.Fatalf("start Chromium (%s): %v", bin, err)
	}
	// Checked in a cleanup so that a test stopped early by a page that
	// does not work still says what the page asked for elsewhere.
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, u := range requested {
			if !sameOrigin(u, origin) {
				t.Errorf("the page requested %s, which is not on the service (%s)", u, ts.URL)
			}
		}
	})
	if _, err := chromedp.Call(bctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspViolations}); err != nil {
		t.Fatalf("install the CSP violation listener: %v", err)
	}

	// A bare / redirects to the page with the examples in the editor.
	openCtx, cancelOpen := context.WithTimeout(bctx, 20*time.Second)
	defer cancelOpen()
	if err := chromedp.Do(openCtx,
		chromedp.Navigate(ts.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(".graphiql-query-editor .CodeMirror")),
		chromedp.WaitVisible(chromedp.CSS(".graphiql-execute-button")),
	); err != nil {
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("open the playground: %v (exceptions: %v; CSP violations: %v)", err, exceptions, readViolations(bctx))
	}
	initial, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.getValue()`))
	if err != nil {
		t.Fatalf("read the editor: %v", err)
	}
	if initial != Examples {
		t.Errorf("editor opened with:\n%s\nwant the examples:\n%s", initial, Examples)
	}

	tests := []struct {
		name string
		// run starts the operation through the page's UI.
		run   func(t *testing.T, ctx context.Context)
		field string
		// shown is text the result pane must display.
		shown string
		check func(t *testing.T, data json.RawMessage)
	}{
		{
			name:  "redisHealth from the examples",
			run:   func(t *testing.T, ctx context.Context) { runExample(t, ctx, "RedisHealth") },
			field: "redisHealth",
			shown: `"status": "CONNECTED"`,
			check: func(t *testing.T, data json.RawMessage) {
				var h struct{ Status, Mode, Breaker string }
				if err := json.Unmarshal(data, &h); err != nil {
					t.Fatal(err)
				}
				if h.Status != "CONNECTED" || h.Mode != "STANDALONE" || h.Breaker != "CLOSED" {
					t.Errorf("redisHealth = %+v, want CONNECTED, STANDALONE, CLOSED", h)
				}
			},
		},
		{
			name:  "cacheGet typed into the editor",
			run:   func(t *testing.T, ctx context.Context) { runTyped(t, ctx, `{ cacheGet(key: "greeting") }`) },
			field: "cacheGet",
			shown: `"hello": "browser"`,
			check: func(t *testing.T, data json.RawMessage) {
				var v map[string]string
				if err := json.Unmarshal(data, &v); err != nil {
					t.Fatal(err)
				}
				if v["hello"] != "browser" || len(v) != 1 {
					t.Errorf("cacheGet = %v, want {hello: browser}", v)
				}
			},
		},
	}
	for _, tt := range tests {
		// In order, not in parallel: the steps share one page.
		t.Run(tt.name, func(t *testing.T) {
			tt.run(t, bctx)
			result, shown := waitForResult(t, bctx, tt.field)
			if !strings.Contains(shown, tt.shown) {
				t.Errorf("result pane shows:\n%s\nwant it to contain %s", shown, tt.shown)
			}
			var resp graphQLResponse
			if err := json.Unmarshal([]byte(result), &resp); err != nil {
				t.Fatalf("result pane is not a GraphQL response: %v\n%s", err, result)
			}
			if len(resp.Errors) > 0 {
				t.Fatalf("errors: %+v", resp.Errors)
			}
			tt.check(t, resp.Data[tt.field])
		})
	}

	for _, v := range readViolations(bctx) {
		t.Errorf("Content-Security-Policy violation: %s", v)
	}

	mu.Lock()
	defer mu.Unlock()
	for _, e := range exceptions {
		t.Errorf("uncaught exception in the page: %s", e)
	}
	// Guard against a listener that saw nothing: the page's own files and
	// the endpoint must be among the requests.
	for _, want := range []string{AssetPrefix + pageFiles.js, AssetPrefix + pageFiles.react, AssetPrefix + pageFiles.css, "/graphql"} {
		if !slices.ContainsFunc(requested, func(u string) bool { return strings.HasPrefix(u, ts.URL+want) }) {
			t.Errorf("no request for %s seen; requests: %v", want, requested)
		}
	}
}

// runExample runs one of the example operations the editor opened with:
// with several operations in the editor, the run button opens a menu of
// them, and the operation is picked there.
func runExample(t *testing.T, ctx context.Context, operation string) {
	t.Helper()
	item := fmt.Sprintf(`//*[@role="menuitem"][normalize-space(.)=%q]`, operation)
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(".graphiql-execute-button")),
		chromedp.Click(item),
	); err != nil {
		t.Fatalf("run the example %s: %v", operation, err)
	}
}

// runTyped replaces the editor's content with query and clicks the run
// button once GraphiQL has taken the edit in: it debounces edits, and a
// click before that would run what the editor held before. The page
// mirrors each edit it has taken into the URL, which is the sign used.
func runTyped(t *testing.T, ctx context.Context, query string) {
	t.Helper()
	q, err := json.Marshal(query)
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx,
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(%s)`, q)),
	); err != nil {
		t.Fatalf("type %s: %v", query, err)
	}
	taken := fmt.Sprintf(`new URLSearchParams(location.search).get('query') === %s && !document.querySelector('.graphiql-execute-button').hasAttribute('aria-haspopup')`, q)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](taken, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("wait for GraphiQL to take in %s: %v", query, err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(".graphiql-execute-button"))); err != nil {
		t.Fatalf("run %s: %v", query, err)
	}
}

// waitForResult waits until the result pane holds a response with field,
// and returns the pane's content and its visible text.
func waitForResult(t *testing.T, ctx context.Context, field string) (result, shown string) {
	t.Helper()
	f, err := json.Marshal(`"` + field + `"`)
	if err != nil {
		t.Fatal(err)
	}
	result, err = chromedp.Run(ctx, chromedp.Poll[string](fmt.Sprintf(`(() => {
  const cm = document.querySelector('.result-window .CodeMirror');
  const v = cm && cm.CodeMirror.getValue();
  return v && v.includes(%s) ? v : null;
})()`, f), chromedp.WithPollingTimeout(20*time.Second)))
	if err != nil {
		t.Fatalf("wait for a result with %s: %v", field, err)
	}
	shown, err = chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('.result-window').innerText`))
	if err != nil {
		t.Fatalf("read the result pane: %v", err)
	}
	return result, shown
}

// readViolations returns what cspViolations collected, or why it could
// not be read.
func readViolations(ctx context.Context) []string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.__cspViolations`))
	if err != nil {
		return []string{"could not read the violations: " + err.Error()}
	}
	return v
}

// sameOrigin reports whether raw is on origin. data: URLs carry their
// content with them and cause no request, so they pass.
func sameOrigin(raw string, origin *url.URL) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	if u.Scheme == "data" {
		return true
	}
	return u.Scheme == origin.Scheme && u.Host == origin.Host
}

func exceptionText(d *runtime.ExceptionDetails) string {
	if d == nil {
		return "unknown exception"
	}
	text := d.Text
	if d.Exception != nil && d.Exception.Description != "" {
		text += ": " + d.Exception.Description
	}
	return fmt.Sprintf("%s (%s:%d)", text, d.URL, d.LineNumber)
}
