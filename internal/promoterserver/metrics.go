package promoterserver

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/slipway-deploy/slipway/internal/outcome"
)

// metrics are served on /metrics from the server's own registry.
type metrics struct {
	reg        *prometheus.Registry
	promotions *prometheus.CounterVec
	latency    prometheus.Histogram
	requests   *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		promotions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipway_promoter_promotions_total",
			Help: "Promotion decisions by outcome (promoted, not_promoted, waiting, failed) and reason (the outcome's label).",
		}, []string{"outcome", "reason"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "slipway_promoter_decision_seconds",
			Help:    "Time to decide (and perform) one promotion request, git work included.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipway_promoter_requests_total",
			Help: "template.execute requests by HTTP status.",
		}, []string{"code"}),
	}
	m.reg.MustRegister(m.promotions, m.latency, m.requests,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// observe counts one promotion. The reason label is the outcome's own
// (bounded: the reason's sentence, with tags and times in it, would make
// one series per release).
func (m *metrics) observe(o outcome.Outcome, took time.Duration) {
	m.latency.Observe(took.Seconds())
	m.promotions.WithLabelValues(outcomeLabel(o), o.Label()).Inc()
}

// outcomeLabel is the coarse outcome label of a promotion.
func outcomeLabel(o outcome.Outcome) string {
	switch {
	case o.Wrote():
		return "promoted"
	case o.Waiting():
		return "waiting"
	case o.Phase() == outcome.PhaseFailed:
		return "failed"
	default:
		return "not_promoted"
	}
}
