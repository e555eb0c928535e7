package tftp

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the server's Prometheus collectors.
type metrics struct {
	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
	bytes    prometheus.Counter
	latency  *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "strata", Subsystem: "tftp", Name: "requests_total",
			Help: "TFTP requests received, by operation (read, write).",
		}, []string{"op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "strata", Subsystem: "tftp", Name: "errors_total",
			Help: "TFTP requests refused or failed, by reason: not_found, denied (outside the root or not a regular file), busy (at the concurrency limit), read_only (a write request), transfer (failed midway), bad_packet (not a request).",
		}, []string{"reason"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "strata", Subsystem: "tftp", Name: "sent_bytes_total",
			Help: "File bytes handed to TFTP transfers.",
		}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "strata", Subsystem: "tftp", Name: "transfer_duration_seconds",
			Help:    "Time from a read request to the end of its transfer, by result (ok, error).",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"result"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "strata", Subsystem: "tftp", Name: "transfers_in_flight",
			Help: "TFTP transfers in progress.",
		}),
	}
	if reg != nil {
		m.requests = register(reg, m.requests)
		m.errors = register(reg, m.errors)
		m.bytes = register(reg, m.bytes)
		m.latency = register(reg, m.latency)
		m.inFlight = register(reg, m.inFlight)
	}
	// Every series exists from the start, at zero.
	for _, r := range []string{"not_found", "denied", "busy", "read_only", "transfer", "bad_packet"} {
		m.errors.WithLabelValues(r)
	}
	m.requests.WithLabelValues("read")
	m.requests.WithLabelValues("write")
	return m
}

// register adds c to reg, or reuses the collector already registered there
// under the same name (a second server on the same registry).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic("tftp: registering metrics: " + err.Error())
	}
	return c
}
