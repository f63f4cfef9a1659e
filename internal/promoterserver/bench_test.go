package promoterserver

import (
	"encoding/json"
	"os/exec"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/gitwriter"
	"github.com/slipway-deploy/slipway/internal/promotion"
	"github.com/slipway-deploy/slipway/internal/testsupport/gitrepo"
)

func reportP99(b *testing.B, ds []time.Duration) {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	b.ReportMetric(float64(ds[len(ds)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "p50-ms")
}

// BenchmarkDecisionFetched: the decision with the repo already fetched:
// both tag files parsed and the rules applied (an "already there" case).
func BenchmarkDecisionFetched(b *testing.B) {
	cfg, err := LoadConfig(examplePath)
	require.NoError(b, err)
	s := &Server{cfg: cfg}
	src := gitwriter.Current{Exists: true, Content: []byte(tagFile("v42"))}
	dst := gitwriter.Current{Exists: true, Content: []byte(tagFile("v42"))}
	req := promotion.Request{App: "frontend", From: "staging", Tag: "v42"}
	ds := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		var st promotion.State
		st.Source, _ = s.parse("a", src)
		st.Target, _ = s.parse("b", dst)
		d := promotion.Decide(cfg.Policy, req, st, wednesday)
		ds = append(ds, time.Since(t0))
		if d.Reason != "already there" {
			b.Fatal(d.Reason)
		}
	}
	reportP99(b, ds)
}

// BenchmarkDecisionRequestNoPush: a whole HTTP request that needs no push,
// with the writer's store warm; the one git round trip left is the ref
// advertisement of the up-to-date check. BenchmarkDecisionPeerLsRemote is
// that round trip alone with the git CLI, the floor of any up-to-date check.
func BenchmarkDecisionRequestNoPush(b *testing.B) {
	f := newFixture(b, map[string]string{
		tagPath("integration", "frontend"): tagFile("v42"),
		tagPath("staging", "frontend"):     tagFile("v42"),
	}, nil)
	body, err := json.Marshal(promoteArgs(b, "uid", promoter("frontend", "integration", "v42")))
	require.NoError(b, err)
	f.post(b, agentToken, body) // warm the store
	ds := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		code, out := f.post(b, agentToken, body)
		ds = append(ds, time.Since(t0))
		if code != 200 {
			b.Fatal(out)
		}
	}
	reportP99(b, ds)
}

func BenchmarkDecisionPeerLsRemote(b *testing.B) {
	srv := gitrepo.New(b, map[string]string{"a": "b"})
	url := "http://" + gitrepo.User + ":" + gitrepo.Password + "@" + srv.URL()[len("http://"):]
	ds := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		if out, err := exec.Command("git", "ls-remote", url, "refs/heads/main").CombinedOutput(); err != nil {
			b.Fatal(err, string(out))
		}
		ds = append(ds, time.Since(t0))
	}
	reportP99(b, ds)
}
