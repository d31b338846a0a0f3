package playground

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	gqlplayground "github.com/99designs/gqlgen/graphql/playground"
)

// serve runs one request against h and returns the response.
func serve(t *testing.T, h http.Handler, method, target string, header http.Header) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

// body reads a response's body in full.
func body(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		t.Fatalf("read body: %v", err)
	}
	return b.Bytes()
}

// mounted returns a mux with the playground mounted as the service does.
func mounted(t *testing.T, endpoint string) *http.ServeMux {
	t.Helper()
	mux := http.NewServeMux()
	Mount(mux, "School ERP cache", endpoint)
	return mux
}

// pagePath is a page URL that carries editor state, so it is served
// rather than redirected.
const pagePath = "/?query=%7B+redisHealth+%7B+status+%7D+%7D"

func TestPageRedirectsToExamples(t *testing.T) {
	mux := mounted(t, "/graphql")
	tests := []struct {
		name   string
		target string
		// wantQuery is the query parameter the redirect must carry; empty
		// when the page must be served as it is.
		wantQuery string
		// keep are parameters that must survive the redirect.
		keep url.Values
	}{
		{name: "bare root", target: "/", wantQuery: Examples},
		{name: "other state kept", target: "/?variables=%7B%22k%22%3A1%7D&headers=%7B%7D", wantQuery: Examples,
			keep: url.Values{"variables": {`{"k":1}`}, "headers": {"{}"}}},
		{name: "query given", target: pagePath},
		{name: "empty query given", target: "/?query="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := serve(t, mux, http.MethodGet, tt.target, nil)
			if tt.wantQuery == "" {
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d, want 200", resp.StatusCode)
				}
				return
			}
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("status %d, want 302", resp.StatusCode)
			}
			ref, err := url.Parse(resp.Header.Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			base, err := url.Parse("http://127.0.0.1" + tt.target)
			if err != nil {
				t.Fatal(err)
			}
			loc := base.ResolveReference(ref)
			if loc.Host != base.Host || loc.Path != "/" {
				t.Errorf("redirect to %s, want the same page", loc)
			}
			q := loc.Query()
			if got := q.Get("query"); got != tt.wantQuery {
				t.Errorf("redirect query =\n%s\nwant\n%s", got, tt.wantQuery)
			}
			for k, v := range tt.keep {
				if !slices.Equal(q[k], v) {
					t.Errorf("parameter %s = %q after the redirect, want %q", k, q[k], v)
				}
			}
		})
	}
}

func TestPageMethods(t *testing.T) {
	h := Handler("School ERP cache", "/graphql")
	tests := []struct {
		method   string
		want     int
		wantBody bool
	}{
		{http.MethodGet, http.StatusOK, true},
		{http.MethodHead, http.StatusOK, false},
		{http.MethodPost, http.StatusMethodNotAllowed, true},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			resp := serve(t, h, tt.method, pagePath, nil)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.want == http.StatusOK && !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				t.Errorf("Content-Type %q, want text/html", resp.Header.Get("Content-Type"))
			}
			if got := len(body(t, resp)) > 0; got != tt.wantBody {
				t.Errorf("body sent: %v, want %v", got, tt.wantBody)
			}
		})
	}
}

var (
	tagRe  = regexp.MustCompile(`(?is)<(script|link)\b([^>]*)>`)
	attrRe = regexp.MustCompile(`(?is)([a-z-]+)\s*=\s*"([^"]*)"`)
)

// TestPageLoadsOnlyEmbeddedAssets checks every file the page references:
// same-origin, served with 200, and matching the integrity the page gives.
func TestPageLoadsOnlyEmbeddedAssets(t *testing.T) {
	mux := mounted(t, "/graphql")
	page := body(t, serve(t, mux, http.MethodGet, pagePath, nil))
	for _, other := range []string{"http://", "https://", `"//`, "cdn."} {
		if bytes.Contains(page, []byte(other)) {
			t.Errorf("page contains %q: it must not name another origin", other)
		}
	}

	var refs []string
	for _, m := range tagRe.FindAllSubmatch(page, -1) {
		attrs := make(map[string]string)
		for _, a := range attrRe.FindAllSubmatch(m[2], -1) {
			attrs[strings.ToLower(string(a[1]))] = html.UnescapeString(string(a[2]))
		}
		ref := attrs["src"]
		if ref == "" {
			ref = attrs["href"]
		}
		if ref == "" {
			continue // the inline script
		}
		refs = append(refs, ref)
		t.Run(ref, func(t *testing.T) {
			u, err := url.Parse(ref)
			if err != nil {
				t.Fatal(err)
			}
			if u.Scheme != "" || u.Host != "" || !strings.HasPrefix(u.Path, AssetPrefix) {
				t.Fatalf("reference %s is not a same-origin path under %s", ref, AssetPrefix)
			}
			resp := serve(t, mux, http.MethodGet, ref, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200", resp.StatusCode)
			}
			b := body(t, resp)
			sum := sha256.Sum256(b)
			if got := "sha256-" + base64.StdEncoding.EncodeToString(sum[:]); got != attrs["integrity"] {
				t.Errorf("served file has SRI %s, page says integrity=%q", got, attrs["integrity"])
			}
			wantType := map[string]string{"script": "text/javascript", "link": "text/css"}[strings.ToLower(string(m[1]))]
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, wantType) {
				t.Errorf("Content-Type %q, want %s", ct, wantType)
			}
			if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") || !strings.Contains(cc, "max-age=31536000") {
				t.Errorf("Cache-Control %q, want a year, immutable", cc)
			}
		})
	}
	if len(refs) != 4 {
		t.Errorf("page references %v, want React, ReactDOM, GraphiQL's script and stylesheet", refs)
	}
}

// cspDirectives splits a policy into its directives' source lists.
func cspDirectives(policy string) map[string][]string {
	d := make(map[string][]string)
	for _, part := range strings.Split(policy, ";") {
		fields := strings.Fields(part)
		if len(fields) > 0 {
			d[fields[0]] = fields[1:]
		}
	}
	return d
}

// inlineScriptsOf finds the page's inline scripts by hand, independently
// of the regular expression the package uses.
func inlineScriptsOf(t *testing.T, page string) []string {
	t.Helper()
	var scripts []string
	for rest := page; ; {
		i := strings.Index(rest, "<script>")
		if i < 0 {
			break
		}
		rest = rest[i+len("<script>"):]
		j := strings.Index(rest, "</script>")
		if j < 0 {
			t.Fatal("unterminated inline script")
		}
		scripts = append(scripts, rest[:j])
		rest = rest[j:]
	}
	return scripts
}

func TestPageContentSecurityPolicy(t *testing.T) {
	tests := []struct {
		name        string
		endpoint    string
		wantConnect []string
	}{
		{"same-origin endpoint", "/graphql", []string{"'self'"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := serve(t, mounted(t, tt.endpoint), http.MethodGet, pagePath, nil)
			page := string(body(t, resp))
			policy := resp.Header.Get("Content-Security-Policy")
			if policy == "" {
				t.Fatal("no Content-Security-Policy header")
			}
			d := cspDirectives(policy)
			for directive, want := range map[string][]string{
				"default-src":     {"'self'"},
				"connect-src":     tt.wantConnect,
				"object-src":      {"'none'"},
				"base-uri":        {"'none'"},
				"frame-ancestors": {"'none'"},
			} {
				if !slices.Equal(d[directive], want) {
					t.Errorf("%s %v, want %v", directive, d[directive], want)
				}
			}

			scripts := d["script-src"]
			if !slices.Contains(scripts, "'self'") {
				t.Errorf("script-src %v lacks 'self'", scripts)
			}
			for _, bad := range []string{"'unsafe-inline'", "'unsafe-eval'", "*", "data:", "http:", "https:"} {
				if slices.Contains(scripts, bad) {
					t.Errorf("script-src %v allows %s", scripts, bad)
				}
			}
			inline := inlineScriptsOf(t, page)
			if len(inline) == 0 {
				t.Fatal("page has no inline script")
			}
			for _, s := range inline {
				sum := sha256.Sum256([]byte(s))
				hash := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
				if !slices.Contains(scripts, hash) {
					t.Errorf("script-src %v does not allow the inline script (%s)", scripts, hash)
				}
			}
			// Only connect-src may name another origin, and only when
			// the endpoint is on one.
			for directive, sources := range d {
				if directive == "connect-src" {
					continue
				}
				for _, s := range sources {
					if strings.Contains(s, "://") || s == "*" || s == "http:" || s == "https:" {
						t.Errorf("%s allows %s", directive, s)
					}
				}
			}
		})
	}
}

// versionsFiles reads the file list of assets/VERSIONS: path under
// assets/ and its sha256 SRI, as the fetch script verified them.
func versionsFiles(t *testing.T) map[string]string {
	t.Helper()
	f, err := files.Open("assets/VERSIONS")
	if err != nil {
		t.Fatalf("assets/VERSIONS: %v (run scripts/fetch-graphiql)", err)
	}
	defer f.Close()
	m := make(map[string]string)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 3 && strings.HasPrefix(fields[1], "sha256-") {
			m[fields[0]] = fields[1]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestEmbeddedFilesMatchVersions checks that the embedded files are those
// the fetch script verified and recorded, each package with its license.
func TestEmbeddedFilesMatchVersions(t *testing.T) {
	listed := versionsFiles(t)
	if len(listed) == 0 {
		t.Fatal("assets/VERSIONS lists no files")
	}
	for name, want := range listed {
		a, ok := assets[name]
		if !ok {
			t.Errorf("VERSIONS lists %s, which is not embedded", name)
			continue
		}
		if a.sri != want {
			t.Errorf("%s: embedded SRI %s, VERSIONS says %s: re-run scripts/fetch-graphiql", name, a.sri, want)
		}
	}
	dirs := make(map[string]bool)
	for name := range assets {
		if name == "VERSIONS" || path.Base(name) == "LICENSE" {
			continue
		}
		if listed[name] == "" {
			t.Errorf("%s is embedded but not listed in VERSIONS", name)
		}
		dirs[path.Dir(name)] = true
	}
	for dir := range dirs {
		if _, ok := assets[dir+"/LICENSE"]; !ok {
			t.Errorf("package directory %s has no LICENSE", dir)
		}
	}
}

func TestAssets(t *testing.T) {
	mux := mounted(t, "/graphql")
	js := AssetPrefix + pageFiles.js
	tests := []struct {
		name       string
		method     string
		target     string
		header     http.Header
		handler    http.Handler // nil: the mux
		wantStatus int
		wantType   string
		wantCache  string
	}{
		{name: "script", target: js, wantStatus: 200, wantType: "text/javascript; charset=utf-8", wantCache: "public, max-age=31536000, immutable"},
		{name: "stylesheet", target: AssetPrefix + pageFiles.css, wantStatus: 200, wantType: "text/css; charset=utf-8", wantCache: "public, max-age=31536000, immutable"},
		{name: "license", target: AssetPrefix + path.Dir(pageFiles.react) + "/LICENSE", wantStatus: 200, wantType: "text/plain; charset=utf-8", wantCache: "public, max-age=31536000, immutable"},
		{name: "versions", target: AssetPrefix + "VERSIONS", wantStatus: 200, wantType: "text/plain; charset=utf-8", wantCache: "no-cache"},
		{name: "head", method: http.MethodHead, target: js, wantStatus: 200, wantType: "text/javascript; charset=utf-8"},
		{name: "revalidated", target: js, header: http.Header{"If-None-Match": {`"` + assets[pageFiles.js].sri + `"`}}, wantStatus: http.StatusNotModified},
		{name: "missing", target: AssetPrefix + "graphiql-0.0.0/graphiql.min.js", wantStatus: 404},
		{name: "directory", target: AssetPrefix + path.Dir(pageFiles.js), wantStatus: 404},
		{name: "prefix only", target: AssetPrefix, wantStatus: 404},
		{name: "outside assets", target: AssetPrefix + "../doc.go", handler: Assets(), wantStatus: 404},
		{name: "post", method: http.MethodPost, target: js, handler: Assets(), wantStatus: http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.handler
			if h == nil {
				h = mux
			}
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			resp := serve(t, h, method, tt.target, tt.header)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if tt.wantType != "" && resp.Header.Get("Content-Type") != tt.wantType {
				t.Errorf("Content-Type %q, want %q", resp.Header.Get("Content-Type"), tt.wantType)
			}
			if tt.wantCache != "" && resp.Header.Get("Cache-Control") != tt.wantCache {
				t.Errorf("Cache-Control %q, want %q", resp.Header.Get("Cache-Control"), tt.wantCache)
			}
			if resp.StatusCode == http.StatusOK && resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Error("no X-Content-Type-Options: nosniff")
			}
		})
	}
}

// TestFindPageFiles covers the check that the embedded files hold exactly
// one version of each file the page loads.
func TestFindPageFiles(t *testing.T) {
	complete := map[string]asset{
		"graphiql-4.1.2/graphiql.min.js":               {},
		"graphiql-4.1.2/graphiql.min.css":              {},
		"react-18.2.0/react.production.min.js":         {},
		"react-dom-18.2.0/react-dom.production.min.js": {},
		"react-dom-18.2.0/LICENSE":                     {},
	}
	with := func(extra string) map[string]asset {
		m := make(map[string]asset)
		for k, v := range complete {
			if k != extra {
				m[k] = v
			}
		}
		if _, ok := complete[extra]; !ok {
			m[extra] = asset{}
		}
		return m
	}
	tests := []struct {
		name    string
		assets  map[string]asset
		wantErr string
	}{
		{name: "complete", assets: complete},
		{name: "two React versions", assets: with("react-18.3.1/react.production.min.js"), wantErr: "found 2"},
		{name: "no stylesheet", assets: with("graphiql-4.1.2/graphiql.min.css"), wantErr: "graphiql.min.css, found 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := findPageFiles(tt.assets)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.react != "react-18.2.0/react.production.min.js" || p.reactDOM != "react-dom-18.2.0/react-dom.production.min.js" {
				t.Errorf("found %+v", p)
			}
		})
	}
}

// TestPageMatchesGqlgens: the page rendered from page.html is the page
// gqlgen's playground.Handler renders with the same values, byte for byte,
// so generating page.html once (genpage) loses nothing of gqlgen's page.
func TestPageMatchesGqlgens(t *testing.T) {
	c := loadedCatalog()
	u := func(name string) string { return AssetPrefix + name }
	for _, title := range []string{"School ERP cache", `A "quoted" <title> & 'more' + more`} {
		v := pageValues{
			title: title, endpoint: "/graphql",
			js: u(c.page.js), css: u(c.page.css), react: u(c.page.react), reactDOM: u(c.page.reactDOM),
			jsSRI: c.assets[c.page.js].sri, cssSRI: c.assets[c.page.css].sri,
			reactSRI: c.assets[c.page.react].sri, domSRI: c.assets[c.page.reactDOM].sri,
		}
		ours, err := v.render()
		if err != nil {
			t.Fatal(err)
		}
		gql := gqlplayground.Handler(v.title, v.endpoint,
			gqlplayground.WithGraphiqlVersion(v.js, v.css, v.jsSRI, v.cssSRI),
			gqlplayground.WithGraphiqlReactVersion(v.react, v.reactDOM, v.reactSRI, v.domSRI),
			gqlplayground.WithGraphiqlPersistStateInURL(true),
		)
		rec := httptest.NewRecorder()
		gql.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		if want := rec.Body.String(); ours != want {
			i := 0
			for i < len(ours) && i < len(want) && ours[i] == want[i] {
				i++
			}
			t.Errorf("title %q: the page differs from gqlgen's at byte %d: ours %q, gqlgen's %q (run go generate ./internal/playground)", title, i, ours[i:min(i+80, len(ours))], want[i:min(i+80, len(want))])
		}
	}
}

// TestHandlerWantsASameOriginPath: an absolute URL or a path with
// characters the page would have to escape is refused when the handler is
// made, not served broken.
func TestHandlerWantsASameOriginPath(t *testing.T) {
	for _, endpoint := range []string{"https://api.example.com/graphql", "graphql", `/graph"ql`, "/graphql?x=1"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Handler(%q) did not panic", endpoint)
				}
			}()
			Handler("t", endpoint)
		}()
	}
}
