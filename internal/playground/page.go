package playground

import (
	_ "embed"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// pageTemplate is gqlgen's GraphiQL page (playground.Handler, with the
// options newPage used to pass it) rendered by genpage with placeholders
// where the title, the endpoint and the assets go. Rendering it here is
// string substitution, so the service does not link html/template (see
// genpage for why); TestPageMatchesGqlgens holds the result to gqlgen's own
// rendering, byte for byte.
//
//go:generate go run ./genpage page.html
//go:embed page.html
var pageTemplate string

// sameOriginPath is what the page's endpoint and asset URLs may be: a path
// on the page's own origin in plain characters, which every context of the
// page (attribute, URL, script string) writes unchanged.
var sameOriginPath = regexp.MustCompile(`^/[A-Za-z0-9/_.@-]*$`)

// pageValues are what the page is rendered with.
type pageValues struct {
	title, endpoint                 string
	js, css, react, reactDOM        string // URLs
	jsSRI, cssSRI, reactSRI, domSRI string
}

// render substitutes v into pageTemplate.
func (v pageValues) render() (string, error) {
	for _, u := range []string{v.endpoint, v.js, v.css, v.react, v.reactDOM} {
		if !sameOriginPath.MatchString(u) {
			return "", fmt.Errorf("%q is not a same-origin path in plain characters", u)
		}
	}
	return strings.NewReplacer(
		"PLAYGROUND_TITLE", htmlEscape(v.title),
		// The endpoint stands in the script as a quoted string.
		`"/PLAYGROUND_ENDPOINT"`, strconv.Quote(v.endpoint),
		"PLAYGROUND_JS_URL", v.js,
		"PLAYGROUND_CSS_URL", v.css,
		"PLAYGROUND_REACT_URL", v.react,
		"PLAYGROUND_REACT_DOM_URL", v.reactDOM,
		"PLAYGROUND_JS_SRI", htmlEscape(v.jsSRI),
		"PLAYGROUND_CSS_SRI", htmlEscape(v.cssSRI),
		"PLAYGROUND_REACT_SRI", htmlEscape(v.reactSRI),
		"PLAYGROUND_REACT_DOM_SRI", htmlEscape(v.domSRI),
	).Replace(pageTemplate), nil
}

// htmlEscape escapes text and attribute values as html/template does, so
// that the page is the bytes gqlgen's template would write ('+', in
// base64 integrity values, included).
var htmlEscape = strings.NewReplacer(
	"\x00", "\uFFFD", `"`, "&#34;", "&", "&amp;", "'", "&#39;", "+", "&#43;", "<", "&lt;", ">", "&gt;",
).Replace
