package api

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the API's Prometheus collectors.
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "strata",
			Subsystem: "api",
			Name:      "requests_total",
			Help:      "Requests served by the undercloud API, by method, route and status code.",
		}, []string{"method", "route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "strata",
			Subsystem: "api",
			Name:      "request_duration_seconds",
			Help:      "Time taken to serve undercloud API requests, by method and route.",
			Buckets:   prometheus.DefBuckets,
		}, []string{"method", "route"}),
	}
	if reg != nil {
		m.requests = register(reg, m.requests)
		m.latency = register(reg, m.latency)
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
		panic("api: registering metrics: " + err.Error())
	}
	return c
}

func (m *metrics) observe(method, route string, status int, d time.Duration) {
	m.requests.WithLabelValues(method, route, statusText(status)).Inc()
	m.latency.WithLabelValues(method, route).Observe(d.Seconds())
}
