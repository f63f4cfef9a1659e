// Package smoke is the smoke-test step. Run prepares a plan from the flags
// (the spec's selected checks, the credentials, the suite command; any
// error is bad input, before a request is sent), runs the checks against
// the deployed app concurrently, a failing one retried with backoff until
// it passes or the deadline passes (a rollout's 502s are waited out, a
// passing check is not run again), then the external suite (Playwright,
// Cucumber) whose JUnit report it reads. It prints every check and test
// like a test suite, writes the JUnit and JSON reports masked, and returns
// a Result whose outcome is Passed or ChecksFailed.
package smoke

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/slipway-deploy/slipway/internal/smokespec"
)

// Defaults of CheckOptions.
const (
	DefaultConcurrency    = 16
	DefaultDeadline       = 5 * time.Minute
	DefaultRequestTimeout = 10 * time.Second
	DefaultBackoffInitial = 250 * time.Millisecond
	DefaultBackoffMax     = 5 * time.Second
	// BodyExcerpt is how much of a failing response's body a result keeps.
	BodyExcerpt = 500
	// maxBody is how much of a body the expectations look at.
	maxBody = 4 << 20
	// finalAttemptMargin is kept free before the deadline for a last attempt.
	finalAttemptMargin = 20 * time.Millisecond
	// maxRedirects a check with follow_redirects follows.
	maxRedirects = 10
)

// CheckOptions is how checks are run. Zero fields take the defaults above.
type CheckOptions struct {
	Concurrency    int
	Deadline       time.Duration // for all checks together, retries included
	RequestTimeout time.Duration // for one attempt, body included
	Backoff        Backoff
	// Transport carries every request; nil is NewTransport(nil, Concurrency).
	Transport http.RoundTripper
	// BasicAuth, when set, is sent to its BaseURL's origin only.
	BasicAuth *BasicAuth
	Log       *slog.Logger
}

// Backoff is the wait between attempts of a failing check: Initial, doubled
// each time up to Max, each wait jittered down by up to half.
type Backoff struct {
	Initial, Max time.Duration
}

func (b Backoff) delay(attempt int) time.Duration {
	d := b.Initial
	for i := 1; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	return d/2 + rand.N(d/2+1)
}

// BasicAuth is a user and password for HTTP basic authentication.
type BasicAuth struct {
	User, Password string
	// BaseURL's origin (scheme, host and port) is the only one the
	// credentials are sent to: a check or a followed redirect to another
	// host, port or scheme goes without them. "" sends them nowhere.
	BaseURL string
}

// origin is what BasicAuth compares: scheme, host and port, the port
// filled in when the URL leaves it to the scheme.
type origin struct{ scheme, host, port string }

func originOf(u *url.URL) origin {
	o := origin{scheme: strings.ToLower(u.Scheme), host: strings.ToLower(u.Hostname()), port: u.Port()}
	if o.port == "" {
		switch o.scheme {
		case "http":
			o.port = "80"
		case "https":
			o.port = "443"
		}
	}
	return o
}

// authTransport adds basic auth to each request to one origin, redirects
// included, as it is sent. Set on the request instead, the header would be
// copied by http.Client to a redirect on the same host name whatever its
// port or scheme (https to http included).
type authTransport struct {
	next   http.RoundTripper
	auth   *BasicAuth
	origin origin
}

func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if originOf(req.URL) != t.origin || req.Header.Get("Authorization") != "" {
		return t.next.RoundTrip(req)
	}
	req = req.Clone(req.Context()) // a RoundTripper must not change the request it is given
	req.SetBasicAuth(t.auth.User, t.auth.Password)
	return t.next.RoundTrip(req)
}

// withBasicAuth wraps next so that auth goes to its base URL's origin only.
func withBasicAuth(next http.RoundTripper, auth *BasicAuth) http.RoundTripper {
	if auth == nil {
		return next
	}
	base, err := url.Parse(auth.BaseURL)
	if err != nil || auth.BaseURL == "" || base.Host == "" {
		return next // nowhere to send them
	}
	return &authTransport{next: next, auth: auth, origin: originOf(base)}
}

// safeOffOrigin are the request headers a followed redirect to another
// origin keeps: they say what the client accepts and what the body is,
// never who it is.
var safeOffOrigin = map[string]bool{
	"Accept":          true,
	"Accept-Encoding": true,
	"Accept-Language": true,
	"Cache-Control":   true,
	"Content-Type":    true, // of a body a 307 or 308 sends again
	"User-Agent":      true,
}

// followRedirect is CheckRedirect of a check that follows redirects. Once
// the chain has left the origin of the check's URL (scheme, host, port),
// the request carries only the headers in safeOffOrigin: http.Client copies
// every header the check set to any redirect target, Authorization and
// Cookie included unless the host name changes, and sets a Referer that can
// hold the URL's query.
func followRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	home := originOf(via[0].URL)
	left := originOf(req.URL) != home
	for _, r := range via[1:] {
		left = left || originOf(r.URL) != home
	}
	if left && req.Body != nil && req.Body != http.NoBody {
		// A 307 or 308 resends the check's body, which may hold a secret
		// (a login form): not to another origin.
		return fmt.Errorf("not following a %d redirect to %s: it would resend the request body to another origin", req.Response.StatusCode, originOf(req.URL))
	}
	if left { // for the rest of the chain, as http.Client does
		for name := range req.Header {
			if !safeOffOrigin[http.CanonicalHeaderKey(name)] {
				delete(req.Header, name) // http.Client makes a new map for each hop
			}
		}
	}
	return nil
}

// ParseBasicAuth reads "user:password" (one line; surrounding space and a
// trailing newline are ignored).
func ParseBasicAuth(s string) (*BasicAuth, error) {
	s = strings.TrimSpace(s)
	user, pass, ok := strings.Cut(s, ":")
	if !ok || user == "" || strings.ContainsAny(s, "\r\n") {
		return nil, errors.New("basic auth file must hold one line user:password")
	}
	return &BasicAuth{User: user, Password: pass}, nil
}

// TLSConfig verifies servers against the system's roots plus the PEM
// certificates in caFile, when given.
func TLSConfig(caFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", caFile)
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// NewTransport is an HTTP transport verifying TLS with tlsConfig (nil: the
// system's roots) that keeps enough idle connections for concurrency.
func NewTransport(tlsConfig *tls.Config, concurrency int) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if tlsConfig != nil {
		t.TLSClientConfig = tlsConfig
	}
	t.MaxIdleConns = max(100, concurrency*2)
	t.MaxIdleConnsPerHost = max(2, concurrency)
	return t
}

func (c CheckOptions) withDefaults() CheckOptions {
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Deadline <= 0 {
		c.Deadline = DefaultDeadline
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.Backoff.Initial <= 0 {
		c.Backoff.Initial = DefaultBackoffInitial
	}
	if c.Backoff.Max < c.Backoff.Initial {
		c.Backoff.Max = max(DefaultBackoffMax, c.Backoff.Initial)
	}
	if c.Transport == nil {
		c.Transport = NewTransport(nil, c.Concurrency)
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

// CheckResult is the outcome of one check.
type CheckResult struct {
	Name     string
	Method   string
	URL      string
	Tags     []string
	Passed   bool
	Attempts int
	Status   int           // of the last response; 0 when there was none
	Latency  time.Duration // of the last attempt
	Duration time.Duration // from the first attempt to the outcome
	Failure  string        // why the last attempt failed: expected vs got
	Body     string        // first BodyExcerpt bytes of the last failing response
}

// Run runs every check and returns their results in the order given. It
// returns when every check has passed or the deadline (or ctx) has ended.
func RunChecks(ctx context.Context, checks []smokespec.Check, cfg CheckOptions) []CheckResult {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithTimeout(ctx, cfg.Deadline)
	defer cancel()
	transport := withBasicAuth(cfg.Transport, cfg.BasicAuth)
	r := &runner{
		cfg:    cfg,
		slots:  make(chan struct{}, cfg.Concurrency),
		follow: &http.Client{Transport: transport, CheckRedirect: followRedirect},
		noFollow: &http.Client{Transport: transport, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
	}
	results := make([]CheckResult, len(checks))
	var wg sync.WaitGroup
	for i := range checks {
		wg.Go(func() { results[i] = r.check(ctx, checks[i]) })
	}
	wg.Wait()
	return results
}

type runner struct {
	cfg              CheckOptions
	slots            chan struct{}
	follow, noFollow *http.Client
}

// check runs one check until it passes or ctx ends. A slot is held only
// during an attempt, so a check waiting out its backoff lets others run.
func (r *runner) check(ctx context.Context, c smokespec.Check) (res CheckResult) {
	res = CheckResult{Name: c.Name, Method: c.Method, URL: c.URL, Tags: c.Tags}
	start := time.Now()
	defer func() { res.Duration = time.Since(start) }()
	log := r.cfg.Log.With("check", c.Name)
	last := false // the last attempt, squeezed in before the deadline, was made
	for attempt := 1; ; attempt++ {
		select {
		case r.slots <- struct{}{}:
		case <-ctx.Done():
			if attempt == 1 {
				res.Failure = "not run: the deadline passed before a slot was free (raise --concurrency or --deadline)"
			}
			return res
		}
		out := r.attempt(ctx, c)
		<-r.slots
		if out.stopped && attempt > 1 {
			// cut short by the deadline: the previous attempt's outcome stands
			res.Attempts = attempt
			return res
		}
		res.Attempts, res.Status, res.Latency = attempt, out.status, out.latency
		res.Failure, res.Body = out.failure, out.body
		if out.failure == "" {
			res.Passed = true
			log.Info("check passed", "attempts", attempt, "status", out.status, "latency", roundDuration(out.latency))
			return res
		}
		wait := r.cfg.Backoff.delay(attempt)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			// no time for a full backoff: one last attempt, timed to end
			// before the deadline, rather than giving up early; and after
			// that last one, no other
			wait = time.Until(dl) - 2*out.latency - finalAttemptMargin
			if last {
				wait = 0
			}
			last = true
		}
		if out.stopped || wait <= 0 {
			log.Info("check failed", "attempts", attempt, "status", out.status, "reason", out.failure)
			return res
		}
		level := slog.LevelDebug
		if attempt == 1 {
			level = slog.LevelInfo
		}
		log.Log(ctx, level, "check failing, will retry until the deadline", "attempt", attempt, "status", out.status, "reason", out.failure, "retry_in", wait.Round(time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			log.Info("check failed", "attempts", attempt, "status", out.status, "reason", out.failure)
			return res
		}
	}
}

type attemptOutcome struct {
	status  int
	latency time.Duration
	failure string // "" when every expectation held
	body    string
	stopped bool // the run's deadline or ctx ended during the attempt
}

func (r *runner) attempt(ctx context.Context, c smokespec.Check) attemptOutcome {
	actx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
	defer cancel()
	var body io.Reader
	if c.Body != "" {
		body = strings.NewReader(c.Body)
	}
	req, err := http.NewRequestWithContext(actx, c.Method, c.URL, body)
	if err != nil {
		return attemptOutcome{failure: fmt.Sprintf("build request: %v", err)}
	}
	for _, h := range c.Headers {
		if strings.EqualFold(h.Name, "Host") {
			req.Host = h.Value
			continue
		}
		req.Header.Add(h.Name, h.Value)
	}
	client := r.noFollow
	if c.Expect.FollowRedirects {
		client = r.follow
	}
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return attemptOutcome{latency: time.Since(t0), failure: requestFailure(ctx, actx, err, r.cfg.RequestTimeout), stopped: ctx.Err() != nil}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	latency := time.Since(t0)
	out := attemptOutcome{status: resp.StatusCode, latency: latency}
	if err != nil {
		out.failure = "read body: " + requestFailure(ctx, actx, err, r.cfg.RequestTimeout)
		out.stopped = ctx.Err() != nil
	} else {
		out.failure = strings.Join(evaluate(c.Expect, resp, data, latency), "; ")
	}
	if out.failure != "" {
		out.body = excerpt(data)
	}
	return out
}

// requestFailure says why a request got no (complete) response.
func requestFailure(run, attempt context.Context, err error, timeout time.Duration) string {
	switch {
	case run.Err() != nil:
		return "stopped: the smoke-test deadline passed during the request"
	case attempt.Err() != nil:
		return fmt.Sprintf("no response within the request timeout (%s)", timeout)
	}
	return "request failed: " + err.Error()
}

func excerpt(b []byte) string {
	if len(b) > BodyExcerpt {
		b = b[:BodyExcerpt]
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}
