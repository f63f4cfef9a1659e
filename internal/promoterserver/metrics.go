package promoterserver

import (
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/slipway-deploy/slipway/internal/promotion"
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
			Help: "Promotion decisions by outcome (promoted, not_promoted, waiting, failed) and reason.",
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

func (m *metrics) observe(res Result, took time.Duration) {
	m.latency.Observe(took.Seconds())
	outcome := "not_promoted"
	switch {
	case res.Err != nil:
		outcome = "failed"
	case res.Promoted:
		outcome = "promoted"
	case res.Decision.Phase == promotion.Running:
		outcome = "waiting"
	}
	m.promotions.WithLabelValues(outcome, reasonLabel(res)).Inc()
}

// reasonLabel is a short, bounded label for a reason (the full reason, with
// tags and times in it, would make one series per release).
func reasonLabel(res Result) string {
	if res.Err != nil {
		return "error"
	}
	r := res.Decision.Reason
	for _, p := range []struct{ prefix, label string }{
		{"last environment", "last_environment"}, {"not a release", "not_release"}, {"stale", "stale"},
		{"automatic_deploys_enabled", "automatic_deploys_disabled"}, {"promote_deployment", "promote_deployment_false"},
		{"no tag file", "no_tag_file"}, {"already there", "already_there"}, {"newer release", "newer_release_present"},
		{"refused downgrade", "newer_release_present"}, {"frozen", "frozen"}, {"waiting", "freeze_window"},
		{"soaking", "soaking"}, {"promoted", "promoted"},
	} {
		if strings.HasPrefix(r, p.prefix) {
			return p.label
		}
	}
	return "other"
}
