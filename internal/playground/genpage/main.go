// Command genpage writes page.html: gqlgen's GraphiQL page, rendered by
// gqlgen's own playground.Handler with placeholders where the service's
// values go (see ../page.go). It runs at go generate time so that the
// service binary does not link html/template: its use of
// reflect.Value.MethodByName makes the linker keep every exported method of
// every reachable type, which nearly doubled the binary and the memory its
// mapped pages take. TestPageMatchesGqlgens renders gqlgen's page with the
// real values and requires the same bytes.
package main

import (
	"bytes"
	"log"
	"net/http"
	"net/http/httptest"
	"os"

	gqlplayground "github.com/99designs/gqlgen/graphql/playground"
)

// The placeholders, as page.go names them. Each is plain ASCII letters and
// underscores, which html/template writes unchanged in the text, URL and
// attribute contexts; in the script the endpoint is written as a quoted
// JavaScript string.
const (
	title       = "PLAYGROUND_TITLE"
	endpoint    = "/PLAYGROUND_ENDPOINT"
	jsURL       = "PLAYGROUND_JS_URL"
	cssURL      = "PLAYGROUND_CSS_URL"
	reactURL    = "PLAYGROUND_REACT_URL"
	reactDOMURL = "PLAYGROUND_REACT_DOM_URL"
	jsSRI       = "PLAYGROUND_JS_SRI"
	cssSRI      = "PLAYGROUND_CSS_SRI"
	reactSRI    = "PLAYGROUND_REACT_SRI"
	reactDOMSRI = "PLAYGROUND_REACT_DOM_SRI"
)

func main() {
	out := "page.html"
	if len(os.Args) > 1 {
		out = os.Args[1]
	}
	h := gqlplayground.Handler(title, endpoint,
		gqlplayground.WithGraphiqlVersion(jsURL, cssURL, jsSRI, cssSRI),
		gqlplayground.WithGraphiqlReactVersion(reactURL, reactDOMURL, reactSRI, reactDOMSRI),
		gqlplayground.WithGraphiqlPersistStateInURL(true),
	)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	body := rec.Body.Bytes()
	for _, p := range []string{title, endpoint, jsURL, cssURL, reactURL, reactDOMURL, jsSRI, cssSRI, reactSRI, reactDOMSRI} {
		if !bytes.Contains(body, []byte(p)) {
			log.Fatalf("genpage: gqlgen's page does not hold the placeholder %s: its template changed shape", p)
		}
	}
	if err := os.WriteFile(out, body, 0o644); err != nil {
		log.Fatal(err)
	}
}
