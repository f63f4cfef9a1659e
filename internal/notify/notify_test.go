package notify

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/exitcode"
	"github.com/slipway-deploy/slipway/internal/outcome"
	"github.com/slipway-deploy/slipway/internal/redact"
	"github.com/slipway-deploy/slipway/internal/slack"
	"github.com/slipway-deploy/slipway/internal/testsupport/slackserver"
)

var update = flag.Bool("update", false, "rewrite the golden payloads under testdata")

const secretPath = "/services/T0SECRET1/B0SECRET2/xoxSECRETtoken1234567890"

// base is a post-sync of frontend v42 in integration, with every link.
func base(srv *slackserver.Server) Config {
	return Config{
		WebhookURL: srv.URL + secretPath,
		App:        "frontend", Env: "integration", Tag: "v42", PreviousTag: "v41", Status: "Succeeded",
		WorkflowURL: "https://argo.example/workflows/apps/frontend-post-sync-x7k2p?tab=workflow&uid=1",
		CompareURL:  "https://github.com/alphagov/frontend/compare/v41...v42",
		ArgoCDURL:   "https://argocd.integration.example/applications/frontend",
		MaxAttempts: 1, RetryWait: time.Millisecond,
	}
}

type golden struct {
	name     string
	edit     func(*Config)
	kind     Kind
	headline string
}

// statusCases are a message for each --status, and the promotion flags
// given without an outcome.
func statusCases() []golden {
	return []golden{
		{"status-succeeded", func(c *Config) {}, KindDeployed, "frontend v42 deployed to integration"},
		{"status-failed-at-step", func(c *Config) {
			c.Status, c.FailedStep, c.Outcome = "Failed", "smoke-test", "checks-failed"
			c.Reason = "2 of 14 checks failed: GET /healthcheck/ready 502"
		}, KindFailed, "frontend v42 failed in integration at smoke-test: smoke checks failed"},
		{"status-failed", func(c *Config) { c.Status = "Failed" }, KindFailed, "frontend v42 failed in integration"},
		{"status-error", func(c *Config) { c.Status, c.FailedStep = "Error", "migrate" }, KindFailed,
			"frontend v42 failed in integration at migrate (workflow error)"},
		{"status-sync-failed", func(c *Config) {
			c.Status, c.WorkflowURL, c.CompareURL = "SyncFailed", "", ""
			c.Reason = "one or more objects failed to apply: Deployment.apps \"frontend\" is invalid"
		}, KindSyncFailed, "frontend v42 sync failed in integration"},
		{"promoted-flag", func(c *Config) { c.Promoted, c.TargetEnv = "true", "staging" }, KindPromoted,
			"frontend v42 deployed to integration and promoted to staging"},
		{"not-promoted-approval-timeout", func(c *Config) {
			c.Env, c.Promoted, c.TargetEnv, c.Reason = "staging", "false", "production", "approval timed out after 24h"
		}, KindNotPromoted, "frontend v42 deployed to staging, not promoted to production: approval timed out after 24h"},
		{"escaped", func(c *Config) {
			c.Promoted, c.Channel = "false", "#deploys"
			c.Reason = "<!channel> see <https://evil.example|here> & *act*\nnow"
		}, KindNotPromoted, "frontend v42 deployed to integration, not promoted: <!channel> see <https://evil.example|here> & *act* now"},
	}
}

// outcomeHeadlines is the headline for the promoter's (or a step's)
// `outcome`, target staging, of a Succeeded post-sync in integration
// (production for last-environment).
var outcomeHeadlines = map[outcome.Outcome]string{
	outcome.Updated:            "frontend v42 deployed to integration",
	outcome.RolledBack:         "frontend v42 deployed to integration",
	outcome.Promoted:           "frontend v42 deployed to integration and promoted to staging",
	outcome.Published:          "frontend v42 deployed to integration",
	outcome.Migrated:           "frontend v42 deployed to integration",
	outcome.Notified:           "frontend v42 deployed to integration",
	outcome.AlreadyThere:       "frontend v42 deployed to integration, not promoted to staging: staging already runs v42",
	outcome.NewerPresent:       "frontend v42 deployed to integration, not promoted to staging: staging runs a newer release",
	outcome.LastEnvironment:    "frontend v42 deployed to production (the last environment)",
	outcome.NotARelease:        "frontend v42 deployed to integration, not promoted to staging: v42 is not a release (branch deploys stay put)",
	outcome.Stale:              "frontend v42 deployed to integration, not promoted to staging: integration runs another tag now",
	outcome.AutoDeployDisabled: "frontend v42 deployed to integration, not promoted to staging: automatic deploys are off in integration",
	outcome.NotPromotable:      "frontend v42 deployed to integration, not promoted to staging: promote_deployment is false in integration",
	outcome.NoTagFile:          "frontend v42 deployed to integration, not promoted to staging: staging has no tag file for frontend",
	outcome.FrozenPastDeadline: "frontend v42 deployed to integration, not promoted to staging: a freeze on staging lasts past the deadline",
	outcome.HeldPastDeadline:   "frontend v42 deployed to integration, not promoted to staging: a hold on staging lasted past the deadline",
	outcome.RolledBackFrom:     "frontend v42 deployed to integration, not promoted to staging: staging was rolled back from v42",
	outcome.Held:               "frontend v42 deployed to integration, not promoted to staging: a hold covers staging now",
	outcome.Passed:             "frontend v42 deployed to integration",
	outcome.Stopped:            "frontend v42 deployed to integration",
	outcome.DryRun:             "frontend v42 deployed to integration",
	outcome.NothingToReport:    "frontend v42 deployed to integration",
	outcome.FreezeWindow:       "frontend v42 deployed to integration, not promoted to staging: a freeze covers staging now",
	outcome.Soaking:            "frontend v42 deployed to integration, not promoted to staging: still soaking in integration",
	outcome.InProgress:         "frontend v42 deployed to integration, not promoted to staging: the promotion was still in progress",
	outcome.ExpectationFailed:  "frontend v42 deployed to integration, not promoted to staging: the tag file was not as expected",
	outcome.ChecksFailed:       "frontend v42 deployed to integration, not promoted to staging: smoke checks failed",
	outcome.Failed:             "frontend v42 deployed to integration, not promoted to staging: the promotion failed",
	outcome.Invalid:            "frontend v42 deployed to integration, not promoted to staging: invalid input",
}

func outcomeCases(t *testing.T) []golden {
	var out []golden
	for _, o := range outcome.All() {
		want, ok := outcomeHeadlines[o]
		require.True(t, ok, "outcome %s has no headline here: decide what notify says for it", o)
		k := KindNotPromoted
		switch o {
		case outcome.Promoted:
			k = KindPromoted
		case outcome.Updated, outcome.RolledBack, outcome.Published, outcome.Migrated, outcome.Notified,
			outcome.LastEnvironment, outcome.Passed, outcome.Stopped, outcome.DryRun, outcome.NothingToReport:
			k = KindDeployed // not about a promotion, or none to do
		}
		o := o
		out = append(out, golden{"outcome-" + o.String(), func(c *Config) {
			c.Outcome, c.TargetEnv, c.Reason = o.String(), "staging", "the promoter's sentence for "+o.String()
			if o == outcome.LastEnvironment { // as the promoter says it: no target
				c.Env, c.TargetEnv = "production", ""
			}
		}, k, want})
	}
	return out
}

// Every status and every outcome gives the headline above, and the
// payload posted is the golden file's, byte for byte (go test -update
// rewrites them after a deliberate change), whether the reason came as
// text or base64.
func TestPayloads(t *testing.T) {
	for _, g := range append(statusCases(), outcomeCases(t)...) {
		for _, enc := range []string{"", EncodingBase64} {
			t.Run(g.name+"/reason-"+cmp.Or(enc, EncodingText), func(t *testing.T) {
				srv := slackserver.Start(t)
				cfg := base(srv)
				g.edit(&cfg)
				encodeReason(&cfg, enc)
				res, err := Run(context.Background(), cfg)
				require.NoError(t, err)
				assert.Equal(t, g.kind, res.Kind)
				assert.Equal(t, g.headline, res.Headline)
				assert.Equal(t, 1, res.Attempts)
				posts := srv.Posts()
				require.Len(t, posts, 1)
				assert.Equal(t, secretPath, posts[0].Path)

				var msg slack.Message
				require.NoError(t, json.Unmarshal(posts[0].Body, &msg))
				require.NotEmpty(t, msg.Blocks)
				assert.Equal(t, "header", msg.Blocks[0].Type)
				assert.Equal(t, kinds[g.kind].emoji+" "+g.headline, msg.Blocks[0].Text.Text)
				assert.Equal(t, slack.Escape(msg.Blocks[0].Text.Text), msg.Text, "the fallback is the headline")

				path := filepath.Join("testdata", g.name+".json")
				if *update && enc == "" {
					require.NoError(t, os.WriteFile(path, posts[0].Body, 0o644))
				}
				want, err := os.ReadFile(path)
				require.NoError(t, err, "no golden payload: go test ./internal/notify -run TestPayloads -update")
				assert.Equal(t, string(want), string(posts[0].Body))
			})
		}
	}
}

// Outside text reaches Slack as text: no mention, no link, no markup
// that was not ours in any mrkdwn text (the header is plain_text, which
// Slack shows as it is).
func TestOutsideTextIsEscaped(t *testing.T) {
	srv := slackserver.Start(t)
	cfg := base(srv)
	cfg.Status, cfg.FailedStep = "Failed", "smoke-test"
	cfg.Reason = "<!channel> see <https://evil.example|here> & more"
	_, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	var msg slack.Message
	require.NoError(t, json.Unmarshal(srv.Posts()[0].Body, &msg))
	mrkdwn := []string{msg.Text}
	for _, b := range msg.Blocks[1:] {
		if b.Text != nil {
			mrkdwn = append(mrkdwn, b.Text.Text)
		}
		for _, f := range append(b.Fields, b.Elements...) {
			mrkdwn = append(mrkdwn, f.Text)
		}
	}
	all := strings.Join(mrkdwn, "\n")
	assert.NotContains(t, all, "<!")
	assert.NotContains(t, all, "<https://evil")
	assert.Contains(t, all, "*Reason:* &lt;!channel&gt; see &lt;https://evil.example|here&gt; &amp; more")
}

func TestDryRunPrintsWhatWouldBePostedAndPostsNothing(t *testing.T) {
	srv := slackserver.Start(t)
	cfg := base(srv)
	cfg.Outcome, cfg.TargetEnv = "promoted", "staging"
	_, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	posted := srv.Posts()[0].Body

	var out bytes.Buffer
	cfg.DryRun, cfg.Stdout = true, &out
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	assert.Len(t, srv.Posts(), 1, "a dry run posts nothing")
	assert.Equal(t, string(posted), out.String())
	assert.True(t, res.DryRun)
	assert.Equal(t, 0, res.Attempts)
	assert.Equal(t, "dry run, nothing posted: frontend v42 deployed to integration and promoted to staging", res.Report().Reason)

	// a dry run needs no webhook URL
	cfg.WebhookURL = ""
	out.Reset()
	_, err = Run(context.Background(), cfg)
	require.NoError(t, err)
	assert.Equal(t, string(posted), out.String())
}

func TestReport(t *testing.T) {
	srv := slackserver.Start(t)
	res, err := Run(context.Background(), base(srv))
	require.NoError(t, err)
	r := res.Report()
	assert.Equal(t, outcome.Notified, r.Outcome)
	assert.Equal(t, "posted to Slack: frontend v42 deployed to integration", r.Reason)
	assert.Equal(t, []any{"app", "frontend", "env", "integration", "tag", "v42", "status", "Succeeded",
		"message", "deployed", "attempts", 1}, r.Attrs)
}

// The webhook URL is registered as a secret before anything can fail,
// with its path and its token, so a reply echoing either is masked too.
func TestWebhookURLIsRegisteredFirst(t *testing.T) {
	red := &redact.Redactor{}
	cfg := Config{WebhookURL: "https://hooks.example" + secretPath, App: "Not An App", Redactor: red}
	_, err := Run(context.Background(), cfg)
	require.Error(t, err)
	assert.Equal(t, exitcode.Invalid, exitcode.Code(err))
	for _, s := range []string{cfg.WebhookURL, secretPath, "xoxSECRETtoken1234567890"} {
		assert.Equal(t, "x "+redact.Mask+" y", red.String("x "+s+" y"), s)
	}
	assert.Equal(t, "/services/", red.String("/services/"), "short parts stay readable")
}

func TestWebhookURLFile(t *testing.T) {
	srv := slackserver.Start(t)
	file := filepath.Join(t.TempDir(), "url")
	require.NoError(t, os.WriteFile(file, []byte(srv.URL+secretPath+"\n"), 0o600))
	cfg := base(srv)
	cfg.WebhookURL, cfg.WebhookURLFile = "", file
	_, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	assert.Len(t, srv.Posts(), 1)
}

// The webhook URL, whatever a file holds, is either taken or refused with
// one of a few fixed lines that never quote it.
func FuzzWebhookURL(f *testing.F) {
	for _, s := range []string{"https://hooks.slack.com" + secretPath, "ftp://x/y", "http://", "https://a b/c",
		"http://[::1", "\x7f", "https://hooks.slack.com/a\nhttps://b/c", "  https://h/p  "} {
		f.Add(s)
	}
	fixed := []string{
		"the webhook URL does not parse as a URL", "the webhook URL is not an http(s) URL",
		"the webhook URL has no host", "the webhook URL holds white space (one URL, one line)",
		"no webhook URL: give --webhook-url-file or SLIPWAY_SLACK_WEBHOOK_URL",
	}
	f.Fuzz(func(t *testing.T, v string) {
		cfg := Config{WebhookURL: v, App: "frontend", Env: "integration", Tag: "v42", Status: "Succeeded",
			DryRun: false, Timeout: time.Nanosecond, MaxAttempts: 1}
		_, err := webhookURL(cfg, &redact.Redactor{})
		if err == nil {
			return
		}
		assert.Equal(t, exitcode.Invalid, exitcode.Code(err))
		assert.Contains(t, fixed, err.Error())
	})
}

// Whatever a reason holds, the payload is valid JSON whose texts hold no
// markup but ours, and whose header fits Slack's limit.
func FuzzReason(f *testing.F) {
	for _, s := range []string{"approval timed out", "<!channel>", "a & b", "<https://x|y>", strings.Repeat("é", 900), "\x00\n\t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, reason string) {
		if !utf8.ValidString(reason) {
			return // flags are UTF-8; JSON would replace the bytes
		}
		ev, err := read(Config{App: "frontend", Env: "integration", Tag: "v42", Status: "Succeeded", Promoted: "false", Reason: reason})
		require.NoError(t, err)
		payload, err := encode(ev.message(ev.kind()))
		require.NoError(t, err)
		var msg slack.Message
		require.NoError(t, json.Unmarshal(payload, &msg))
		assert.LessOrEqual(t, utf8.RuneCountInString(msg.Blocks[0].Text.Text), 150)
		texts := []string{msg.Text}
		if msg.Blocks[1].Text != nil { // no reason left once folded: no text
			texts = append(texts, msg.Blocks[1].Text.Text)
		}
		for _, text := range texts {
			assert.NotContains(t, text, "<", "mrkdwn markup from outside")
			assert.NotContains(t, text, ">")
			assert.NotContains(t, text, "\n")
		}
	})
}
