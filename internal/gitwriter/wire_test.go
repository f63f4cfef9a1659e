package gitwriter

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/testsupport/gitrepo"
)

// wire stands between a writer and the git server and records each
// request (method and service), the bytes each answer carried, and the
// depth each fetch asked for.
type wire struct {
	mu     sync.Mutex
	calls  []string
	bytes  map[string]int
	depths []int
}

func (w *wire) take() (calls []string, bytes map[string]int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	calls, bytes = w.calls, w.bytes
	w.calls, w.bytes, w.depths = nil, map[string]int{}, nil
	return calls, bytes
}

// fetchDepths are the depths the upload-pack requests since the last take
// asked for (0: a fetch of the whole history).
func (w *wire) fetchDepths() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]int(nil), w.depths...)
}

// deepenLine is the pkt-line of an upload-pack request that asks for the
// last N commits.
var deepenLine = regexp.MustCompile(`[0-9a-f]{4}deepen ([0-9]+)\n`)

// counter adds what it writes to the wire's count for call before the
// client can see it: the client may finish reading and move on before the
// handler returns.
type counter struct {
	http.ResponseWriter
	w    *wire
	call string
}

func (c counter) Write(b []byte) (int, error) {
	c.w.mu.Lock()
	c.w.bytes[c.call] += len(b)
	c.w.mu.Unlock()
	return c.ResponseWriter.Write(b)
}

func newWire(t *testing.T, target string) (*wire, string) {
	u, err := url.Parse(target)
	require.NoError(t, err)
	w := &wire{bytes: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		call := r.Method + " " + r.URL.Query().Get("service")
		if r.Method == http.MethodPost {
			call = "POST " + r.URL.Path[len(u.Path)+1:]
		}
		depth := -1
		if call == "POST git-upload-pack" {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(rw, err.Error(), http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			depth = 0
			if m := deepenLine.FindSubmatch(body); m != nil {
				depth, _ = strconv.Atoi(string(m[1]))
			}
		}
		// Recorded before the answer: the client moves on once it has read it.
		w.mu.Lock()
		w.calls = append(w.calls, call)
		if depth >= 0 {
			w.depths = append(w.depths, depth)
		}
		w.mu.Unlock()
		rp.ServeHTTP(counter{rw, w, call}, r)
	}))
	t.Cleanup(srv.Close)
	return w, srv.URL + u.Path
}

// A write costs three requests: the ref advertisement and the pack of the
// fetch, and one push carrying the commit and the "old to new" update (no
// advertisement before it: the head was just fetched). A write after the
// branch moved fetches only what moved, not the whole tree again.
func TestWriteOnTheWire(t *testing.T) {
	files := map[string]string{}
	for _, env := range []string{"integration", "staging", "production"} {
		for i := range 300 {
			files[fmt.Sprintf("charts/app-config/image-tags/%s/app-%03d", env, i)] = fmt.Sprintf("image_tag: v%d\nautomatic_deploys_enabled: true\n", i)
		}
	}
	s := gitrepo.New(t, files)
	wire, u := newWire(t, s.URL())
	w := newWriter(u, nil, nil)
	write := func(app, tag string) {
		_, err := w.Write(context.Background(), "charts/app-config/image-tags/staging/"+app, "", setTo("image_tag: "+tag+"\n", "x"), false)
		require.NoError(t, err)
	}
	write("app-001", "v1000")
	calls, first := wire.take()
	assert.Equal(t, []string{"GET git-upload-pack", "POST git-upload-pack", "POST git-receive-pack"}, calls)

	s.Commit("another writer", map[string]string{"charts/app-config/image-tags/production/app-002": "image_tag: v2000\n"})
	write("app-003", "v1001")
	calls, again := wire.take()
	assert.Equal(t, []string{"GET git-upload-pack", "POST git-upload-pack", "POST git-receive-pack"}, calls)
	assert.Less(t, again["POST git-upload-pack"]*2, first["POST git-upload-pack"],
		"the second fetch carries what moved (%d bytes), not the tree again (%d)", again["POST git-upload-pack"], first["POST git-upload-pack"])
	got, _ := s.Read("charts/app-config/image-tags/production/app-002")
	assert.Equal(t, "image_tag: v2000\n", got, "the other writer's change survives")
	assert.Empty(t, s.EmptyCommits())
}
