package notify

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
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
	"github.com/slipway-deploy/slipway/internal/slack"
	"github.com/slipway-deploy/slipway/internal/testsupport/slackserver"
)

// planReport is `promoter plan --output markdown` of the promoter's golden
// repo (a copy of internal/promoterserver/testdata/plan.markdown).
func planReport(t *testing.T) string {
	b, err := os.ReadFile(filepath.Join("testdata", "plan.md"))
	require.NoError(t, err)
	return string(b)
}

// reportConfig is the promoter-plan workflow's notify of drift, the
// report in a file holding text.
func reportConfig(t *testing.T, srv *slackserver.Server, text string) Config {
	file := filepath.Join(t.TempDir(), "report")
	require.NoError(t, os.WriteFile(file, []byte(text), 0o644))
	return Config{WebhookURL: srv.URL + secretPath, ReportFile: file, Title: ":warning: Release plan: drift",
		WorkflowURL: "https://argo.example/workflows/apps/promoter-plan-1764072000", Channel: "#releases",
		MaxAttempts: 1, RetryWait: time.Millisecond}
}

// hostile is outside text as a hold's reason or a git error could bring it.
const hostile = "- `held-app` <!channel> see <https://evil.example|here> & *act* {{workflow.name}}\r\n" +
	"bell\a nul\x00 \u202eevil\u202c bad utf-8 \xff\xfe end\t \n\n\n"

// The payloads posted for reports, byte for byte (go test -update
// rewrites them after a deliberate change), the reason as text or base64.
func TestReportPayloads(t *testing.T) {
	long := func() string {
		var b strings.Builder
		for i := 1; i <= 2000; i++ {
			fmt.Fprintf(&b, "- `app-%04d` staging → production: would promote v%d\n", i, i)
		}
		return b.String()
	}
	for _, tc := range []struct {
		name  string
		text  string
		edit  func(*Config)
		lines int
		shown int
	}{
		{"report-plan", planReport(t), nil, 27, 27},
		{"report-long", long(), nil, 2000, 0}, // shown: TestLongReportIsSplitAndCounted
		{"report-escaped", hostile + strings.Repeat("é&", 2000) + "\nlast line\n", func(c *Config) {
			c.Reason = "<!here> a\nreason"
		}, 6, 6},
		{"report-empty-posted", " \n\t\n", func(c *Config) {
			c.Title, c.PostEmpty = ":x: The release plan did not run to its end (Failed)", true
			c.Reason = "promoter plan: Error (exit code 2)"
		}, 0, 0},
	} {
		for _, enc := range []string{"", EncodingBase64} {
			t.Run(tc.name+"/reason-"+cmp.Or(enc, EncodingText), func(t *testing.T) {
				srv := slackserver.Start(t)
				cfg := reportConfig(t, srv, tc.text)
				if tc.edit != nil {
					tc.edit(&cfg)
				}
				encodeReason(&cfg, enc)
				res, err := Run(context.Background(), cfg)
				require.NoError(t, err)
				assert.Equal(t, KindReport, res.Kind)
				assert.Equal(t, cfg.Title, res.Headline)
				assert.Equal(t, tc.lines, res.Lines)
				if tc.shown > 0 || tc.lines == 0 {
					assert.Equal(t, tc.shown, res.Shown)
				}
				assert.Equal(t, outcome.Notified, res.Report().Outcome)
				posts := srv.Posts()
				require.Len(t, posts, 1)
				body := posts[0].Body
				assertReportMessage(t, body)

				path := filepath.Join("testdata", tc.name+".json")
				if *update && enc == "" {
					require.NoError(t, os.WriteFile(path, body, 0o644))
				}
				want, err := os.ReadFile(path)
				require.NoError(t, err, "no golden payload: go test ./internal/notify -run TestReportPayloads -update")
				assert.Equal(t, string(want), string(body))
			})
		}
	}
}

// assertReportMessage checks what every report's message keeps to: valid
// JSON within Slack's limits, the title as header and fallback, and no
// markup but ours in any mrkdwn text (the report's sections included).
func assertReportMessage(t *testing.T, body []byte) slack.Message {
	t.Helper()
	var msg slack.Message
	require.NoError(t, json.Unmarshal(body, &msg), "%s", body)
	require.True(t, utf8.Valid(body))
	require.NotEmpty(t, msg.Blocks)
	assert.LessOrEqual(t, len(msg.Blocks), slack.MaxBlocks)
	assert.Equal(t, "header", msg.Blocks[0].Type)
	assert.LessOrEqual(t, utf8.RuneCountInString(msg.Blocks[0].Text.Text), 150)
	assert.Equal(t, slack.Escape(msg.Blocks[0].Text.Text), msg.Text, "the fallback is the title")
	for _, b := range msg.Blocks[1:] {
		if b.Type == "section" {
			require.NotNil(t, b.Text)
			assert.NotEmpty(t, strings.TrimSpace(b.Text.Text), "Slack refuses an empty section")
			assert.LessOrEqual(t, utf8.RuneCountInString(b.Text.Text), slack.MaxSection)
			assert.NotContains(t, b.Text.Text, "<", "mrkdwn markup from outside")
			assert.NotContains(t, b.Text.Text, ">")
		}
	}
	return msg
}

// The report's sections hold its lines, whole and in order, as many as
// fit; what is left out is counted below them.
func TestLongReportIsSplitAndCounted(t *testing.T) {
	var lines []string
	for i := 1; i <= 2000; i++ {
		lines = append(lines, fmt.Sprintf("- `app-%04d` staging → production: would promote v%d", i, i))
	}
	srv := slackserver.Start(t)
	res, err := Run(context.Background(), reportConfig(t, srv, strings.Join(lines, "\n")))
	require.NoError(t, err)
	msg := assertReportMessage(t, srv.Posts()[0].Body)
	var shown []string
	for _, b := range msg.Blocks[1 : len(msg.Blocks)-1] {
		require.Equal(t, "section", b.Type)
		shown = append(shown, strings.Split(b.Text.Text, "\n")...)
		assert.Greater(t, utf8.RuneCountInString(b.Text.Text), slack.MaxSection-60, "a section is filled before the next")
	}
	assert.Len(t, msg.Blocks, 1+maxReportSections+1, "header, sections, the count and the link")
	assert.Equal(t, lines[:len(shown)], shown)
	assert.Equal(t, len(shown), res.Shown)
	assert.Equal(t, 2000, res.Lines)
	foot := msg.Blocks[len(msg.Blocks)-1]
	assert.Equal(t, fmt.Sprintf("… %d of 2000 lines shown", len(shown)), foot.Elements[0].Text)
	assert.Equal(t, "<https://argo.example/workflows/apps/promoter-plan-1764072000|Workflow>", foot.Elements[1].Text)
}

// A report past maxReportFile is read up to it: its last (partial) line
// left out, and the message says the report is larger. Base64 alike.
func TestReportLargerThanTheLimitIsCut(t *testing.T) {
	line := strings.Repeat("x", 99) + "\n"
	text := strings.Repeat(line, maxReportFile/len(line)+50)
	for _, enc := range []string{"", EncodingBase64} {
		t.Run("encoding "+enc, func(t *testing.T) {
			srv := slackserver.Start(t)
			data := text
			if enc == EncodingBase64 {
				data = base64.StdEncoding.EncodeToString([]byte(text))
			}
			cfg := reportConfig(t, srv, data)
			cfg.ReportEncoding = enc
			res, err := Run(context.Background(), cfg)
			require.NoError(t, err)
			assert.Equal(t, maxReportFile/len(line), res.Lines, "whole lines of the first MiB")
			msg := assertReportMessage(t, srv.Posts()[0].Body)
			foot := msg.Blocks[len(msg.Blocks)-1]
			assert.Equal(t, fmt.Sprintf("… %d of the first %d lines shown: the report is larger than 1024 KiB", res.Shown, res.Lines), foot.Elements[0].Text)
		})
	}
}

// Base64 (how the promoter-plan workflow passes the plan on, past Argo's
// {{...}} substitution) posts what the text itself would.
func TestBase64ReportPostsTheText(t *testing.T) {
	srv := slackserver.Start(t)
	text := planReport(t) + hostile
	_, err := Run(context.Background(), reportConfig(t, srv, text))
	require.NoError(t, err)
	cfg := reportConfig(t, srv, base64.StdEncoding.EncodeToString([]byte(text)))
	cfg.ReportEncoding = EncodingBase64
	_, err = Run(context.Background(), cfg)
	require.NoError(t, err)
	posts := srv.Posts()
	require.Len(t, posts, 2)
	assert.Equal(t, string(posts[0].Body), string(posts[1].Body))
	assert.Contains(t, string(posts[1].Body), "{{workflow.name}}", "the text arrives as written")
}

// An empty report (nothing, or white space only) posts nothing, exit 0,
// outcome nothing-to-report, unless --post-empty; a dry run prints
// nothing either. A missing webhook URL is still refused.
func TestEmptyReportPostsNothing(t *testing.T) {
	for _, text := range []string{"", "\n", " \t\r\n\n", base64.StdEncoding.EncodeToString([]byte("\n\n"))} {
		srv := slackserver.Start(t)
		cfg := reportConfig(t, srv, text)
		if text != "" && strings.TrimSpace(text) == text {
			cfg.ReportEncoding = EncodingBase64
		}
		res, err := Run(context.Background(), cfg)
		require.NoError(t, err, "%q", text)
		assert.Empty(t, srv.Posts(), "%q", text)
		assert.True(t, res.Skipped)
		r := res.Report()
		assert.Equal(t, outcome.NothingToReport, r.Outcome)
		assert.Equal(t, "nothing posted: the report is empty", r.Reason)
		assert.Equal(t, 0, r.Outcome.ExitCode())

		var out bytes.Buffer
		cfg.DryRun, cfg.Stdout = true, &out
		res, err = Run(context.Background(), cfg)
		require.NoError(t, err)
		assert.Empty(t, out.String(), "a dry run of nothing prints nothing")
		assert.Equal(t, outcome.NothingToReport, res.Report().Outcome)

		cfg.DryRun, cfg.WebhookURL = false, ""
		_, err = Run(context.Background(), cfg)
		assert.Equal(t, exitcode.Invalid, exitcode.Code(err), "%v", err)
	}
}

func TestReportDryRunPrintsWhatWouldBePosted(t *testing.T) {
	srv := slackserver.Start(t)
	cfg := reportConfig(t, srv, planReport(t))
	_, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	var out bytes.Buffer
	cfg.DryRun, cfg.Stdout, cfg.WebhookURL = true, &out, ""
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	assert.Len(t, srv.Posts(), 1, "a dry run posts nothing")
	assert.Equal(t, string(srv.Posts()[0].Body), out.String())
	r := res.Report()
	assert.Equal(t, outcome.Notified, r.Outcome)
	assert.Equal(t, "dry run, nothing posted: :warning: Release plan: drift", r.Reason)
	assert.Equal(t, []any{"title", ":warning: Release plan: drift", "message", "report", "lines", 27, "shown", 27, "attempts", 0}, r.Attrs)
}

// A report's flags are checked before anything is posted: exit 2, one
// line naming the problem. A deployment's facts are not a report's, and
// a report's flags need --report-file.
func TestReportBadInput(t *testing.T) {
	srv := slackserver.Start(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		edit func(*Config)
		line string
	}{
		{"no title", func(c *Config) { c.Title = " \n" }, "--title is required with --report-file: the message's headline"},
		{"a title too long for a header", func(c *Config) { c.Title = strings.Repeat("x", 151) },
			"--title: 151 characters, a Slack header takes at most 150"},
		{"no such file", func(c *Config) { c.ReportFile = filepath.Join(dir, "nope") },
			"--report-file: open " + filepath.Join(dir, "nope") + ": no such file or directory"},
		{"a folder", func(c *Config) { c.ReportFile = dir }, "--report-file: read " + dir + ": is a directory"},
		{"an unknown encoding", func(c *Config) { c.ReportEncoding = "gzip" }, `--report-encoding "gzip": want text or base64`},
		{"not base64", func(c *Config) { c.ReportEncoding = EncodingBase64 },
			"--report-file is not base64 (--report-encoding base64): illegal base64 data at input byte 0"},
		{"a deployment's app", func(c *Config) { c.App = "frontend" }, "--app is a deployment's, not a report's (--report-file)"},
		{"a deployment's status", func(c *Config) { c.Status = "Failed" }, "--status is a deployment's, not a report's (--report-file)"},
		{"a link that is not http", func(c *Config) { c.WorkflowURL = "javascript:alert(1)" }, `--workflow-url "javascript:alert(1)": want an http(s) URL`},
		{"a bad channel", func(c *Config) { c.Channel = "<!channel>" }, `--channel: "<!channel>" is not a channel: want #name, @user or an ID`},
		{"a title without a report", func(c *Config) {
			c.ReportFile, c.App, c.Env, c.Tag, c.Status = "", "frontend", "integration", "v42", "Succeeded"
		}, "--title is a report's headline: give --report-file too"},
		{"post-empty without a report", func(c *Config) {
			c.ReportFile, c.Title, c.PostEmpty, c.App, c.Env, c.Tag, c.Status = "", "", true, "frontend", "integration", "v42", "Succeeded"
		}, "--post-empty is a report's: give --report-file too"},
		{"an encoding without a report", func(c *Config) {
			c.ReportFile, c.Title, c.ReportEncoding, c.App, c.Env, c.Tag, c.Status = "", "", "base64", "frontend", "integration", "v42", "Succeeded"
		}, "--report-encoding is a report's: give --report-file too"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := reportConfig(t, srv, "*Release plan*: `main` at `abc1234`\n")
			tc.edit(&cfg)
			_, err := Run(context.Background(), cfg)
			require.Error(t, err)
			assert.Equal(t, exitcode.Invalid, exitcode.Code(err))
			assert.Equal(t, tc.line, err.Error())
			assert.NotContains(t, err.Error(), "\n")
		})
	}
	assert.Empty(t, srv.Posts())
}

// Whatever a report's file holds, the message is valid JSON within
// Slack's limits, with no markup from outside.
func FuzzReport(f *testing.F) {
	for _, s := range []string{"", "*Release plan*\n- `a` x → y\n", hostile, strings.Repeat("&<>", 1200), "\xff\xfe\x00", strings.Repeat("line\n", 900)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		lines := cleanLines(text, false)
		r := report{title: "Release plan", lines: lines}
		msg, shown := r.message()
		assert.LessOrEqual(t, shown, len(lines))
		body, err := encode(msg)
		require.NoError(t, err)
		got := assertReportMessage(t, body)
		if shown == len(lines) && len(lines) > 0 {
			assert.Equal(t, "section", got.Blocks[len(got.Blocks)-1].Type, "nothing left out, nothing said")
		}
	})
}
