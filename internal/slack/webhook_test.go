package slack

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/exitcode"
	"github.com/slipway-deploy/slipway/internal/redact"
	"github.com/slipway-deploy/slipway/internal/testsupport/slackserver"
)

// secretPath is the part of a webhook URL that is the secret.
const secretPath = "/services/T0SECRET1/B0SECRET2/xoxSECRETtoken1234567890"

func hook(srv *slackserver.Server, maxAttempts int) *Webhook {
	return &Webhook{URL: srv.URL + secretPath, MaxAttempts: maxAttempts, RetryWait: time.Millisecond,
		Timeout: time.Minute, Log: slog.New(slog.NewJSONHandler(srv.LogWriter(), nil))}
}

// retryLogs returns the "wait" of each retry the client logged.
func retryLogs(t *testing.T, events []string) []string {
	t.Helper()
	var waits []string
	for _, e := range events {
		line, ok := strings.CutPrefix(e, "log: ")
		if !ok {
			continue
		}
		var rec struct{ Msg, Wait string }
		require.NoError(t, json.Unmarshal([]byte(line), &rec))
		if rec.Msg == "Slack did not take the message, retrying" {
			waits = append(waits, rec.Wait)
		}
	}
	return waits
}

func TestRetryAfterIsWaitedOut(t *testing.T) {
	srv := slackserver.Start(t,
		slackserver.Reply{Status: http.StatusTooManyRequests, Body: "rate_limited", Header: map[string]string{"Retry-After": "1"}},
		slackserver.OK)
	attempts, err := hook(srv, 3).Post(context.Background(), []byte(`{"text":"hi"}`))
	require.NoError(t, err)
	assert.Equal(t, 2, attempts)

	events := srv.Events()
	// The retry waited what Slack asked (1s), not --retry-wait (1ms), and
	// was logged between the 429 and the second post.
	assert.Equal(t, []string{"1s"}, retryLogs(t, events))
	require.Len(t, events, 5, "%q", events)
	assert.Equal(t, []string{"post 1", "reply 429"}, events[:2])
	assert.True(t, strings.HasPrefix(events[2], "log: "), events[2])
	assert.Equal(t, []string{"post 2", "reply 200"}, events[3:])
	// ... and the second post came no sooner than the server said: the
	// reply's time is taken before it is written, so this cannot flake.
	posts := srv.Posts()
	require.Len(t, posts, 2)
	assert.GreaterOrEqual(t, posts[1].At.Sub(posts[0].RepliedAt), time.Second)
	assert.Equal(t, secretPath, posts[1].Path)
	assert.Equal(t, `{"text":"hi"}`, string(posts[1].Body), "the body is sent again whole")
	assert.Equal(t, "application/json; charset=utf-8", posts[1].ContentType)
}

func Test500ThreeTimesIsExit1WithOneLine(t *testing.T) {
	srv := slackserver.Start(t, slackserver.Reply{Status: 500, Body: "internal\nerror"})
	attempts, err := hook(srv, 3).Post(context.Background(), []byte(`{}`))
	require.Error(t, err)
	assert.Equal(t, 3, attempts)
	assert.Len(t, srv.Posts(), 3)
	assert.Equal(t, exitcode.Failed, exitcode.Code(err))
	host := strings.TrimPrefix(srv.URL, "http://")
	assert.Equal(t, "post to Slack ("+host+"): gave up after 3 attempts: Slack answered 500 Internal Server Error: internal error", err.Error())
	var se *StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 500, se.Code)
	assert.Len(t, retryLogs(t, srv.Events()), 2, "a retry is logged before each wait")
}

// Replies no retry fixes end the post at once with exit 2; 408 and 5xx
// are retried.
func TestRepliesAndTheirExitCodes(t *testing.T) {
	tests := []struct {
		name  string
		reply slackserver.Reply
		posts int
		code  int
		msg   string
	}{
		{"bad payload", slackserver.Reply{Status: 400, Body: "invalid_payload"}, 1, 2, "Slack answered 400 Bad Request: invalid_payload"},
		{"no such webhook", slackserver.Reply{Status: 404, Body: "no_service"}, 1, 2, "Slack answered 404 Not Found: no_service"},
		{"token revoked", slackserver.Reply{Status: 403, Body: "invalid_token"}, 1, 2, "Slack answered 403 Forbidden: invalid_token"},
		{"archived channel", slackserver.Reply{Status: 410, Body: "channel_is_archived"}, 1, 2, "Slack answered 410 Gone: channel_is_archived"},
		{"redirect", slackserver.Reply{Status: 302, Header: map[string]string{"Location": "http://127.0.0.1:1" + secretPath}}, 1, 2,
			"Slack answered 302 Found: a redirect, not followed (check the webhook URL)"},
		{"request timeout", slackserver.Reply{Status: 408, Body: "slow"}, 2, 1, "gave up after 2 attempts: Slack answered 408 Request Timeout: slow"},
		{"unavailable", slackserver.Reply{Status: 503}, 2, 1, "gave up after 2 attempts: Slack answered 503 Service Unavailable"},
		{"rate limited without Retry-After", slackserver.Reply{Status: 429}, 2, 1, "gave up after 2 attempts: Slack answered 429 Too Many Requests"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := slackserver.Start(t, tt.reply)
			_, err := hook(srv, 2).Post(context.Background(), []byte(`{}`))
			require.Error(t, err)
			assert.Len(t, srv.Posts(), tt.posts)
			assert.Equal(t, tt.code, exitcode.Code(err))
			assert.True(t, strings.HasSuffix(err.Error(), tt.msg), err.Error())
			assert.NotContains(t, err.Error(), secretPath)
		})
	}
}

// A wait Slack asks for that would pass the deadline is not waited: the
// post gives up at once, saying why.
func TestRetryAfterPastTheDeadlineGivesUp(t *testing.T) {
	srv := slackserver.Start(t, slackserver.Reply{Status: 429, Header: map[string]string{"Retry-After": "3600"}})
	h := hook(srv, 5)
	h.Timeout = time.Minute
	attempts, err := h.Post(context.Background(), []byte(`{}`))
	require.Error(t, err)
	assert.Equal(t, 1, attempts)
	assert.Equal(t, exitcode.Failed, exitcode.Code(err))
	assert.Contains(t, err.Error(), "gave up after 1 attempt(s), the next would pass the deadline: Slack answered 429 Too Many Requests (retry after 1h0m0s)")
}

// A post stopped from outside (SIGTERM cancels the context) while it
// waits says so, with the last reply.
func TestCancelledWhileWaiting(t *testing.T) {
	srv := slackserver.Start(t, slackserver.Reply{Status: 429, Header: map[string]string{"Retry-After": "30"}})
	ctx, cancel := context.WithCancel(context.Background())
	h := hook(srv, 5)
	h.Log = slog.New(slog.NewJSONHandler(cancelOnWrite{cancel}, nil)) // the retry is logged just before the wait
	_, err := h.Post(ctx, []byte(`{}`))
	require.Error(t, err)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, exitcode.Failed, exitcode.Code(err))
	assert.Contains(t, err.Error(), "context canceled after 1 attempt(s); last: Slack answered 429 Too Many Requests (retry after 30s)")
	assert.Len(t, srv.Posts(), 1)
}

type cancelOnWrite struct{ cancel func() }

func (c cancelOnWrite) Write(p []byte) (int, error) { c.cancel(); return len(p), nil }

func TestConnectionRefusedKeepsTheURLOut(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close()) // nothing listens there now
	h := &Webhook{URL: "http://" + addr + secretPath, MaxAttempts: 2, RetryWait: time.Millisecond}
	attempts, err := h.Post(context.Background(), []byte(`{}`))
	require.Error(t, err)
	assert.Equal(t, 2, attempts)
	assert.Equal(t, exitcode.Failed, exitcode.Code(err))
	assert.Contains(t, err.Error(), "post to Slack ("+addr+"): gave up after 2 attempts: send: dial tcp "+addr)
	assert.NotContains(t, err.Error(), secretPath)
	assert.NotContains(t, err.Error(), "xoxSECRET")
	var uerr interface{ Timeout() bool }
	assert.False(t, errors.As(err, &uerr) && uerr.Timeout())
}

// A reply that echoes the URL (a proxy's error page) is masked.
func TestReplyEchoingTheURLIsMasked(t *testing.T) {
	srv := slackserver.Start(t)
	url := srv.URL + secretPath
	srv2 := slackserver.Start(t, slackserver.Reply{Status: 404, Body: "no route to " + url + " (" + secretPath + ")"})
	red := &redact.Redactor{}
	red.Add(srv2.URL+secretPath, secretPath)
	h := &Webhook{URL: srv2.URL + secretPath, Mask: red.String}
	_, err := h.Post(context.Background(), []byte(`{}`))
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "xoxSECRET")
	assert.Contains(t, err.Error(), "Slack answered 404 Not Found: no route to http://127.0.0.1:")
}

func TestNotAWebhookURL(t *testing.T) {
	for _, u := range []string{"ftp://hooks.example" + secretPath, "hooks.example" + secretPath, "http://" + secretPath, "http://a b" + secretPath} {
		_, err := (&Webhook{URL: u}).Post(context.Background(), []byte(`{}`))
		require.Error(t, err)
		assert.Equal(t, exitcode.Invalid, exitcode.Code(err))
		assert.NotContains(t, err.Error(), "SECRET")
	}
}

func TestParseRetryAfter(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"1", time.Second, true},
		{" 120 ", 2 * time.Minute, true},
		{"0", 0, true},
		{"86400", 24 * time.Hour, true},
		{"86401", 0, false},
		{"99999999999999999999", 0, false},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"+3", 0, false},
		{"Wed, 21 Oct 2015 07:28:00 GMT", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseRetryAfter(tt.in)
		assert.Equal(t, tt.ok, ok, tt.in)
		assert.Equal(t, tt.want, got, tt.in)
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"1", "120", "", "-1", "1e3", "Wed, 21 Oct 2015 07:28:00 GMT", "٣"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := ParseRetryAfter(s)
		if !ok {
			assert.Zero(t, d)
			return
		}
		assert.GreaterOrEqual(t, d, time.Duration(0))
		assert.LessOrEqual(t, d, 24*time.Hour)
		assert.Equal(t, time.Duration(0), d%time.Second)
	})
}
