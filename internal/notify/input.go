package notify

import (
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/slipway-deploy/slipway/internal/chartsrepo"
	"github.com/slipway-deploy/slipway/internal/exitcode"
	"github.com/slipway-deploy/slipway/internal/oneline"
	"github.com/slipway-deploy/slipway/internal/outcome"
	"github.com/slipway-deploy/slipway/internal/redact"
	"github.com/slipway-deploy/slipway/internal/slack"
)

// Status is how the workflow (or the sync) ended: Argo's
// {{workflow.status}}, or SyncFailed from an Argo CD SyncFail hook.
type Status string

// The statuses --status accepts.
const (
	Succeeded  Status = "Succeeded"
	Failed     Status = "Failed"
	Error      Status = "Error"
	SyncFailed Status = "SyncFailed"
)

var statuses = []Status{Succeeded, Failed, Error, SyncFailed}

// Bounds on free text from flags: one line each, cut past these.
const (
	maxReason = 500
	maxStep   = 100
)

var (
	channelRE = regexp.MustCompile(`^[#@]?[A-Za-z0-9][A-Za-z0-9._-]{0,79}$`)
	// stepRE fits Argo's node names: smoke-test, post-sync[0].promote(1).
	stepRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 ._:()\[\]/-]{0,99}$`)
)

// event is what happened, read and checked from Config.
type event struct {
	app, env, tag, previousTag string
	status                     Status
	outcome                    outcome.Outcome // 0: not given
	promoted                   *bool           // nil: not given
	targetEnv, reason          string
	failedStep                 string
	workflowURL, compareURL    string
	argoCDURL, channel         string
}

// read checks every input and returns the event, or an exit-2 error of
// one line naming the first problem.
func read(cfg Config) (event, error) {
	ev := event{app: cfg.App, env: cfg.Env, tag: cfg.Tag, previousTag: cfg.PreviousTag, targetEnv: cfg.TargetEnv,
		channel: cfg.Channel}
	checks := []func() error{
		func() error { return reportFlags(cfg) },
		func() error { return flagErr("app", cfg.App, chartsrepo.ValidateApp) },
		func() error { return flagErr("env", cfg.Env, chartsrepo.ValidateEnvName) },
		func() error { return flagErr("tag", cfg.Tag, chartsrepo.ValidateTag) },
		func() error { return optional("previous-tag", cfg.PreviousTag, chartsrepo.ValidateTag) },
		func() error { return optional("target-env", cfg.TargetEnv, chartsrepo.ValidateEnvName) },
		func() (err error) { ev.status, err = readStatus(cfg.Status); return err },
		func() (err error) { ev.outcome, err = readOutcome(cfg.Outcome); return err },
		func() (err error) { ev.promoted, err = readPromoted(cfg.Promoted); return err },
		func() (err error) { ev.failedStep, err = readStep(cfg.FailedStep); return err },
		func() (err error) { ev.reason, err = readReason(cfg); return err },
		func() (err error) { ev.workflowURL, err = readURL("workflow-url", cfg.WorkflowURL); return err },
		func() (err error) { ev.compareURL, err = readURL("compare-url", cfg.CompareURL); return err },
		func() (err error) { ev.argoCDURL, err = readURL("argocd-url", cfg.ArgoCDURL); return err },
		func() error { return optional("channel", cfg.Channel, checkChannel) },
		ev.consistent,
	}
	for _, check := range checks {
		if err := check(); err != nil {
			return event{}, exitcode.AsInvalid(err)
		}
	}
	return ev, nil
}

func flagErr(flag, v string, check func(string) error) error {
	if v == "" {
		return fmt.Errorf("--%s is required", flag)
	}
	if err := check(v); err != nil {
		return fmt.Errorf("--%s: %w", flag, err)
	}
	return nil
}

func optional(flag, v string, check func(string) error) error {
	if v == "" {
		return nil
	}
	return flagErr(flag, v, check)
}

// readReason reads --reason, decoded as --reason-encoding says (base64:
// how a workflow passes it past Argo's second substitution), and cleans
// it: valid UTF-8, no control characters or bidirectional overrides, one
// line, at most maxReason characters.
func readReason(cfg Config) (string, error) {
	if err := checkEncoding("reason-encoding", cfg.ReasonEncoding); err != nil {
		return "", err
	}
	v := cfg.Reason
	if cfg.ReasonEncoding == EncodingBase64 {
		data, err := decodeBase64([]byte(v), false)
		if err != nil {
			return "", fmt.Errorf("--reason is not base64 (--reason-encoding %s): %w", EncodingBase64, err)
		}
		v = string(data)
	}
	v = strings.Map(func(r rune) rune {
		if (unicode.IsControl(r) && !unicode.IsSpace(r)) || unicode.Is(unicode.Bidi_Control, r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(v, "\uFFFD"))
	return slack.Shorten(oneline.Fold(v), maxReason), nil
}

func readStatus(v string) (Status, error) {
	if v == "" {
		return "", fmt.Errorf("--status is required: one of %s", statusList())
	}
	for _, s := range statuses {
		if strings.EqualFold(v, string(s)) {
			return s, nil
		}
	}
	return "", fmt.Errorf("--status %q: want one of %s", v, statusList())
}

func statusList() string {
	names := make([]string, len(statuses))
	for i, s := range statuses {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

func readOutcome(v string) (outcome.Outcome, error) {
	if v == "" {
		return 0, nil
	}
	o, err := outcome.Parse(v)
	if err != nil {
		return 0, fmt.Errorf("--outcome: %w", err)
	}
	return o, nil
}

// readPromoted reads the promoter's `promoted` output: true, false, or
// empty when the promoter did not run.
func readPromoted(v string) (*bool, error) {
	if v == "" {
		return nil, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return nil, fmt.Errorf("--promoted %q: want true, false or nothing", v)
	}
	return &b, nil
}

func readStep(v string) (string, error) {
	if v != "" && !stepRE.MatchString(v) {
		return "", fmt.Errorf("--failed-step %q: want a step's name (letters, digits, space and ._:()[]/-, at most %d)", v, maxStep)
	}
	return v, nil
}

// readURL checks a link: an absolute http(s) URL, nothing Slack's link
// markup would break on.
func readURL(flag, v string) (string, error) {
	if v == "" {
		return "", nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		strings.ContainsFunc(v, unicode.IsSpace) {
		return "", fmt.Errorf("--%s %q: want an http(s) URL", flag, v)
	}
	return v, nil
}

func checkChannel(v string) error {
	if !channelRE.MatchString(v) {
		return fmt.Errorf("%q is not a channel: want #name, @user or an ID", v)
	}
	return nil
}

// consistent refuses flags that contradict each other: the message would
// say something that did not happen.
func (ev *event) consistent() error {
	switch {
	case ev.promoted != nil && ev.outcome.Valid() && *ev.promoted != (ev.outcome == outcome.Promoted):
		return fmt.Errorf("--promoted %t contradicts --outcome %s", *ev.promoted, ev.outcome)
	case ev.status == SyncFailed && (ev.promoted != nil || ev.outcome.Valid() || ev.targetEnv != ""):
		return fmt.Errorf("--status SyncFailed: a failed sync runs no promotion (--promoted, --outcome, --target-env)")
	case ev.failedStep != "" && ev.status != Failed && ev.status != Error:
		return fmt.Errorf("--failed-step is for --status Failed or Error, not %s", ev.status)
	case ev.targetEnv != "" && ev.targetEnv == ev.env:
		return fmt.Errorf("--target-env %s is --env itself", ev.targetEnv)
	}
	return nil
}

// WebhookEnv is the environment variable that may hold the webhook URL
// (there is no flag: a command line is visible to every process).
const WebhookEnv = "SLIPWAY_SLACK_WEBHOOK_URL"

// webhookURL finds the webhook URL, registers it and its path with red as
// secrets, and checks it. No error holds it.
func webhookURL(cfg Config, red *redact.Redactor) (string, error) {
	v := cfg.WebhookURL
	switch {
	case cfg.WebhookURLFile != "" && v != "":
		return "", exitcode.Invalidf("give the webhook URL by --webhook-url-file or %s, not both", WebhookEnv)
	case cfg.WebhookURLFile != "":
		data, err := os.ReadFile(cfg.WebhookURLFile)
		if err != nil {
			return "", exitcode.Invalidf("--webhook-url-file: %w", err)
		}
		v = string(data)
	}
	v = strings.TrimSpace(v)
	if v == "" {
		return "", nil // Run says so after the other inputs: a dry run needs none
	}
	secret(red, v)
	if err := checkWebhookURL(v); err != nil {
		return "", exitcode.AsInvalid(err)
	}
	return v, nil
}

// secret registers a webhook URL with red: the URL, its path and query,
// and its last path segment (Slack's token), each when long enough not to
// mask ordinary words ("/services/" stays readable).
func secret(red *redact.Redactor, webhook string) {
	red.Add(webhook)
	u, err := url.Parse(webhook)
	if err != nil {
		return
	}
	last := u.Path[strings.LastIndex(u.Path, "/")+1:]
	for _, part := range []string{u.EscapedPath(), u.Path, u.RawQuery, last} {
		if len(strings.Trim(part, "/")) >= minSecret {
			red.Add(part)
		}
	}
}

// minSecret is the length from which a part of the URL is masked alone.
const minSecret = 16

// checkWebhookURL checks a webhook URL. Its error never holds the URL.
func checkWebhookURL(v string) error {
	u, err := url.Parse(v)
	switch {
	case err != nil:
		return fmt.Errorf("the webhook URL does not parse as a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("the webhook URL is not an http(s) URL")
	case u.Host == "":
		return fmt.Errorf("the webhook URL has no host")
	case strings.ContainsFunc(v, unicode.IsSpace):
		return fmt.Errorf("the webhook URL holds white space (one URL, one line)")
	}
	return nil
}
