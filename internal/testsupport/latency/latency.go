// Package latency reports a benchmark's per-operation latencies as
// percentiles, the figures docs/benchmarks.md quotes.
package latency

import (
	"slices"
	"testing"
	"time"
)

// Report adds the p99 and p50 of ds, in milliseconds, to b's results.
func Report(b *testing.B, ds []time.Duration) {
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "p50-ms")
}
