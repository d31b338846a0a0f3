package graph

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
)

// Two close codes of graphql-transport-ws that gqlgen's transport does not
// give: 4429 for a second connection_init (gqlgen closes with 1002) and
// 4409 for a subscribe whose id is already running (gqlgen replaces the
// running operation's cancel function, leaving it running unstoppable).
// gqlgen has no hook for either, so the socket, which is gqlgen's
// WebsocketConn, reads each client message's type and id before gqlgen
// does, and sees the operations end: on the client's complete, and on the
// server's complete or error written for that id. The legacy graphql-ws
// subprotocol is left as gqlgen runs it.

const graphqlTransportWS = "graphql-transport-ws"

// read looks at one client message before gqlgen decodes it: a second
// connection_init closes the socket with 4429, a subscribe of a running id
// with 4409. A subscribe the compiled path runs (live.go), and a complete
// of one it runs, are not gqlgen's: read reports them ran.
func (sock *socket) read(typ int, r io.Reader) (_ int, _ io.Reader, ran bool, _ error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return typ, nil, false, err
	}
	var m struct {
		Type    string          `json:"type"`
		ID      string          `json:"id"`
		Payload json.RawMessage `json:"payload"`
	}
	// Decoded as gqlgen decodes it (one value; what follows is not
	// looked at), so that both see the same message: json.Unmarshal
	// would refuse trailing bytes that gqlgen accepts.
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if dec.Decode(&m) != nil {
		return typ, bytes.NewReader(data), false, nil // gqlgen answers it
	}
	code, reason := 0, ""
	sock.mu.Lock()
	sock.heardAt = time.Now() // alive (keepAlive)
	switch m.Type {
	case "connection_init":
		if sock.sawInit {
			code, reason = CloseTooManyRequests, "Too many initialisation requests"
		}
		sock.sawInit = true
	case "subscribe":
		if _, running := sock.ops[m.ID]; running || sock.live[m.ID] != nil {
			code, reason = CloseDuplicateID, "Subscriber for "+m.ID+" already exists"
		} else if !sock.untracked {
			if sock.ops == nil {
				sock.ops = map[string]struct{}{}
			}
			sock.ops[m.ID] = struct{}{}
		}
	case "complete":
		delete(sock.ops, m.ID)
	}
	sock.mu.Unlock()
	if code != 0 {
		if len(reason) > closeReasonMaxBytes {
			reason = reason[:closeReasonMaxBytes]
		}
		sock.closeWith(code, reason)
		return typ, nil, false, transport.ErrWebsocketClosed
	}
	switch m.Type {
	case "subscribe":
		if m.ID != "" && sock.startLive(m.ID, m.Payload) {
			return typ, nil, true, nil
		}
	case "complete":
		if sock.stopLive(m.ID) {
			return typ, nil, true, nil
		}
	}
	return typ, bytes.NewReader(data), false, nil
}

// wrote: the server ends an operation with complete or error.
func (sock *socket) wrote(v any) {
	id, typ, ok := messageIDType(v)
	if ok && typ != "complete" && typ != "error" {
		return
	}
	sock.mu.Lock()
	if ok {
		delete(sock.ops, id)
	} else {
		sock.untracked, sock.ops = true, nil
	}
	sock.mu.Unlock()
}

// gqlgen writes its own unexported message struct, with exported ID and
// Type fields (Type a string type); their indexes are found once per type,
// by name. Should a gqlgen release change that, wrote cannot see
// operations end, and the socket stops keeping running ids (no 4409)
// rather than refuse an id that is free again.
var messageFields sync.Map // reflect.Type → [2]int (ID, Type), or nil

// messageIDType reads the ID and Type fields of a message gqlgen writes.
func messageIDType(v any) (id, typ string, ok bool) {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		return "", "", false
	}
	t := rv.Type()
	var idx [2]int
	if f, found := messageFields.Load(t); found {
		if f == nil {
			return "", "", false
		}
		idx = f.([2]int)
	} else {
		fid, ok1 := t.FieldByName("ID")
		ftyp, ok2 := t.FieldByName("Type")
		if !ok1 || !ok2 || fid.Type.Kind() != reflect.String || ftyp.Type.Kind() != reflect.String || len(fid.Index) != 1 || len(ftyp.Index) != 1 {
			messageFields.Store(t, nil)
			return "", "", false
		}
		idx = [2]int{fid.Index[0], ftyp.Index[0]}
		messageFields.Store(t, idx)
	}
	return rv.Field(idx[0]).String(), rv.Field(idx[1]).String(), true
}
