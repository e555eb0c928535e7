package api

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// requestState is what the middleware learns about a request; handlers read
// it from the context.
type requestState struct {
	id      string
	user    string
	version version
}

type stateKey struct{}

func stateOf(ctx context.Context) *requestState {
	if st, ok := ctx.Value(stateKey{}).(*requestState); ok {
		return st
	}
	return &requestState{version: version{minMinor}}
}

func requestID(ctx context.Context) string { return stateOf(ctx).id }

// versionOf is the negotiated microversion of a request.
func versionOf(r *http.Request) version { return stateOf(r.Context()).version }

// userOf is the authenticated user of a request.
func userOf(r *http.Request) string { return stateOf(r.Context()).user }

const headerRequestID = "X-Openstack-Request-Id"

// ServeHTTP runs a request: request id, version headers, authentication,
// version negotiation, routing, then the log line and the metrics.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.now()
	st := &requestState{id: "req-" + uuid.NewString(), version: version{minMinor}}
	r = r.WithContext(context.WithValue(r.Context(), stateKey{}, st))
	u := *r.URL // the path may be rewritten below; the caller's URL stays as it was
	r.URL = &u
	rec := &recorder{ResponseWriter: w}
	if r.Body != nil {
		r.Body = http.MaxBytesReader(rec, r.Body, MaxBodyBytes)
	}
	h := rec.Header()
	h.Set(headerRequestID, st.id)
	h.Set(headerMinVersion, MinVersion)
	h.Set(headerMaxVersion, MaxVersion)
	h.Set("Vary", headerAPIVersion+", "+headerVersion)

	// Bookmark links (/nodes/<uuid>) lead to the current version, and a
	// trailing slash is ignored, as Ironic's router does.
	if strings.HasPrefix(r.URL.Path, "/nodes") || strings.HasPrefix(r.URL.Path, "/ports") {
		r.URL.Path = "/v1" + r.URL.Path
		r.URL.RawPath = ""
	}
	if len(r.URL.Path) > 1 && r.URL.Path != "/v1/" && strings.HasSuffix(r.URL.Path, "/") {
		r.URL.Path = strings.TrimSuffix(r.URL.Path, "/")
		r.URL.RawPath = ""
	}
	_, route := s.mux.Handler(r)
	if route == "" {
		route = "unmatched"
	}
	label := route
	if _, p, ok := strings.Cut(route, " "); ok {
		label = p
	}

	s.serve(rec, r, st, route)

	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	elapsed := s.now().Sub(start)
	s.metrics.observe(r.Method, label, status, elapsed)
	attrs := []slog.Attr{
		slog.String("request_id", st.id),
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("route", label),
		slog.Int("status", status),
		slog.Duration("duration", elapsed),
		slog.String("version", st.version.String()),
		slog.String("remote", r.RemoteAddr),
	}
	if st.user != "" {
		attrs = append(attrs, slog.String("user", st.user))
	}
	if g := r.Header.Get(headerRequestID); g != "" && isRequestID(g) {
		attrs = append(attrs, slog.String("global_request_id", g))
	}
	level := slog.LevelInfo
	switch {
	case status == http.StatusServiceUnavailable:
		level = slog.LevelWarn
	case status >= 500:
		level = slog.LevelError
	}
	s.log.LogAttrs(r.Context(), level, "request", attrs...)
}

func (s *server) serve(w http.ResponseWriter, r *http.Request, st *requestState, route string) {
	if !isPublic(r) {
		user, err := s.auth.Authenticate(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		st.user = user
	}
	v, err := negotiate(r.Header)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	st.version = v
	setVersionHeaders(w.Header(), v)

	if route == "unmatched" {
		// The mux's own answer tells not found from method not allowed.
		probe := &recorder{ResponseWriter: discard{header: http.Header{}}}
		s.mux.ServeHTTP(probe, r)
		if probe.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", probe.Header().Get("Allow"))
			writeError(w, http.StatusMethodNotAllowed, "The method "+r.Method+" is not allowed for this resource.")
			return
		}
		s.fail(w, r, errNotFound)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// isPublic reports whether r is version discovery, which needs no credential.
func isPublic(r *http.Request) bool {
	// The deploy agent's calls carry its agent token instead.
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/v1/lookup",
		r.Method == http.MethodGet && r.URL.Path == "/v1/agent_image",
		r.Method == http.MethodGet && r.URL.Path == "/v1/agent_configdrive",
		r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/v1/heartbeat/"),
		r.Method == http.MethodPost && r.URL.Path == "/v1/continue_inspection",
		r.Method == http.MethodPost && r.URL.Path == "/v1/continue_cleaning",
		r.Method == http.MethodPost && r.URL.Path == "/v1/continue_deploy",
		// A node runner's report carries the node's own credential.
		r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/v1/overcloud/stacks/") && strings.HasSuffix(r.URL.Path, "/report"):
		return true
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	switch r.URL.Path {
	case "/", "/v1", "/v1/":
		return true
	}
	return false
}

// isRequestID checks the req-<uuid> form of a client's global request id
// before it goes into a log line.
func isRequestID(s string) bool {
	id, ok := strings.CutPrefix(s, "req-")
	return ok && uuid.Validate(id) == nil
}

// recorder remembers the status of a response.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// discard is a ResponseWriter that keeps only headers.
type discard struct{ header http.Header }

func (d discard) Header() http.Header         { return d.header }
func (d discard) Write(b []byte) (int, error) { return len(b), nil }
func (d discard) WriteHeader(int)             {}

// statusText is the metric label of a status code.
func statusText(code int) string { return strconv.Itoa(code) }
