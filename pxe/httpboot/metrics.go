package httpboot

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the handler's Prometheus collectors.
type metrics struct {
	requests *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	errors   *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	scripts  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "strata", Subsystem: "httpboot", Name: "requests_total",
			Help: "HTTP boot requests, by route (entry, script, image) and status code.",
		}, []string{"route", "code"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "strata", Subsystem: "httpboot", Name: "sent_bytes_total",
			Help: "Response body bytes sent, by route.",
		}, []string{"route"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "strata", Subsystem: "httpboot", Name: "errors_total",
			Help: "Failed HTTP boot requests and nodes that can not boot, by reason: bad_request, not_found, denied, artifact, lookup (the node store failed), node (the node's settings can not make a script), render.",
		}, []string{"reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "strata", Subsystem: "httpboot", Name: "request_duration_seconds",
			Help:    "Time to serve HTTP boot requests, by route; for images, until the last byte is written.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"route"}),
		scripts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "strata", Subsystem: "httpboot", Name: "scripts_total",
			Help: "Scripts handed to machines, by what they do: ramdisk, local-disk, exit, discovery, chain.",
		}, []string{"action"}),
	}
	if reg != nil {
		m.requests = register(reg, m.requests)
		m.bytes = register(reg, m.bytes)
		m.errors = register(reg, m.errors)
		m.latency = register(reg, m.latency)
		m.scripts = register(reg, m.scripts)
	}
	return m
}

// register adds c to reg, or reuses the collector already registered there
// under the same name (a second handler on the same registry).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic("httpboot: registering metrics: " + err.Error())
	}
	return c
}

// instrument counts a route's requests, bytes and time.
func (h *handler) instrument(route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		cw := &countingWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(cw, r)
		h.m.requests.WithLabelValues(route, strconv.Itoa(cw.status)).Inc()
		h.m.bytes.WithLabelValues(route).Add(float64(cw.n))
		h.m.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

// countingWriter records the status and counts the body bytes. It passes
// ReadFrom through, so that files still go out with sendfile.
type countingWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	n           int64
}

func (w *countingWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.wroteHeader = true
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

func (w *countingWriter) ReadFrom(r io.Reader) (int64, error) {
	w.wroteHeader = true
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(struct{ io.Writer }{w.ResponseWriter}, r)
	}
	w.n += n
	return n, err
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
