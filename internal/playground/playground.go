package playground

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// Mount registers the playground on mux, which serves the site root: the
// page at GET / and the embedded files under GET AssetPrefix. endpoint is
// the GraphQL endpoint's path on the same origin, for example "/graphql".
// Like Handler, it panics if gqlgen's page cannot be made to fit the
// Content-Security-Policy.
func Mount(mux *http.ServeMux, title, endpoint string) {
	mux.Handle("GET /{$}", Handler(title, endpoint))
	mux.Handle("GET "+AssetPrefix, Assets())
}

// Handler returns the GraphiQL page for endpoint, a same-origin path such as
// "/graphql" (queries go to it over HTTP, subscriptions over its ws or wss
// twin on the same host). The page loads its files from AssetPrefix, so
// Assets must be served there. A request without a query parameter is
// redirected to one carrying Examples; see doc.go.
//
// The page is rendered once, when it is first asked for (a process that
// is never asked reads none of the embedded files), so that the hashes in
// its Content-Security-Policy are those of the bytes served. Handler
// panics if endpoint is not such a path; the page answers 500 if it has no
// inline script to hash: that would mean gqlgen's template changed shape,
// and the package's tests would fail first.
func Handler(title, endpoint string) http.Handler {
	if !sameOriginPath.MatchString(endpoint) {
		panic(fmt.Sprintf("playground: endpoint %q: want a same-origin path such as /graphql", endpoint))
	}
	page := sync.OnceValues(func() (*graphiqlPage, error) { return newPage(title, endpoint) })
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := page()
		if err != nil {
			http.Error(w, "playground: "+err.Error(), http.StatusInternalServerError)
			return
		}
		p.ServeHTTP(w, r)
	})
}

// graphiqlPage is the rendered GraphiQL page and the policy that fits it.
type graphiqlPage struct {
	body []byte
	csp  string
}

func newPage(title, endpoint string) (*graphiqlPage, error) {
	c := loadedCatalog()
	pageFiles, assets := c.page, c.assets
	u := func(name string) string { return AssetPrefix + name }
	rendered, err := pageValues{
		title: title, endpoint: endpoint,
		js: u(pageFiles.js), css: u(pageFiles.css), react: u(pageFiles.react), reactDOM: u(pageFiles.reactDOM),
		jsSRI: assets[pageFiles.js].sri, cssSRI: assets[pageFiles.css].sri,
		reactSRI: assets[pageFiles.react].sri, domSRI: assets[pageFiles.reactDOM].sri,
	}.render()
	if err != nil {
		return nil, err
	}
	body := []byte(rendered)
	scripts := inlineScriptHashes(body)
	if len(scripts) == 0 {
		return nil, fmt.Errorf("gqlgen's GraphiQL page has no inline script to allow by hash")
	}
	return &graphiqlPage{body: body, csp: contentSecurityPolicy(scripts)}, nil
}

func (p *graphiqlPage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	if !q.Has("query") {
		// The page's script reads the editor's initial content from the
		// URL; other parameters (variables, headers) are kept. A
		// query-only reference resolves against the page's own URL, so the
		// redirect cannot lead elsewhere whatever path the page is on.
		q.Set("query", Examples)
		w.Header().Set("Location", "?"+q.Encode())
		w.WriteHeader(http.StatusFound)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", p.csp)
	// The page names the asset versions and their hashes, which change on
	// upgrade, so it is revalidated rather than kept.
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	// The URL carries the editor's content; it stays on this page.
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Length", strconv.Itoa(len(p.body)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(p.body)
}

// Inline scripts are those without a src attribute. gqlgen's template
// writes plain tags, so a regular expression is enough, and the browser
// test checks the result against Chromium's own hashing.
var (
	scriptElement = regexp.MustCompile(`(?is)<script\b([^>]*)>(.*?)</script>`)
	srcAttr       = regexp.MustCompile(`(?i)\bsrc\s*=`)
)

// inlineScriptHashes returns the CSP source expressions ('sha256-...') of
// the inline scripts in page. The browser hashes a script's text exactly as
// it appears between the tags.
func inlineScriptHashes(page []byte) []string {
	var hashes []string
	for _, m := range scriptElement.FindAllSubmatch(page, -1) {
		if srcAttr.Match(m[1]) {
			continue
		}
		sum := sha256.Sum256(m[2])
		hashes = append(hashes, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
	}
	return hashes
}

// contentSecurityPolicy allows scripts from this origin and the page's
// inline script by hash, and no eval: GraphiQL 4 needs nothing more.
//
// Styles also allow 'unsafe-inline', because GraphiQL's menus and dialogs
// (react-remove-scroll-bar) insert a <style> element whose text depends on
// the browser's scrollbar width, so no hash can name it in advance. Inline
// CSS cannot run code; script-src is what keeps injected markup inert.
//
// GraphiQL's stylesheet inlines its fonts and icons as data: URLs, hence
// data: for font-src and img-src; no network is involved.
//
// The endpoint is on the page's origin (Handler allows nothing else), so
// connect-src 'self' covers both its HTTP requests and its subscriptions'
// WebSocket (CSP Level 3 matches ws: and wss: on the same host to 'self').
func contentSecurityPolicy(scriptHashes []string) string {
	directives := []string{
		"default-src 'self'",
		"script-src " + strings.Join(append([]string{"'self'"}, scriptHashes...), " "),
		"style-src 'self' 'unsafe-inline'",
		"img-src 'self' data:",
		"font-src 'self' data:",
		"connect-src 'self'",
		"object-src 'none'",
		"base-uri 'none'",
		"form-action 'none'",
		"frame-ancestors 'none'",
	}
	return strings.Join(directives, "; ")
}
