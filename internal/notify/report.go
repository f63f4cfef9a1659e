package notify

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/slipway-deploy/slipway/internal/exitcode"
	"github.com/slipway-deploy/slipway/internal/oneline"
	"github.com/slipway-deploy/slipway/internal/slack"
)

// A report is text another step wrote (`promoter plan --output markdown`:
// Slack's mrkdwn), posted under a title instead of a deployment's status.
// It is outside text: escaped, cleaned of control characters, and bounded.
const (
	// maxReportFile is what is read of a report (decoded); the rest is left
	// out, and the message says so.
	maxReportFile = 1 << 20
	// maxReportSections bounds the sections a report fills, each at most
	// slack.MaxSection characters of whole lines; the message says how
	// many lines it shows past that.
	maxReportSections = 10
	// maxTitle is Slack's limit on a header.
	maxTitle = 150
)

// The encodings of --report-encoding and --reason-encoding. Base64 is how a
// workflow passes outside text on: Argo substitutes {{...}} in a pod's spec
// again when it makes the pod, so the text itself must hold none.
const (
	EncodingText   = "text"
	EncodingBase64 = "base64"
)

// report is a report read and checked from Config.
type report struct {
	title, reason        string
	lines                []string // cleaned, not escaped; no blank line at either end
	cut                  bool     // the report was longer than maxReportFile
	workflowURL, channel string
}

// readReport checks a report's flags and reads its file, or returns an
// exit-2 error of one line naming the first problem.
func readReport(cfg Config) (report, error) {
	r := report{channel: cfg.Channel}
	checks := []func() error{
		func() error { return deploymentFlags(cfg) },
		func() (err error) { r.reason, err = readReason(cfg); return err },
		func() (err error) { r.title, err = readTitle(cfg.Title); return err },
		func() error { return checkEncoding("report-encoding", cfg.ReportEncoding) },
		func() (err error) { r.workflowURL, err = readURL("workflow-url", cfg.WorkflowURL); return err },
		func() error { return optional("channel", cfg.Channel, checkChannel) },
		func() (err error) {
			r.lines, r.cut, err = readReportFile(cfg.ReportFile, cfg.ReportEncoding)
			return err
		},
	}
	for _, check := range checks {
		if err := check(); err != nil {
			return report{}, exitcode.AsInvalid(err)
		}
	}
	return r, nil
}

// deploymentFlags refuses a deployment's facts in a report: the message
// would not show them.
func deploymentFlags(cfg Config) error {
	for _, f := range []struct{ flag, v string }{
		{"app", cfg.App}, {"env", cfg.Env}, {"tag", cfg.Tag}, {"previous-tag", cfg.PreviousTag}, {"status", cfg.Status},
		{"promoted", cfg.Promoted}, {"outcome", cfg.Outcome}, {"target-env", cfg.TargetEnv}, {"failed-step", cfg.FailedStep},
		{"compare-url", cfg.CompareURL}, {"argocd-url", cfg.ArgoCDURL},
	} {
		if f.v != "" {
			return fmt.Errorf("--%s is a deployment's, not a report's (--report-file)", f.flag)
		}
	}
	return nil
}

// reportFlags refuses a report's flags in a deployment's message.
func reportFlags(cfg Config) error {
	switch {
	case cfg.Title != "":
		return fmt.Errorf("--title is a report's headline: give --report-file too")
	case cfg.ReportEncoding != "":
		return fmt.Errorf("--report-encoding is a report's: give --report-file too")
	case cfg.PostEmpty:
		return fmt.Errorf("--post-empty is a report's: give --report-file too")
	}
	return nil
}

func readTitle(v string) (string, error) {
	t := oneline.Fold(v)
	if t == "" {
		return "", fmt.Errorf("--title is required with --report-file: the message's headline")
	}
	if n := utf8.RuneCountInString(t); n > maxTitle {
		return "", fmt.Errorf("--title: %d characters, a Slack header takes at most %d", n, maxTitle)
	}
	return t, nil
}

// checkEncoding checks the encoding flag --flag's value.
func checkEncoding(flag, v string) error {
	switch v {
	case "", EncodingText, EncodingBase64:
		return nil
	}
	return fmt.Errorf("--%s %q: want %s or %s", flag, v, EncodingText, EncodingBase64)
}

// readReportFile reads at most maxReportFile of the report (decoded), and
// its lines, cleaned; cut says the file held more.
func readReportFile(path, encoding string) (lines []string, cut bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false, fmt.Errorf("--report-file: %w", err)
	}
	defer f.Close()
	limit := maxReportFile
	if encoding == EncodingBase64 {
		limit = base64.StdEncoding.EncodedLen(maxReportFile)
	}
	data, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, false, fmt.Errorf("--report-file: %w", err)
	}
	if cut = len(data) > limit; cut {
		data = data[:limit]
	}
	if encoding == EncodingBase64 {
		if data, err = decodeBase64(data, cut); err != nil {
			return nil, false, fmt.Errorf("--report-file is not base64 (--report-encoding %s): %w", EncodingBase64, err)
		}
	}
	return cleanLines(string(data), cut), cut, nil
}

// decodeBase64 decodes standard base64, white space ignored; a cut input
// is decoded up to its last whole quantum.
func decodeBase64(data []byte, cut bool) ([]byte, error) {
	data = bytes.Join(bytes.Fields(data), nil)
	if cut {
		data = data[:len(data)-len(data)%4]
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(data)))
	n, err := base64.StdEncoding.Decode(out, data)
	if err != nil {
		return nil, err
	}
	return out[:n], nil
}

// cleanLines splits a report into lines: valid UTF-8, without control
// characters (tabs kept) or bidirectional overrides, trailing white space
// or blank lines at either end. The last line of a cut report may be
// partial: it is left out.
func cleanLines(s string, cut bool) []string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(s)
	s = strings.Map(func(r rune) rune {
		if r != '\n' && r != '\t' && (unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)) {
			return -1
		}
		return r
	}, s)
	lines := strings.Split(s, "\n")
	if cut && len(lines) > 1 {
		lines = lines[:len(lines)-1]
	}
	for i, l := range lines {
		lines[i] = strings.TrimRightFunc(l, unicode.IsSpace)
	}
	for len(lines) > 0 && lines[0] == "" {
		lines = lines[1:]
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// message is the report's Block Kit message: the title as the header, the
// reason, the report in sections of whole lines (what is left out said
// below them), and the workflow's link. shown is the lines it holds.
func (r report) message() (msg slack.Message, shown int) {
	blocks := []slack.Block{slack.Header(r.title)}
	if r.reason != "" {
		blocks = append(blocks, slack.Section(slack.Escape(r.reason)))
	}
	texts, shown := sections(r.lines, maxReportSections)
	for _, t := range texts {
		blocks = append(blocks, slack.Section(t))
	}
	if len(r.lines) == 0 {
		blocks = append(blocks, slack.Section("_The report is empty._"))
	}
	var foot []string
	switch {
	case r.cut:
		foot = append(foot, fmt.Sprintf("… %d of the first %d lines shown: the report is larger than %d KiB", shown, len(r.lines), maxReportFile>>10))
	case shown < len(r.lines):
		foot = append(foot, fmt.Sprintf("… %d of %d lines shown", shown, len(r.lines)))
	}
	if r.workflowURL != "" {
		foot = append(foot, slack.Link(r.workflowURL, "Workflow"))
	}
	if len(foot) > 0 {
		blocks = append(blocks, slack.Context(foot...))
	}
	return slack.Message{Channel: r.channel, Text: slack.Escape(r.title), Blocks: blocks}, shown
}

// sections escapes lines into at most most section texts of whole lines,
// each at most slack.MaxSection characters (a longer line is cut), and
// says how many lines they hold.
func sections(lines []string, most int) (texts []string, shown int) {
	var cur strings.Builder
	n := 0
	for _, l := range lines {
		e := slack.EscapeShort(l, slack.MaxSection)
		c := utf8.RuneCountInString(e)
		if n > 0 && n+1+c > slack.MaxSection {
			texts = append(texts, strings.TrimRight(cur.String(), "\n"))
			if len(texts) == most {
				return texts, shown
			}
			cur.Reset()
			n = 0
		}
		if n > 0 {
			cur.WriteByte('\n')
			n++
		}
		cur.WriteString(e)
		n += c
		shown++
	}
	if n > 0 {
		texts = append(texts, strings.TrimRight(cur.String(), "\n"))
	}
	return texts, shown
}
