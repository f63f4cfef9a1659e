package promoterserver

import (
	"encoding/json"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/testsupport/gitrepo"
	"github.com/slipway-deploy/slipway/internal/testsupport/latency"
)

// BenchmarkDecisionRequestNoPush: a whole HTTP request that needs no push,
// with the writer's store warm; the one git round trip left is the ref
// advertisement of the up-to-date check. BenchmarkDecisionPeerLsRemote is
// that round trip alone with the git CLI, the floor of any up-to-date check.
func BenchmarkDecisionRequestNoPush(b *testing.B) {
	f := newFixture(b, map[string]string{
		tagPath("integration", "frontend"): tagFile("v42"),
		tagPath("staging", "frontend"):     tagFile("v42"),
	}, nil)
	body, err := json.Marshal(promoteArgs(b, "uid", promoteStep("frontend", "integration", "v42")))
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
	latency.Report(b, ds)
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
	latency.Report(b, ds)
}
