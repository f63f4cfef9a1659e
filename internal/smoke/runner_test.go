package smoke

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/smokespec"
)

// parseChecks parses a spec against a base URL, failing the test on error.
func parseChecks(t testing.TB, base, spec string) []smokespec.Check {
	t.Helper()
	s, err := smokespec.Parse("test.yaml", []byte(spec), smokespec.Options{BaseURL: base})
	require.NoError(t, err)
	return s.Checks
}

// Tests here decide on events (requests a server got, what the runner
// logged), never on how long something took: a deadline is either far off
// or the thing under test. Timing claims live in bench_test.go.

// farDeadline is a deadline no test run gets near; it only bounds a test
// that went wrong.
const farDeadline = time.Minute

// firstOutcomes runs the checks until each has the outcome of its first
// attempt (it passed, or it failed and waits to retry), then stops the run,
// so every result is the outcome of exactly one attempt whatever the load.
func firstOutcomes(t testing.TB, checks []smokespec.Check, cfg CheckOptions) []CheckResult {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg.Deadline = farDeadline
	cfg.Backoff = Backoff{Initial: time.Hour, Max: time.Hour}
	cfg.Log = slog.New(&outcomeWatcher{state: &watchState{want: len(checks), seen: map[string]bool{}, done: cancel}})
	res := RunChecks(ctx, checks, cfg)
	for _, r := range res {
		require.Equal(t, 1, r.Attempts, "%s: one attempt each", r.Name)
	}
	return res
}

// outcomeWatcher is a log handler that calls done once every check has
// logged the outcome of an attempt.
type outcomeWatcher struct {
	check string // from Logger.With("check", ...)
	state *watchState
}

type watchState struct {
	mu   sync.Mutex
	want int
	seen map[string]bool
	done func()
}

func (w *outcomeWatcher) Enabled(context.Context, slog.Level) bool { return true }
func (w *outcomeWatcher) WithGroup(string) slog.Handler            { return w }
func (w *outcomeWatcher) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *w
	for _, a := range attrs {
		if a.Key == "check" {
			c.check = a.Value.String()
		}
	}
	return &c
}

func (w *outcomeWatcher) Handle(_ context.Context, r slog.Record) error {
	switch r.Message {
	case "check passed", "check failed", "check failing, will retry until the deadline":
		s := w.state
		s.mu.Lock()
		defer s.mu.Unlock()
		s.seen[w.check] = true
		if len(s.seen) == s.want {
			s.done()
		}
	}
	return nil
}

// rolloutServer answers 502 to its first downFor requests, then 200: an
// app whose pods are being replaced. onHit, when set, is called with the
// number of each request before it is answered.
func rolloutServer(t *testing.T, downFor int32, onHit func(n int32)) (*httptest.Server, *atomic.Int32) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		if onHit != nil {
			onHit(n)
		}
		if n <= downFor {
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, "<html><body>502 Bad Gateway</body></html>")
			return
		}
		io.WriteString(w, "<html><title>GOV.UK</title></html>")
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestRetryWaitsOutARollout(t *testing.T) {
	spec := "checks:\n  - name: home\n    path: /\n    expect:\n      body_contains: GOV.UK\n"
	t.Run("passes once the rollout is over", func(t *testing.T) {
		srv, hits := rolloutServer(t, 3, nil)
		res := RunChecks(context.Background(), parseChecks(t, srv.URL, spec),
			CheckOptions{Deadline: farDeadline, Backoff: Backoff{Initial: 10 * time.Millisecond, Max: 40 * time.Millisecond}})
		require.Len(t, res, 1)
		r := res[0]
		assert.True(t, r.Passed, r.Failure)
		assert.Equal(t, 200, r.Status)
		assert.Equal(t, 4, r.Attempts, "three 502s retried, then the pass")
		assert.Equal(t, int32(4), hits.Load(), "each attempt is one request; a pass is not re-run")
		assert.Empty(t, r.Failure)
		assert.Empty(t, r.Body)
		assert.Greater(t, r.Duration, time.Duration(0))
	})
	t.Run("stopped during the rollout, fails with the last status", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// the run is stopped while the server takes the third request
		srv, hits := rolloutServer(t, 1000, func(n int32) {
			if n == 3 {
				cancel()
			}
		})
		res := RunChecks(ctx, parseChecks(t, srv.URL, spec),
			CheckOptions{Deadline: farDeadline, Backoff: Backoff{Initial: 10 * time.Millisecond, Max: 40 * time.Millisecond}})
		r := res[0]
		assert.False(t, r.Passed)
		assert.Equal(t, 502, r.Status)
		assert.Equal(t, 3, r.Attempts, "the attempt cut short counts, and none follows it")
		assert.Equal(t, int32(3), hits.Load())
		assert.Contains(t, r.Failure, "status: expected 2xx, got 502")
		assert.Contains(t, r.Failure, `body_contains: "GOV.UK" not in the body`)
		assert.Equal(t, "<html><body>502 Bad Gateway</body></html>", r.Body)
		assert.Greater(t, r.Duration, time.Duration(0))
	})
	t.Run("gets a last attempt before the deadline instead of a backoff past it", func(t *testing.T) {
		srv, hits := rolloutServer(t, 1000, nil)
		// the deadline is the subject here; 3s is far more than two loopback requests need
		res := RunChecks(context.Background(), parseChecks(t, srv.URL, spec),
			CheckOptions{Deadline: 3 * time.Second, Backoff: Backoff{Initial: time.Hour, Max: time.Hour}})
		r := res[0]
		assert.False(t, r.Passed)
		assert.Equal(t, 502, r.Status)
		assert.Equal(t, 2, r.Attempts, "the first attempt, then the last one timed to end before the deadline")
		assert.InDelta(t, r.Attempts, int(hits.Load()), 1, "a last attempt cut by the deadline may not have reached the server")
		assert.Contains(t, r.Failure, "status: expected 2xx, got 502")
	})
	t.Run("the last attempt is the last even when it was quicker than the first", func(t *testing.T) {
		// A slow first answer leaves room, after a quick last attempt, for
		// another "last" one: there must be none.
		srv, hits := rolloutServer(t, 1000, func(n int32) {
			if n == 1 {
				time.Sleep(400 * time.Millisecond)
			}
		})
		res := RunChecks(context.Background(), parseChecks(t, srv.URL, spec),
			CheckOptions{Deadline: 2 * time.Second, Backoff: Backoff{Initial: time.Hour, Max: time.Hour}})
		r := res[0]
		assert.Equal(t, 2, r.Attempts, "the first attempt, then one last attempt")
		assert.InDelta(t, r.Attempts, int(hits.Load()), 1)
	})
}

// appServer serves every kind of response the expectation table needs.
func appServer(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "<html><title>Welcome to GOV.UK</title><body>frontend "+r.Method+"</body></html>")
	})
	mux.HandleFunc("/json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok","db":{"connected":true},"items":[1,2,3],"version":"v42"}`)
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s", r.Method, r.Header.Get("X-Probe"), body)
	})
	mux.HandleFunc("/missing", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(300 * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "slow")
	})
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(10 * time.Second):
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/old", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/html", http.StatusMovedPermanently)
	})
	mux.HandleFunc("/hop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/old", http.StatusFound) })
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestExpectations(t *testing.T) {
	srv := appServer(t)
	tests := []struct {
		name  string
		check string // one check's YAML, indented under "  - "
		fail  string // "" means the check passes
	}{
		{"status default 2xx passes", "path: /html", ""},
		{"status default 2xx fails", "path: /missing", "status: expected 2xx, got 404"},
		{"status code passes", "path: /missing\n    expect: {status: 404}", ""},
		{"status code fails", "path: /html\n    expect: {status: 201}", "status: expected 201, got 200"},
		{"status list passes", "path: /missing\n    expect: {status: [200, 404]}", ""},
		{"status list fails", "path: /missing\n    expect: {status: [200, 3xx]}", "status: expected 200 or 3xx, got 404"},
		{"status class passes", "path: /missing\n    expect: {status: 4xx}", ""},
		{"body_contains passes", "path: /html\n    expect: {body_contains: [GOV.UK, frontend]}", ""},
		{"body_contains fails", "path: /html\n    expect: {body_contains: [GOV.UK, backend]}", `body_contains: "backend" not in the body`},
		{"body_not_contains passes", "path: /html\n    expect: {body_not_contains: [Error]}", ""},
		{"body_not_contains fails", "path: /html\n    expect: {body_not_contains: [Welcome]}", `body_not_contains: "Welcome" is in the body`},
		{"body_regex passes", "path: /html\n    expect: {body_regex: '<title>[^<]*GOV\\.UK</title>'}", ""},
		{"body_regex fails", "path: /html\n    expect: {body_regex: '^\\{'}", `body_regex: /^\{/ does not match the body`},
		{"header passes", "path: /html\n    expect: {header: {Content-Type: '^text/html', cache-control: 'max-age=\\d+'}}", ""},
		{"header fails", "path: /json\n    expect: {header: {Content-Type: '^text/html'}}", `header Content-Type: expected /^text/html/, got "application/json"`},
		{"header missing", "path: /html\n    expect: {header: {X-Frame-Options: DENY}}", "header X-Frame-Options: expected /DENY/, got no such header"},
		{"json passes", "path: /json\n    expect: {json: {status: ok, db.connected: true, items.#: 3, items.1: 2, version: v42}}", ""},
		{"json wrong value", "path: /json\n    expect: {json: {status: down}}", `json status: expected "down", got "ok"`},
		{"json wrong type", "path: /json\n    expect: {json: {items.#: \"3\"}}", `json items.#: expected "3", got 3`},
		{"json missing path", "path: /json\n    expect: {json: {db.replicas: 2}}", "json db.replicas: expected 2, got nothing at that path"},
		{"json body not json", "path: /html\n    expect: {json: {status: ok}}", "json: the body is not JSON"},
		{"max_latency passes", "path: /html\n    expect: {max_latency: 1m}", ""},
		{"max_latency fails", "path: /slow\n    expect: {max_latency: 50ms}", "max_latency: expected at most 50ms, got"},
		{"method, headers and body are sent", "path: /echo\n    method: PUT\n    headers: {X-Probe: yes}\n    body: hello\n    expect: {body_contains: PUT yes hello}", ""},
		{"redirect not followed passes", "path: /old\n    expect: {redirect_to: /html}", ""},
		{"redirect not followed, wrong target", "path: /old\n    expect: {redirect_to: /elsewhere}", "redirect_to: expected " + srv.URL + "/elsewhere, got " + srv.URL + "/html"},
		{"redirect is a failure by default", "path: /old", "status: expected 2xx, got 301"},
		{"no redirect where one is expected", "path: /html\n    expect: {redirect_to: /x}", "status: expected 3xx, got 200; redirect_to: expected " + srv.URL + "/x, got no Location header"},
		{"redirects followed pass", "path: /hop\n    expect: {follow_redirects: true, redirect_to: /html, body_contains: GOV.UK}", ""},
		{"redirects followed, wrong end", "path: /hop\n    expect: {follow_redirects: true, redirect_to: /old}", "redirect_to: expected " + srv.URL + "/old, got " + srv.URL + "/html"},
		{"redirect loop", "path: /loop\n    expect: {follow_redirects: true}", "stopped after 10 redirects"},
		{"connection refused", "url: http://127.0.0.1:1/", "request failed: "},
	}
	// all cases in one run, as a spec would have them: concurrently
	var spec strings.Builder
	spec.WriteString("checks:\n")
	for _, tt := range tests {
		fmt.Fprintf(&spec, "  - name: %q\n    %s\n", tt.name, tt.check)
	}
	res := firstOutcomes(t, parseChecks(t, srv.URL, spec.String()), CheckOptions{})
	require.Len(t, res, len(tests))
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := res[i]
			require.Equal(t, tt.name, r.Name)
			if tt.fail == "" {
				assert.True(t, r.Passed, r.Failure)
				assert.Empty(t, r.Failure)
				return
			}
			assert.False(t, r.Passed)
			assert.Contains(t, r.Failure, tt.fail)
		})
	}
}

// An app that never answers: the attempt ends at the request timeout,
// whatever the load, since the app holds the request far longer.
func TestRequestTimeout(t *testing.T) {
	srv := appServer(t)
	r := firstOutcomes(t, parseChecks(t, srv.URL, "checks:\n  - path: /hang\n"), CheckOptions{RequestTimeout: 200 * time.Millisecond})[0]
	assert.False(t, r.Passed)
	assert.Equal(t, 0, r.Status)
	assert.Equal(t, "no response within the request timeout (200ms)", r.Failure)
}

func TestBodyExcerptIsFirst500Bytes(t *testing.T) {
	big := strings.Repeat("a", 400) + strings.Repeat("é", 200)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(500)
		io.WriteString(w, big)
	}))
	defer srv.Close()
	r := firstOutcomes(t, parseChecks(t, srv.URL, "checks:\n  - path: /\n"), CheckOptions{})[0]
	assert.False(t, r.Passed)
	assert.Equal(t, 500, r.Status)
	assert.True(t, strings.HasPrefix(big, r.Body[:len(r.Body)-len("\uFFFD")]) || strings.HasPrefix(big, r.Body))
	assert.LessOrEqual(t, len(r.Body), BodyExcerpt+len("\uFFFD"))
	assert.GreaterOrEqual(t, len(r.Body), BodyExcerpt-1)
}

func TestBasicAuth(t *testing.T) {
	var otherSawAuth atomic.Bool
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			otherSawAuth.Store(true)
		}
	}))
	defer other.Close()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "govuk" || p != "pa:ss w0rd" {
			w.Header().Set("WWW-Authenticate", `Basic realm="integration"`)
			http.Error(w, "unauthorised", http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "welcome")
	}))
	defer app.Close()
	spec := fmt.Sprintf("checks:\n  - name: app\n    path: /\n  - name: other\n    url: %s/\n", other.URL)

	auth, err := ParseBasicAuth("govuk:pa:ss w0rd\n")
	require.NoError(t, err)
	auth.BaseURL = app.URL
	res := firstOutcomes(t, parseChecks(t, app.URL, spec), CheckOptions{BasicAuth: auth})
	assert.True(t, res[0].Passed, res[0].Failure)
	assert.True(t, res[1].Passed, res[1].Failure)
	assert.False(t, otherSawAuth.Load(), "credentials are sent to --base-url's host only")

	res = firstOutcomes(t, parseChecks(t, app.URL, spec), CheckOptions{})
	assert.False(t, res[0].Passed)
	assert.Equal(t, 401, res[0].Status)

	for _, bad := range []string{"", "no-colon", ":nouser", "a:b\nc:d"} {
		_, err := ParseBasicAuth(bad)
		assert.Error(t, err, "%q", bad)
	}
}

func TestTLSVerification(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "secure") }))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	defer srv.Close()
	checks := parseChecks(t, srv.URL, "checks:\n  - path: /\n    expect: {body_contains: secure}\n")

	t.Run("self-signed refused without a CA file", func(t *testing.T) {
		tlsConf, err := TLSConfig("")
		require.NoError(t, err)
		r := firstOutcomes(t, checks, CheckOptions{Transport: NewTransport(tlsConf, 4)})[0]
		assert.False(t, r.Passed)
		assert.Contains(t, r.Failure, "certificate")
	})
	t.Run("accepted with its CA in --ca-file", func(t *testing.T) {
		caFile := filepath.Join(t.TempDir(), "ca.pem")
		require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644))
		tlsConf, err := TLSConfig(caFile)
		require.NoError(t, err)
		r := firstOutcomes(t, checks, CheckOptions{Transport: NewTransport(tlsConf, 4)})[0]
		assert.True(t, r.Passed, r.Failure)
	})
	t.Run("bad CA files", func(t *testing.T) {
		notPEM := filepath.Join(t.TempDir(), "x.pem")
		require.NoError(t, os.WriteFile(notPEM, []byte("not a certificate"), 0o644))
		_, err := TLSConfig(notPEM)
		assert.ErrorContains(t, err, "holds no PEM certificate")
		_, err = TLSConfig(filepath.Join(t.TempDir(), "missing.pem"))
		assert.ErrorIs(t, err, os.ErrNotExist)
	})
}

func TestConcurrencyAndNoRerun(t *testing.T) {
	var inFlight, peak atomic.Int32
	hits := map[string]int{}
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		mu.Lock()
		hits[r.URL.Path]++
		nth := hits[r.URL.Path]
		mu.Unlock()
		time.Sleep(20 * time.Millisecond) // overlap requests; the peak is an upper bound, not a timing claim
		if r.URL.Path == "/bad" && nth < 3 {
			w.WriteHeader(503) // until its third request
		}
	}))
	defer srv.Close()
	var spec strings.Builder
	spec.WriteString("checks:\n")
	for i := range 12 {
		fmt.Fprintf(&spec, "  - path: /ok/%d\n", i)
	}
	spec.WriteString("  - path: /bad\n")
	res := RunChecks(context.Background(), parseChecks(t, srv.URL, spec.String()),
		CheckOptions{Concurrency: 3, Deadline: farDeadline, Backoff: Backoff{Initial: 10 * time.Millisecond, Max: 20 * time.Millisecond}})
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, res, 13)
	for i, r := range res[:12] {
		assert.True(t, r.Passed, r.Name)
		assert.Equal(t, 1, r.Attempts, r.Name)
		assert.Equal(t, 1, hits[fmt.Sprintf("/ok/%d", i)], "a passing check is not re-run")
	}
	assert.True(t, res[12].Passed, "the failing check is retried until it passes")
	assert.Equal(t, 3, res[12].Attempts)
	assert.Equal(t, 3, hits["/bad"])
	assert.LessOrEqual(t, peak.Load(), int32(3), "never more requests in flight than the concurrency")
}

func TestCancelledRunReportsEveryCheck(t *testing.T) {
	srv := appServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := RunChecks(ctx, parseChecks(t, srv.URL, "checks:\n  - path: /html\n  - path: /json\n"), CheckOptions{Concurrency: 1})
	require.Len(t, res, 2)
	for _, r := range res {
		assert.False(t, r.Passed)
		assert.NotEmpty(t, r.Failure)
	}
}

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Initial: 100 * time.Millisecond, Max: 1 * time.Second}
	for attempt, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 30: time.Second} {
		for range 20 {
			d := b.delay(attempt)
			assert.GreaterOrEqual(t, d, want/2, "attempt %d", attempt)
			assert.LessOrEqual(t, d, want, "attempt %d", attempt)
		}
	}
}

func TestBasicAuthOrigin(t *testing.T) {
	tests := []struct {
		base, target string
		same         bool
	}{
		{"https://www.example", "https://www.example/search?q=x", true},
		{"https://www.example", "https://www.example:443/", true},
		{"http://WWW.Example:80/app", "http://www.example/other", true},
		{"https://www.example", "https://www.example:8443/", false},
		{"https://www.example", "http://www.example/", false},
		{"http://www.example", "https://www.example/", false},
		{"https://www.example", "https://evil.example/", false},
		{"https://www.example", "https://www.example.evil/", false},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8081/", false},
		{"http://[::1]:8080", "http://[::1]:8080/x", true},
	}
	for _, tt := range tests {
		t.Run(tt.base+" "+tt.target, func(t *testing.T) {
			b, err := url.Parse(tt.base)
			require.NoError(t, err)
			u, err := url.Parse(tt.target)
			require.NoError(t, err)
			assert.Equal(t, tt.same, originOf(b) == originOf(u))
		})
	}
	// no base URL: the credentials go nowhere
	next := http.DefaultTransport
	assert.Same(t, next, withBasicAuth(next, &BasicAuth{User: "u", Password: "p"}))
}
