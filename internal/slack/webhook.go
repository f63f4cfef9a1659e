package slack

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/slipway-deploy/slipway/internal/exitcode"
	"github.com/slipway-deploy/slipway/internal/oneline"
)

// Defaults of a Webhook.
const (
	DefaultTimeout     = 2 * time.Minute
	DefaultMaxAttempts = 5
	DefaultRetryWait   = time.Second
	// attemptTimeout bounds one request, so that a server that never
	// answers leaves time for another try before the deadline.
	attemptTimeout = 30 * time.Second
	maxRetryWait   = 30 * time.Second
	// maxBody is how much of a reply is read: Slack's are one word
	// (invalid_payload, no_service); a proxy's page is cut.
	maxBody = 512
	// maxRetryAfter caps what a server may ask for (a day), so that the
	// header cannot overflow a duration; the deadline still applies.
	maxRetryAfter = 24 * 60 * 60
)

// Webhook posts to one incoming webhook URL.
type Webhook struct {
	// URL is the webhook's URL: a secret, never put into an error or a
	// log line (only its host is).
	URL string
	// HTTP sends the requests; nil means one that follows no redirect.
	HTTP *http.Client
	// Timeout is the deadline of Post, every attempt and wait included.
	Timeout time.Duration
	// MaxAttempts bounds the requests of one Post.
	MaxAttempts int
	// RetryWait is the first wait after a failed attempt without
	// Retry-After; it doubles, with jitter, up to 30s.
	RetryWait time.Duration
	// Mask masks secrets in the text of a reply (a proxy may echo the
	// URL); nil keeps it as is.
	Mask func(string) string
	Log  *slog.Logger
}

// StatusError is a reply other than 2xx.
type StatusError struct {
	Code int
	// Status is the status line's text, e.g. "404 Not Found".
	Status string
	// Body is the start of the reply on one line: Slack's error code,
	// e.g. no_service or invalid_payload.
	Body string
}

func (e *StatusError) Error() string {
	msg := "Slack answered " + e.Status
	if e.Code >= 300 && e.Code < 400 {
		return msg + ": a redirect, not followed (check the webhook URL)"
	}
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Retryable reports whether a later attempt may succeed: rate limited
// (429), request timeout (408) or a server error (5xx).
func (e *StatusError) Retryable() bool {
	return e.Code == http.StatusTooManyRequests || e.Code == http.StatusRequestTimeout || e.Code >= 500
}

// retryAfter is a retryable reply that said how long to wait: backoff
// waits exactly that long.
type retryAfter struct {
	*StatusError
	wait *backoff.RetryAfterError
}

func (e *retryAfter) Error() string {
	return fmt.Sprintf("%s (retry after %s)", e.StatusError.Error(), e.wait.Duration)
}

func (e *retryAfter) Unwrap() []error { return []error{e.StatusError, e.wait} }

// Post sends body (JSON) to the webhook, retrying as the package says.
// It returns how many requests it made. An error names the host only and
// is exit 2 for a reply no retry can fix (3xx, 4xx but 408 and 429) and
// exit 1 otherwise.
func (w *Webhook) Post(ctx context.Context, body []byte) (int, error) {
	u, err := url.Parse(w.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return 0, exitcode.Invalidf("the webhook URL is not an http(s) URL") // the URL itself is secret
	}
	timeout := cmp.Or(w.Timeout, DefaultTimeout)
	deadline := fmt.Errorf("the %s deadline passed", timeout)
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, deadline)
	defer cancel()
	attempts, maxAttempts := 0, cmp.Or(w.MaxAttempts, DefaultMaxAttempts)
	var last error
	_, err = backoff.Retry(ctx, func() (struct{}, error) {
		attempts++
		err := w.attempt(ctx, u, body)
		last = err
		if p := (*backoff.PermanentError)(nil); errors.As(err, &p) {
			last = p.Err // what Retry returns for it
		}
		return struct{}{}, err
	},
		backoff.WithBackOff(&backoff.ExponentialBackOff{InitialInterval: cmp.Or(w.RetryWait, DefaultRetryWait),
			RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: maxRetryWait}),
		backoff.WithMaxTries(uint(maxAttempts)),
		backoff.WithMaxElapsedTime(timeout),
		backoff.WithNotify(func(err error, wait time.Duration) {
			w.log().Warn("Slack did not take the message, retrying", "attempt", attempts, "wait", wait.String(), "error", err.Error())
		}))
	if err == nil {
		return attempts, nil
	}
	return attempts, w.failure(err, last, attempts, maxAttempts)
}

// failure is the one error of a Post that did not succeed.
func (w *Webhook) failure(err, last error, attempts, maxAttempts int) error {
	where := "post to Slack (" + w.host() + ")"
	code := exitcode.Code(last)
	switch {
	case !errors.Is(err, last): // stopped by the deadline or a signal
		err = fmt.Errorf("%s: %w after %d attempt(s); last: %w", where, err, attempts, last)
	case code == exitcode.Invalid:
		err = fmt.Errorf("%s: %w", where, last)
	case attempts >= maxAttempts:
		err = fmt.Errorf("%s: gave up after %d attempts: %w", where, attempts, last)
	default:
		err = fmt.Errorf("%s: gave up after %d attempt(s), the next would pass the deadline: %w", where, attempts, last)
	}
	return &exitcode.Error{Code: code, Err: err}
}

// attempt makes one request. A reply no retry can fix is a permanent
// error with exit code 2.
func (w *Webhook) attempt(ctx context.Context, u *url.URL, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return backoff.Permanent(exitcode.Invalidf("the webhook URL cannot be requested"))
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := w.client().Do(req)
	if err != nil {
		// *url.Error quotes the URL: keep only what went wrong.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("send: %w", err)
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	se := &StatusError{Code: resp.StatusCode, Status: resp.Status, Body: w.mask(oneline.Fold(string(head)))}
	if len(se.Body) > 200 {
		se.Body = Shorten(se.Body, 200)
	}
	if !se.Retryable() {
		return backoff.Permanent(exitcode.AsInvalid(se))
	}
	if wait, ok := ParseRetryAfter(resp.Header.Get("Retry-After")); ok {
		return &retryAfter{StatusError: se, wait: &backoff.RetryAfterError{Duration: wait}}
	}
	return se
}

// ParseRetryAfter reads a Retry-After header in its seconds form ("120");
// the date form, and anything else, is not understood (ok false: the
// backoff decides).
func ParseRetryAfter(v string) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" || strings.TrimLeft(v, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n > maxRetryAfter {
		return 0, false
	}
	return time.Duration(n) * time.Second, true
}

func (w *Webhook) client() *http.Client {
	if w.HTTP != nil {
		return w.HTTP
	}
	return &http.Client{
		// A webhook does not redirect: following one would send the
		// message (and the path, the secret) on to another address.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// host is the webhook's host, the one part of its URL that may be shown.
func (w *Webhook) host() string {
	if u, err := url.Parse(w.URL); err == nil && u.Host != "" {
		return u.Host
	}
	return "the webhook"
}

func (w *Webhook) mask(s string) string {
	if w.Mask == nil {
		return s
	}
	return w.Mask(s)
}

func (w *Webhook) log() *slog.Logger {
	if w.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return w.Log
}
