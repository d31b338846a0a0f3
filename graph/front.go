package graph

import (
	"bytes"
	"io"
	"mime"
	"net/http"
	"strings"
	"unsafe"
)

// front is the GraphQL endpoint: the compiled read path first, for a JSON
// POST it has a plan for, and gqlgen's server for everything else. It sits
// before gqlgen's ServeHTTP so that a planned request costs nothing of
// gqlgen's per-request setup either.
type front struct {
	compiled *compiledReads
	next     http.Handler
	// sockets admits WebSocket upgrades (sockets.go); nil: none.
	sockets *Sockets
}

func (f front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.sockets != nil && IsWebSocketUpgrade(r) {
		f.sockets.serve(w, r, f.next)
		return
	}
	if f.compiled == nil || r.Method != http.MethodPost || !isJSONBody(r.Header.Get("Content-Type")) || r.Header.Get("Upgrade") != "" || r.Body == nil {
		f.next.ServeHTTP(w, r)
		return
	}
	body, err := bodyBytes(r)
	if err != nil {
		r.Body = BufferedBody(body) // gqlgen's transport reports it
		f.next.ServeHTTP(w, r)
		return
	}
	// Read only: neither the text check nor the scanner writes the bytes.
	text := unsafe.String(unsafe.SliceData(body), len(body))
	if len(body) > 0 && checkJSONText(text, "the request body") == nil {
		if parts, ok := scanRequest(body); ok && f.compiled.serve(r.Context(), w, parts, responseType(r)) {
			return
		}
	}
	r.Body = BufferedBody(body)
	f.next.ServeHTTP(w, r)
}

// isJSONBody reports whether a Content-Type is application/json, parsing
// it only when it is not exactly that.
func isJSONBody(contentType string) bool {
	if contentType == mediaJSON {
		return true
	}
	mediaType, _, err := mime.ParseMediaType(contentType)
	return err == nil && mediaType == mediaJSON
}

// Body is a request body held in memory whose bytes the GraphQL endpoint
// can use without copying them. The service's admission reads every body
// whole before the endpoint (to bound its size and its time), and hands it
// on as one of these; it may reuse a Body and its bytes once the request's
// ServeHTTP has returned, since nothing here keeps them longer.
type Body struct {
	bytes.Reader
	b []byte
}

// BufferedBody returns a Body holding b.
func BufferedBody(b []byte) *Body {
	bb := new(Body)
	bb.Set(b)
	return bb
}

// Set makes the body b, to be read from its start.
func (bb *Body) Set(b []byte) {
	bb.b = b
	bb.Reset(b)
}

// Close does nothing: the bytes belong to whoever made the Body.
func (*Body) Close() error { return nil }

// bodyBytes returns the request's body: its bytes when it is a
// BufferedBody not yet read from, or all of it read.
func bodyBytes(r *http.Request) ([]byte, error) {
	if bb, ok := r.Body.(*Body); ok && bb.Len() == len(bb.b) {
		return bb.b, nil
	}
	return io.ReadAll(r.Body)
}

// IsWebSocketUpgrade reports whether r asks to open a WebSocket (RFC 6455:
// a GET with Upgrade: websocket).
func IsWebSocketUpgrade(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}
