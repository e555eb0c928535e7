package redfish

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// A view is the service as one BMC sees it: all the Server's systems (the
// main listener, scope ""), or one system alone (scope = its id). Sessions
// belong to the view they were made in.
type view struct {
	s     *Server
	scope string
	mux   *http.ServeMux
}

// reply is a handler's answer: a status (200 if zero), a body to encode as
// JSON (none if nil), and headers.
type reply struct {
	status int
	body   any
	header map[string]string
}

type handler func(r *http.Request) (reply, error)

// methods maps HTTP methods to the handlers of one resource.
type methods map[string]handler

const maxBody = 64 << 10

func newView(s *Server, scope string) *view {
	v := &view{s: s, scope: scope, mux: http.NewServeMux()}
	v.routes()
	return v
}

// visible reports whether the view shows system id.
func (v *view) visible(id string) bool { return v.scope == "" || v.scope == id }

// lookup returns the system id, if it exists and the view shows it.
func (v *view) lookup(id string) (*system, error) {
	if sys := v.s.system(id); sys != nil && v.visible(id) {
		return sys, nil
	}
	return nil, errorf(msgResourceNotFound, "ComputerSystem", id)
}

// systemIDs returns the ids of the systems the view shows, sorted.
func (v *view) systemIDs() []string {
	if v.scope != "" {
		if v.s.system(v.scope) == nil {
			return nil
		}
		return []string{v.scope}
	}
	return v.s.systemIDs()
}

// handle registers the handlers of the resource at pattern. Every answer
// carries an Allow header; other methods get 405. HEAD is served by the GET
// handler.
func (v *view) handle(pattern string, ms methods) {
	allowed := make([]string, 0, len(ms)+1)
	for m := range ms {
		allowed = append(allowed, m)
	}
	if ms[http.MethodGet] != nil {
		allowed = append(allowed, http.MethodHead)
	}
	slices.Sort(allowed)
	allow := strings.Join(allowed, ", ")
	v.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		h := ms[r.Method]
		if h == nil && r.Method == http.MethodHead {
			h = ms[http.MethodGet]
		}
		if h == nil {
			v.fail(w, r, errorf(msgOperationNotAllowed))
			return
		}
		rep, err := h(r)
		if err != nil {
			v.fail(w, r, err)
			return
		}
		v.write(w, rep)
	})
}

// noAuth lists the paths anyone may read: the service root and what points
// to it. Creating a session is also open (the credentials are its body).
var noAuth = map[string]bool{
	"/redfish":          true,
	"/redfish/v1":       true,
	"/redfish/v1/odata": true,
}

const sessionsPath = "/redfish/v1/SessionService/Sessions"

// ServeHTTP authenticates the request and routes it.
func (v *view) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	// Redfish treats a URI with a trailing slash as the one without.
	if p := r.URL.Path; len(p) > 1 && strings.HasSuffix(p, "/") {
		r2 := *r
		u := *r.URL
		u.Path, u.RawPath = strings.TrimRight(p, "/"), ""
		r2.URL = &u
		r = &r2
	}
	open := noAuth[r.URL.Path] || (r.URL.Path == sessionsPath && r.Method == http.MethodPost)
	if open {
		v.mux.ServeHTTP(sw, r)
	} else if err := v.authenticate(r); err != nil {
		sw.Header().Set("WWW-Authenticate", `Basic realm="Redfish", charset="UTF-8"`)
		v.fail(sw, r, err)
	} else {
		v.mux.ServeHTTP(sw, r)
	}
	// The path and the status only: never headers, which carry credentials.
	v.s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", sw.status,
		"bmc", v.scope, "remote", r.RemoteAddr, "duration", time.Since(start))
}

// authenticate checks the request's session token, or else its HTTP Basic
// credentials.
func (v *view) authenticate(r *http.Request) error {
	if token := r.Header.Get("X-Auth-Token"); token != "" {
		if v.s.sessions.use(v.scope, token) == nil {
			return errorf(msgNoValidSession)
		}
		return nil
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return errorf(msgNoValidSession)
	}
	if !v.credentialsOK(user, pass) {
		v.s.log.Info("authentication failed", "path", r.URL.Path, "remote", r.RemoteAddr, "bmc", v.scope)
		return errorf(msgUnauthorized, r.URL.Path, "invalid username or password")
	}
	return nil
}

// credentialsOK compares in constant time.
func (v *view) credentialsOK(user, pass string) bool {
	hu, hp := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
	wu, wp := sha256.Sum256([]byte(v.s.cfg.Username)), sha256.Sum256([]byte(v.s.cfg.Password))
	return subtle.ConstantTimeCompare(hu[:], wu[:])&subtle.ConstantTimeCompare(hp[:], wp[:]) == 1
}

// write sends a reply; a body that is a resource (it has an @odata.id)
// gets an ETag.
func (v *view) write(w http.ResponseWriter, rep reply) {
	h := w.Header()
	for k, val := range rep.header {
		h.Set(k, val)
	}
	h.Set("OData-Version", "4.0")
	h.Set("Cache-Control", "no-cache")
	status := rep.status
	if status == 0 {
		status = http.StatusOK
	}
	if rep.body == nil {
		w.WriteHeader(status)
		return
	}
	b, err := json.Marshal(rep.body)
	if err != nil { // the bodies are maps of plain values
		panic(err)
	}
	if obj, ok := rep.body.(object); ok && obj["@odata.id"] != nil {
		h.Set("ETag", etag(b))
	}
	h.Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b)
}

// fail writes err as a Redfish error body.
func (v *view) fail(w http.ResponseWriter, r *http.Request, err error) {
	e := toWire(v.s.log, r, err)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("OData-Version", "4.0")
	w.WriteHeader(e.Status())
	b, _ := json.Marshal(e.body())
	w.Write(b)
}

// etag is a strong entity tag of a representation.
func etag(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + hex.EncodeToString(sum[:12]) + `"`
}

// ifMatch checks an If-Match header against the current representation's
// entity tag: absent, "*", or a list that has it.
func ifMatch(r *http.Request, current string) error {
	h := r.Header.Get("If-Match")
	if h == "" {
		return nil
	}
	for _, t := range strings.Split(h, ",") {
		if t = strings.TrimSpace(t); t == "*" || t == current {
			return nil
		}
	}
	return errorf(msgPreconditionFailed)
}

// decodeObject reads a JSON object body. An empty body is an empty object.
func decodeObject(r *http.Request) (map[string]json.RawMessage, error) {
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, errorf(msgPayloadTooLarge)
		}
		return nil, errorf(msgMalformedJSON)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return map[string]json.RawMessage{}, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil || obj == nil {
		return nil, errorf(msgMalformedJSON)
	}
	return obj, nil
}

// statusWriter records the status for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}
