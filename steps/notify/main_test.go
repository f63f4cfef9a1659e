package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/notify"
	"github.com/slipway-deploy/slipway/internal/stepcli"
	"github.com/slipway-deploy/slipway/internal/testsupport/slackserver"
)

// The secret part of every webhook URL here, and its token alone.
const (
	secretPath = "/services/T0SECRET1/B0SECRET2/xoxSECRETtoken1234567890"
	token      = "xoxSECRETtoken1234567890"
)

type result struct {
	code           int
	stdout, stderr string
}

// run runs the step with the webhook URL in the environment (none if
// webhook is empty) and extra stderr writers (a server's event log).
func run(t *testing.T, webhook string, args []string, logs ...io.Writer) result {
	t.Helper()
	t.Setenv(notify.WebhookEnv, webhook)
	var out, errb bytes.Buffer
	code := stepcli.Main(step(), append([]string{"notify"}, args...), &out, io.MultiWriter(append(logs, &errb)...))
	return result{code, out.String(), errb.String()}
}

// post is a post-sync's notify of frontend v42 in integration.
var post = []string{"--app", "frontend", "--env", "integration", "--tag", "v42", "--previous-tag", "v41",
	"--status", "Succeeded", "--outcome", "promoted", "--target-env", "staging", "--retry-wait", "1ms", "--log-format", "json"}

func args(extra ...string) []string { return append(append([]string{}, post...), extra...) }

// nonJSONLines are stderr's lines that are not log records: the one line
// a failure prints.
func nonJSONLines(stderr string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimRight(stderr, "\n"), "\n") {
		if l != "" && !json.Valid([]byte(l)) {
			out = append(out, l)
		}
	}
	return out
}

func TestPosts(t *testing.T) {
	srv := slackserver.Start(t)
	r := run(t, srv.URL+secretPath, args())
	require.Equal(t, 0, r.code, r.stderr)
	require.Len(t, srv.Posts(), 1)
	assert.Contains(t, string(srv.Posts()[0].Body), `"text": ":rocket: frontend v42 deployed to integration and promoted to staging"`)
	assert.Empty(t, r.stdout)
	assert.Empty(t, nonJSONLines(r.stderr))
	var rec map[string]any
	require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(r.stderr)), &rec), "one log line: %s", r.stderr)
	assert.Equal(t, "posted to Slack: frontend v42 deployed to integration and promoted to staging", rec["msg"])
	assert.Equal(t, "promoted", rec["message"])
	assert.EqualValues(t, 1, rec["attempts"])
}

// A reason given base64 (SLIPWAY_REASON, as the workflows pass it) posts
// what the text would: Argo's markup in it arrives as written.
func TestBase64ReasonPostsTheText(t *testing.T) {
	srv := slackserver.Start(t)
	reason := "held: INC-1234 {{workflow.name}} {{=1+1}} by jane"
	r := run(t, srv.URL+secretPath, args("--reason", reason))
	require.Equal(t, 0, r.code, r.stderr)
	t.Setenv("SLIPWAY_REASON", base64.StdEncoding.EncodeToString([]byte(reason)))
	t.Setenv("SLIPWAY_REASON_ENCODING", "base64")
	r = run(t, srv.URL+secretPath, args())
	require.Equal(t, 0, r.code, r.stderr)
	posts := srv.Posts()
	require.Len(t, posts, 2)
	assert.Equal(t, string(posts[0].Body), string(posts[1].Body))
	assert.Contains(t, string(posts[1].Body), `"text": "*Reason:* held: INC-1234 {{workflow.name}} {{=1+1}} by jane"`)
}

func TestRetryAfterThenOK(t *testing.T) {
	srv := slackserver.Start(t,
		slackserver.Reply{Status: 429, Body: "rate_limited", Header: map[string]string{"Retry-After": "1"}}, slackserver.OK)
	r := run(t, srv.URL+secretPath, args(), srv.LogWriter())
	require.Equal(t, 0, r.code, r.stderr)
	events := srv.Events()
	require.Len(t, events, 6, "%q", events)
	assert.Equal(t, []string{"post 1", "reply 429"}, events[:2])
	assert.Contains(t, events[2], `"msg":"Slack did not take the message, retrying"`)
	assert.Contains(t, events[2], `"wait":"1s"`, "Retry-After, not --retry-wait")
	assert.Equal(t, []string{"post 2", "reply 200"}, events[3:5])
	assert.Contains(t, events[5], `"msg":"posted to Slack:`)
	assert.Contains(t, events[5], `"attempts":2`)
	posts := srv.Posts()
	assert.GreaterOrEqual(t, posts[1].At.Sub(posts[0].RepliedAt).Seconds(), 1.0, "no sooner than Slack said")
}

func Test500ThreeTimesIsExit1AndOneLine(t *testing.T) {
	srv := slackserver.Start(t, slackserver.Reply{Status: 500, Body: "boom"})
	r := run(t, srv.URL+secretPath, args("--max-attempts", "3"))
	assert.Equal(t, 1, r.code)
	assert.Len(t, srv.Posts(), 3)
	host := strings.TrimPrefix(srv.URL, "http://")
	assert.Equal(t, []string{"notify: post to Slack (" + host + "): gave up after 3 attempts: Slack answered 500 Internal Server Error: boom"},
		nonJSONLines(r.stderr))
	assert.Equal(t, 2, strings.Count(r.stderr, "retrying"), "each retry is logged")
}

func TestDryRunPostsNothing(t *testing.T) {
	srv := slackserver.Start(t)
	r := run(t, srv.URL+secretPath, args("--dry-run"))
	require.Equal(t, 0, r.code, r.stderr)
	assert.Empty(t, srv.Posts())
	assert.True(t, json.Valid([]byte(r.stdout)), r.stdout)
	assert.Contains(t, r.stdout, `"text": ":rocket: frontend v42 deployed to integration and promoted to staging"`)
	assert.Contains(t, r.stderr, `"msg":"dry run, nothing posted: frontend v42 deployed to integration and promoted to staging"`)
}

// Invalid input exits 2 with one line naming the problem, and posts
// nothing.
func TestBadInput(t *testing.T) {
	srv := slackserver.Start(t)
	hook := srv.URL + secretPath
	both := filepath.Join(t.TempDir(), "url")
	require.NoError(t, os.WriteFile(both, []byte(hook), 0o600))
	set := func(flag, v string) []string {
		a := args()
		for i := range a {
			if a[i] == flag {
				a[i+1] = v
				return a
			}
		}
		return append(a, flag, v)
	}
	tests := []struct {
		name    string
		webhook string
		args    []string
		line    string
	}{
		{"no webhook", "", args(), "notify: no webhook URL: give --webhook-url-file or SLIPWAY_SLACK_WEBHOOK_URL"},
		{"two webhooks", hook, args("--webhook-url-file", both), "notify: give the webhook URL by --webhook-url-file or SLIPWAY_SLACK_WEBHOOK_URL, not both"},
		{"missing webhook file", "", args("--webhook-url-file", "/nonexistent/url"), "notify: --webhook-url-file: open /nonexistent/url: no such file or directory"},
		{"webhook not http", "ftp://hooks.example" + secretPath, args(), "notify: the webhook URL is not an http(s) URL"},
		{"webhook without host", "https://" + secretPath, args(), "notify: the webhook URL has no host"},
		{"no app", hook, set("--app", ""), "notify: --app is required"},
		{"bad app", hook, set("--app", "../etc"), `notify: --app: app "../etc" is not a valid name: use at most 63 lower-case letters, digits and '-', starting with a letter or digit`},
		{"bad env", hook, set("--env", "Integration"), `notify: --env: environment "Integration" is not a valid name`},
		{"bad tag", hook, set("--tag", "v4 2"), `notify: --tag: tag "v4 2" is not a valid image tag: use 1-128 of A-Z a-z 0-9 . _ -, starting with a letter, digit or '_'`},
		{"bad previous tag", hook, set("--previous-tag", "a..b"), `notify: --previous-tag: tag "a..b" cannot name a git branch: no '..', and no '.' or '.lock' at the end`},
		{"bad target env", hook, set("--target-env", "stag ing"), `notify: --target-env: environment "stag ing" is not a valid name`},
		{"no status", hook, set("--status", ""), "notify: --status is required: one of Succeeded, Failed, Error, SyncFailed"},
		{"unknown status", hook, set("--status", "Done"), `notify: --status "Done": want one of Succeeded, Failed, Error, SyncFailed`},
		{"unknown outcome", hook, set("--outcome", "promoted-ish"), `notify: --outcome: unknown outcome "promoted-ish"`},
		{"bad promoted", hook, args("--promoted", "yes"), `notify: --promoted "yes": want true, false or nothing`},
		{"promoted contradicts outcome", hook, append(set("--outcome", "stale"), "--promoted", "true"), "notify: --promoted true contradicts --outcome stale"},
		{"outcome contradicts promoted", hook, args("--promoted", "false"), "notify: --promoted false contradicts --outcome promoted"},
		{"promotion after a failed sync", hook, set("--status", "SyncFailed"), "notify: --status SyncFailed: a failed sync runs no promotion (--promoted, --outcome, --target-env)"},
		{"failed step of a success", hook, args("--failed-step", "smoke-test"), "notify: --failed-step is for --status Failed or Error, not Succeeded"},
		{"failed step not a name", hook, append(set("--status", "Failed"), "--failed-step", "<!here>"), `notify: --failed-step "<!here>": want a step's name (letters, digits, space and ._:()[]/-, at most 100)`},
		{"target is env", hook, set("--target-env", "integration"), "notify: --target-env integration is --env itself"},
		{"workflow URL not http", hook, args("--workflow-url", "javascript:alert(1)"), `notify: --workflow-url "javascript:alert(1)": want an http(s) URL`},
		{"compare URL relative", hook, args("--compare-url", "/compare/v41...v42"), `notify: --compare-url "/compare/v41...v42": want an http(s) URL`},
		{"argocd URL with a space", hook, args("--argocd-url", "https://argocd.example/app lications"), `notify: --argocd-url "https://argocd.example/app lications": want an http(s) URL`},
		{"bad channel", hook, args("--channel", "#dep loys"), `notify: --channel: "#dep loys" is not a channel: want #name, @user or an ID`},
		{"reason not base64", hook, args("--reason", "stale: integration now runs v43", "--reason-encoding", "base64"),
			"notify: --reason is not base64 (--reason-encoding base64): illegal base64 data at input byte 5"},
		{"unknown reason encoding", hook, args("--reason", "promoted", "--reason-encoding", "hex"), `notify: --reason-encoding "hex": want text or base64`},
		{"negative timeout", hook, args("--timeout", "-1s"), "notify: --timeout -1s: want a positive duration"},
		{"unknown flag", hook, args("--webhook-url", hook), "notify: flag provided but not defined: -webhook-url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, tt.webhook, tt.args)
			assert.Equal(t, 2, r.code, r.stderr)
			lines := nonJSONLines(r.stderr)
			require.Len(t, lines, 1, r.stderr)
			assert.Equal(t, tt.line, lines[0])
			assert.NotContains(t, r.stdout+r.stderr, token)
		})
	}
	assert.Len(t, srv.Posts(), 0, "invalid input posts nothing")
}

// The webhook URL is a secret: neither it, nor its path, nor its token
// appears in stdout, stderr or the JSON logs (debug included), whatever
// happens.
func TestWebhookURLNeverPrinted(t *testing.T) {
	refused := func(t *testing.T) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		require.NoError(t, l.Close())
		return "http://" + l.Addr().String()
	}
	tests := []struct {
		name  string
		base  func(t *testing.T, other *slackserver.Server) string
		extra []string
		code  int
	}{
		{"posted", nil, nil, 0},
		{"server errors", func(t *testing.T, _ *slackserver.Server) string {
			return slackserver.Start(t, slackserver.Reply{Status: 500, Body: "boom"}).URL
		}, nil, 1},
		{"reply echoes the URL and token", func(t *testing.T, _ *slackserver.Server) string {
			s := slackserver.Start(t)
			s2 := slackserver.Start(t, slackserver.Reply{Status: 404, Body: "no_service " + s.URL + secretPath + " " + token})
			return s2.URL
		}, nil, 2},
		{"connection refused", func(t *testing.T, _ *slackserver.Server) string { return refused(t) }, nil, 1},
		{"redirect to another host", func(t *testing.T, other *slackserver.Server) string {
			return slackserver.Start(t, slackserver.Reply{Status: 307, Header: map[string]string{
				"Location": strings.Replace(other.URL, "127.0.0.1", "localhost", 1) + secretPath}}).URL
		}, nil, 2},
		{"rate limited past the deadline", func(t *testing.T, _ *slackserver.Server) string {
			return slackserver.Start(t, slackserver.Reply{Status: 429, Header: map[string]string{"Retry-After": "600"}}).URL
		}, []string{"--timeout", "1m"}, 1},
		{"invalid input after the URL", nil, []string{"--app", "Bad App"}, 2},
		{"not an http URL", func(t *testing.T, _ *slackserver.Server) string { return "ftp://hooks.example" }, nil, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			other := slackserver.Start(t)
			hook := other.URL + secretPath
			if tt.base != nil {
				hook = tt.base(t, other) + secretPath
			}
			for _, how := range []string{"env", "file"} {
				a := args(append([]string{"--debug", "--max-attempts", "2"}, tt.extra...)...)
				env := hook
				if how == "file" {
					file := filepath.Join(t.TempDir(), "url")
					require.NoError(t, os.WriteFile(file, []byte(hook+"\n"), 0o600))
					a, env = append(a, "--webhook-url-file", file), ""
				}
				r := run(t, env, a)
				assert.Equal(t, tt.code, r.code, r.stderr)
				all := r.stdout + r.stderr
				for _, s := range []string{hook, secretPath, token, "T0SECRET1/B0SECRET2"} {
					assert.NotContains(t, all, s, how)
				}
				if tt.code != 0 {
					assert.Len(t, nonJSONLines(r.stderr), 1, r.stderr)
				}
			}
			if tt.base != nil {
				assert.Len(t, other.Posts(), 0, "a redirect is not followed")
			}
		})
	}
}

// A report, as the promoter-plan workflow posts one: the file's text under
// the title; a dry run prints the payload; an empty report posts nothing
// and exits 0; bad input is exit 2 and one line; the webhook URL never
// shows.
func TestReport(t *testing.T) {
	srv := slackserver.Start(t)
	hook := srv.URL + secretPath
	dir := t.TempDir()
	plan := filepath.Join(dir, "plan.md")
	require.NoError(t, os.WriteFile(plan, []byte("*Release plan*: `main` at `5c2e91a`, 2026-11-25 12:00 UTC, 13 apps\n\n"+
		"*Drift* (behind the environment before for more than 7d)\n- `manual-app` production runs v20, 3 releases behind staging (v50) for 11d\n"), 0o644))
	empty := filepath.Join(dir, "empty.md")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	report := func(file string, extra ...string) []string {
		return append([]string{"--report-file", file, "--title", ":warning: Release plan: drift", "--log-format", "json", "--debug"}, extra...)
	}
	var printed strings.Builder // every run's stdout and stderr
	run := func(t *testing.T, webhook string, args []string) result {
		r := run(t, webhook, args)
		printed.WriteString(r.stdout + r.stderr)
		return r
	}

	r := run(t, hook, report(plan))
	require.Equal(t, 0, r.code, r.stderr)
	require.Len(t, srv.Posts(), 1)
	posted := string(srv.Posts()[0].Body)
	assert.Contains(t, posted, `"text": "*Release plan*: `+"`main`"+` at `)
	assert.Contains(t, r.stderr, `"msg":"posted to Slack: :warning: Release plan: drift"`)
	assert.Contains(t, r.stderr, `"message":"report","lines":4,"shown":4`)

	r = run(t, "", report(plan, "--dry-run"))
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, posted, r.stdout)

	r = run(t, hook, report(empty))
	require.Equal(t, 0, r.code, r.stderr)
	assert.Len(t, srv.Posts(), 1, "an empty report posts nothing")
	assert.Contains(t, r.stderr, `"msg":"nothing posted: the report is empty"`)
	r = run(t, hook, report(empty, "--post-empty", "--reason", "promoter plan: Error (exit code 2)"))
	require.Equal(t, 0, r.code, r.stderr)
	require.Len(t, srv.Posts(), 2, "--post-empty posts it")
	assert.Contains(t, string(srv.Posts()[1].Body), "_The report is empty._")

	for _, bad := range []struct {
		args []string
		line string
	}{
		{report(plan, "--app", "frontend"), "notify: --app is a deployment's, not a report's (--report-file)"},
		{append(args(), "--title", "x"), "notify: --title is a report's headline: give --report-file too"},
		{report(plan, "--report-encoding", "base64"), "notify: --report-file is not base64 (--report-encoding base64): illegal base64 data at input byte 0"},
		{report(plan, "--reason", "promoter plan: Error", "--reason-encoding", "base64"),
			"notify: --reason is not base64 (--reason-encoding base64): illegal base64 data at input byte 12"},
		{[]string{"--report-file", plan}, "notify: --title is required with --report-file: the message's headline"},
	} {
		r := run(t, hook, bad.args)
		assert.Equal(t, 2, r.code, r.stderr)
		assert.Equal(t, []string{bad.line}, nonJSONLines(r.stderr))
	}
	assert.Len(t, srv.Posts(), 2, "invalid input posts nothing")
	for _, s := range []string{hook, secretPath, token} {
		assert.NotContains(t, printed.String(), s)
	}
}
