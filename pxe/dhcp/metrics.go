package dhcp

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are a server's Prometheus collectors, labelled by interface so
// that servers on several interfaces share one registry.
type metrics struct {
	requests *prometheus.CounterVec   // interface, type
	replies  *prometheus.CounterVec   // interface, type
	ignored  *prometheus.CounterVec   // interface, reason
	errors   *prometheus.CounterVec   // interface, kind
	rxBytes  *prometheus.CounterVec   // interface
	txBytes  *prometheus.CounterVec   // interface
	latency  *prometheus.HistogramVec // interface, type
}

// Kinds of errors counted in strata_dhcp_errors_total.
const (
	errRead      = "read"
	errParse     = "parse"
	errHandle    = "handle"
	errSend      = "send"
	errQueueFull = "queue_full"
)

func newMetrics(reg prometheus.Registerer) *metrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "strata", Subsystem: "dhcp", Name: name, Help: help,
		}, append([]string{"interface"}, labels...))
	}
	m := &metrics{
		requests: counter("requests_total", "DHCP packets received, by message type.", "type"),
		replies:  counter("replies_total", "DHCP answers sent, by message type.", "type"),
		ignored:  counter("ignored_total", "DHCP packets left unanswered, by reason.", "reason"),
		errors:   counter("errors_total", "Failures: read, parse, handle (store or directory), send, queue_full (dropped under load).", "kind"),
		rxBytes:  counter("received_bytes_total", "Bytes of DHCP packets received."),
		txBytes:  counter("sent_bytes_total", "Bytes of DHCP answers sent."),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "strata", Subsystem: "dhcp", Name: "request_duration_seconds",
			Help:    "Time from receiving a DHCP packet to sending its answer, by message type.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"interface", "type"}),
	}
	if reg != nil {
		m.requests = register(reg, m.requests)
		m.replies = register(reg, m.replies)
		m.ignored = register(reg, m.ignored)
		m.errors = register(reg, m.errors)
		m.rxBytes = register(reg, m.rxBytes)
		m.txBytes = register(reg, m.txBytes)
		m.latency = register(reg, m.latency)
	}
	return m
}

// register adds c to reg, or reuses the collector already registered under
// the same name (another server on the same registry).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic("dhcp: registering metrics: " + err.Error())
	}
	return c
}

// ifaceMetrics are the collectors of one interface, curried.
type ifaceMetrics struct {
	m     *metrics
	iface string
}

func (im ifaceMetrics) received(mt string, n int) {
	im.m.requests.WithLabelValues(im.iface, mt).Inc()
	im.m.rxBytes.WithLabelValues(im.iface).Add(float64(n))
}

func (im ifaceMetrics) sent(mt string, n int, took time.Duration) {
	im.m.replies.WithLabelValues(im.iface, mt).Inc()
	im.m.txBytes.WithLabelValues(im.iface).Add(float64(n))
	im.m.latency.WithLabelValues(im.iface, mt).Observe(took.Seconds())
}

func (im ifaceMetrics) ignore(r Reason) { im.m.ignored.WithLabelValues(im.iface, string(r)).Inc() }

func (im ifaceMetrics) fail(kind string) { im.m.errors.WithLabelValues(im.iface, kind).Inc() }
