package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"time"
)

// RequestIDHeader carries the request ID in every response, as OpenStack
// services do; clients print it so that operators can find the log line.
const RequestIDHeader = "X-Openstack-Request-Id"

type requestIDKey struct{}

// RequestIDFrom returns the request ID that Instrument gave the request.
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// NewRequestID returns "req-" and a random UUID.
func NewRequestID() string { return "req-" + newUUID() }

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return fmt.Sprintf("%s-%s-%s-%s-%s", h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])
}

var globalRequestID = regexp.MustCompile(`^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// Instrument wraps h with what every service does for every request: a
// request ID (in the context and the X-Openstack-Request-Id header), an
// access log line, and a 500 in the service's format when h panics. The
// log line has the method, path (without query), status, size, duration
// and, once authenticated, the user: never headers or bodies, which carry
// tokens and passwords.
func Instrument(h http.Handler, errs *Errors, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := NewRequestID()
		ctx := context.WithValue(r.Context(), requestIDKey{}, id)
		holder := &credHolder{}
		ctx = context.WithValue(ctx, credHolderKey{}, holder)
		r = r.WithContext(ctx)
		w.Header().Set(RequestIDHeader, id)
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.ErrorContext(ctx, "handler panic", "request_id", id, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if rec.status == 0 {
					errs.Write(rec, r, fmt.Errorf("panic: %v", p))
				}
			}
			attrs := []any{
				"method", r.Method, "path", r.URL.Path, "status", rec.code(),
				"bytes", rec.bytes, "duration_ms", float64(time.Since(start).Microseconds()) / 1000, "request_id", id,
				"remote", r.RemoteAddr,
			}
			if g := r.Header.Get("X-Openstack-Request-Id"); globalRequestID.MatchString(g) {
				attrs = append(attrs, "global_request_id", g)
			}
			if c := holder.creds; c != nil {
				attrs = append(attrs, "user_id", c.UserID)
				if c.ProjectID != "" {
					attrs = append(attrs, "project_id", c.ProjectID)
				}
			}
			log.InfoContext(ctx, "request", attrs...)
		}()
		h.ServeHTTP(rec, r)
	})
}

// statusRecorder remembers the status and size of a response.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}

func (s *statusRecorder) code() int {
	if s.status == 0 {
		return http.StatusOK
	}
	return s.status
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
