package conductor

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	busy        prometheus.Gauge
	refused     prometheus.Counter
	transitions *prometheus.CounterVec
	phase       *prometheus.HistogramVec
	takeovers   prometheus.Counter
	powerSync   prometheus.Histogram
	outOfBand   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		busy: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "strata", Subsystem: "conductor", Name: "workers_busy",
			Help: "Operations in progress.",
		}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "strata", Subsystem: "conductor", Name: "requests_refused_total",
			Help: "Requests refused because every worker was busy.",
		}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "strata", Subsystem: "conductor", Name: "transitions_total",
			Help: "Provision state transitions, by event and resulting state.",
		}, []string{"event", "to"}),
		phase: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "strata", Subsystem: "conductor", Name: "state_seconds",
			Help:    "Time nodes spent in each provision state before leaving it.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10),
		}, []string{"state"}),
		takeovers: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "strata", Subsystem: "conductor", Name: "takeovers_total",
			Help: "Nodes taken over from a conductor that went away.",
		}),
		powerSync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "strata", Subsystem: "conductor", Name: "power_sync_seconds",
			Help:    "Duration of a power-state sync round over every node.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10),
		}),
		outOfBand: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "strata", Subsystem: "conductor", Name: "power_changes_out_of_band_total",
			Help: "Power state changes found by the sync that the undercloud did not make.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.busy, m.refused, m.transitions, m.phase, m.takeovers, m.powerSync, m.outOfBand)
	}
	return m
}
