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

// TestPlaygroundInBrowser opens the playground of the built service, run
// with its default development settings (the limits included), in headless
// Chromium: the schema must load (the docs pane shows the root types and
// their fields), every example operation must run through the page's UI
// and answer without errors, and the page must ask for nothing outside the
// service's own origin, throw nothing, log no error and break none of its
// Content-Security-Policy.
func TestPlaygroundInBrowser(t *testing.T) {
	bin := chromiumPath()
	if bin == "" {
		t.Skip("browser test skipped: no Chromium found (/usr/bin/chromium, or chromium, chromium-browser or google-chrome on PATH); install Debian's chromium to run it")
	}
	_, doc := loadExamples(t)
	cases := exampleCases()
	checkExampleOrder(t, doc, cases)
	svc := startService(t)
	origin, err := url.Parse(svc.URL)
	if err != nil {
		t.Fatal(err)
	}

	// One bound for everything the browser does, start-up included: the
	// allocator kills Chromium when it expires.
	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Second)
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
		consoled   []string
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
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				consoled = append(consoled, consoleText(ev))
			}
		}
	})
	if err != nil {
		t.Fatalf("start Chromium (%s): %v", bin, err)
	}
	// Checked in a cleanup so that a test stopped early by a page that
	// does not work still says what the page asked for elsewhere and what
	// went wrong in it.
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, u := range requested {
			if !sameOrigin(u, origin) {
				t.Errorf("the page requested %s, which is not on the service (%s)", u, svc.URL)
			}
		}
		for _, e := range exceptions {
			t.Errorf("uncaught exception in the page: %s", e)
		}
		for _, c := range consoled {
			t.Errorf("the page logged an error: %s", c)
		}
	})
	if _, err := chromedp.Call(bctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspViolations}); err != nil {
		t.Fatalf("install the CSP violation listener: %v", err)
	}

	// A bare / redirects to the page with the examples in the editor.
	openCtx, cancelOpen := context.WithTimeout(bctx, 30*time.Second)
	defer cancelOpen()
	if err := chromedp.Do(openCtx,
		chromedp.Navigate(svc.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(".graphiql-query-editor .CodeMirror")),
		chromedp.WaitVisible(chromedp.CSS(".graphiql-execute-button")),
	); err != nil {
		t.Fatalf("open the playground: %v (CSP violations: %v)", err, readViolations(bctx))
	}
	initial, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.getValue()`))
	if err != nil {
		t.Fatalf("read the editor: %v", err)
	}
	if initial != Examples {
		t.Errorf("editor opened with:\n%s\nwant the examples:\n%s", initial, Examples)
	}

	// The schema: GraphiQL asks for it as the page opens, and the docs
	// pane and autocompletion are built from the answer. A refused schema
	// query shows as an error in the result pane and in the docs pane.
	t.Run("docs pane", func(t *testing.T) {
		openDocs(t, bctx)
	})

	previous := ""
	for _, tt := range cases {
		// In order, not in parallel: the steps share one page, and later
		// examples read what CacheSet wrote.
		ok := t.Run(tt.operation, func(t *testing.T) {
			runExample(t, bctx, tt.operation)
			result, _ := waitForResult(t, bctx, tt.field, previous)
			previous = result
			resp := resultResponse(t, result)
			tt.check(t, resp.Data[tt.field])
		})
		if !ok {
			t.Fatalf("stopped at the example %s: the ones after it read what it should have done", tt.operation)
		}
	}

	t.Run("cacheGet typed into the editor", func(t *testing.T) {
		svc.setRaw(t, "greeting", `{"hello":"browser"}`)
		runTyped(t, bctx, `{ cacheGet(key: "greeting") }`)
		result, shown := waitForResult(t, bctx, "cacheGet", previous)
		if !strings.Contains(shown, `"hello": "browser"`) {
			t.Errorf("result pane shows:\n%s\nwant it to contain \"hello\": \"browser\"", shown)
		}
		wantJSON(`{"hello":"browser"}`)(t, resultResponse(t, result).Data["cacheGet"])
	})

	// Subscriptions: the page opens a WebSocket to the service (its own
	// bundled graphql-ws client, allowed by connect-src) and shows the
	// events as they come.
	t.Run("redisHealthChanged over a WebSocket", func(t *testing.T) {
		runTyped(t, bctx, `subscription { redisHealthChanged { status } }`)
		result, _ := waitForResult(t, bctx, "redisHealthChanged", previous)
		previous = result
		var h struct{ Status string }
		if err := json.Unmarshal(resultResponse(t, result).Data["redisHealthChanged"], &h); err != nil || h.Status != "CONNECTED" {
			t.Errorf("redisHealthChanged = %s (%v); want status CONNECTED", result, err)
		}
	})

	for _, v := range readViolations(bctx) {
		t.Errorf("Content-Security-Policy violation: %s", v)
	}
	if shown, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.body.innerText`)); err != nil {
		t.Errorf("read the page: %v", err)
	} else {
		for _, code := range []string{"DEPTH_LIMIT_EXCEEDED", "COMPLEXITY_LIMIT_EXCEEDED", "ALIAS_LIMIT_EXCEEDED", "INTROSPECTION_DISABLED", "GRAPHQL_VALIDATION_FAILED"} {
			if strings.Contains(shown, code) {
				t.Errorf("the page shows %s", code)
			}
		}
	}

	mu.Lock()
	defer mu.Unlock()
	// Guard against a listener that saw nothing: the page's own files and
	// the endpoint must be among the requests.
	for _, want := range []string{AssetPrefix + pageFiles.js, AssetPrefix + pageFiles.react, AssetPrefix + pageFiles.css, "/graphql"} {
		if !slices.ContainsFunc(requested, func(u string) bool { return strings.HasPrefix(u, svc.URL+want) }) {
			t.Errorf("no request for %s seen; requests: %v", want, requested)
		}
	}
}

// openDocs opens the docs pane and follows the query root type to its
// fields, which GraphiQL can show only once the schema has loaded.
func openDocs(t *testing.T, ctx context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`.graphiql-sidebar button[aria-label*="Documentation Explorer"]`)),
		chromedp.WaitVisible(chromedp.CSS(".graphiql-doc-explorer")),
	); err != nil {
		t.Fatalf("open the docs pane: %v", err)
	}
	// Either the root types appear, or GraphiQL's error does.
	state, err := chromedp.Run(ctx, chromedp.Poll[string](`(() => {
  const err = document.querySelector('.graphiql-doc-explorer-error');
  if (err) return 'error: ' + err.innerText;
  const roots = document.querySelectorAll('.graphiql-doc-explorer-root-type');
  return roots.length ? 'ok' : null;
})()`, chromedp.WithPollingTimeout(15*time.Second)))
	if err != nil {
		t.Fatalf("the docs pane showed neither the schema nor an error: %v", err)
	}
	if state != "ok" {
		t.Fatalf("the docs pane shows %s", state)
	}
	if err := chromedp.Do(ctx,
		chromedp.Click(`//span[contains(@class,"graphiql-doc-explorer-root-type")][normalize-space(.)="query"]/following-sibling::a[normalize-space(.)="Query"]`),
	); err != nil {
		html, _ := chromedp.Run(context.WithoutCancel(ctx), chromedp.Evaluate[string](`document.querySelector('.graphiql-doc-explorer').outerHTML`))
		t.Fatalf("follow the Query root type: %v\n%s", err, html)
	}
	fields, err := chromedp.Run(ctx, chromedp.Poll[string](`(() => {
  const names = [...document.querySelectorAll('.graphiql-doc-explorer .graphiql-doc-explorer-field-name')].map(e => e.innerText);
  return names.includes('cacheGetMany') ? names.join(' ') : null;
})()`, chromedp.WithPollingTimeout(10*time.Second)))
	if err != nil {
		t.Fatalf("the docs pane does not list Query's fields: %v", err)
	}
	for _, want := range []string{"redisHealth", "cacheGet", "cacheEntry"} {
		if !slices.Contains(strings.Fields(fields), want) {
			t.Errorf("the docs pane lists Query's fields %q; want %s among them", fields, want)
		}
	}
}

// resultResponse decodes the result pane's content, and fails on errors
// in it.
func resultResponse(t *testing.T, result string) graphQLResponse {
	t.Helper()
	var resp graphQLResponse
	if err := json.Unmarshal([]byte(result), &resp); err != nil {
		t.Fatalf("result pane is not a GraphQL response: %v\n%s", err, result)
	}
	if len(resp.Errors) > 0 {
		t.Fatalf("the result pane shows errors: %+v", resp.Errors)
	}
	return resp
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

// waitForResult waits until the result pane holds a response with field
// other than previous (the result of the step before), and returns the
// pane's content and its visible text.
func waitForResult(t *testing.T, ctx context.Context, field, previous string) (result, shown string) {
	t.Helper()
	f, err := json.Marshal(`"` + field + `"`)
	if err != nil {
		t.Fatal(err)
	}
	p, err := json.Marshal(previous)
	if err != nil {
		t.Fatal(err)
	}
	result, err = chromedp.Run(ctx, chromedp.Poll[string](fmt.Sprintf(`(() => {
  const cm = document.querySelector('.result-window .CodeMirror');
  const v = cm && cm.CodeMirror.getValue();
  return v && v !== %s && (v.includes(%s) || v.includes('"errors"')) ? v : null;
})()`, p, f), chromedp.WithPollingTimeout(20*time.Second)))
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
	// The WebSocket of subscriptions is the service's own endpoint.
	ws := map[string]string{"http": "ws", "https": "wss"}[origin.Scheme]
	return (u.Scheme == origin.Scheme || u.Scheme == ws) && u.Host == origin.Host
}

func consoleText(ev *runtime.EventConsoleAPICalled) string {
	var parts []string
	for _, a := range ev.Args {
		switch {
		case a.Description != "":
			parts = append(parts, a.Description)
		case len(a.Value) > 0:
			parts = append(parts, string(a.Value))
		default:
			parts = append(parts, string(a.Type))
		}
	}
	return fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(parts, " "))
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
