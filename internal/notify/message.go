package notify

import (
	"bytes"
	"encoding/json"

	"github.com/slipway-deploy/slipway/internal/outcome"
	"github.com/slipway-deploy/slipway/internal/slack"
)

// Kind is what a message says happened, at a glance.
type Kind uint8

// The kinds of message.
const (
	_               Kind = iota
	KindDeployed         // deployed; promotion not asked about, or none to do
	KindPromoted         // deployed and promoted to the next environment
	KindNotPromoted      // deployed, not promoted, and why
	KindFailed           // the workflow failed or errored, at a step if known
	KindSyncFailed       // Argo CD's sync failed (SyncFail hook)
	KindReport           // a report, under its title
)

var kinds = [...]struct{ name, emoji string }{
	KindDeployed:    {"deployed", ":white_check_mark:"},
	KindPromoted:    {"promoted", ":rocket:"},
	KindNotPromoted: {"not-promoted", ":large_yellow_circle:"},
	KindFailed:      {"failed", ":x:"},
	KindSyncFailed:  {"sync-failed", ":rotating_light:"},
	KindReport:      {"report", ""}, // the title says it
}

func (k Kind) String() string { return kinds[k].name }

func (ev event) kind() Kind {
	switch {
	case ev.status == SyncFailed:
		return KindSyncFailed
	case ev.status != Succeeded:
		return KindFailed
	case ev.outcome == outcome.Promoted || (ev.promoted != nil && *ev.promoted):
		return KindPromoted
	case ev.outcome.Valid() && ev.whyNot() != "":
		return KindNotPromoted
	case !ev.outcome.Valid() && ev.promoted != nil:
		return KindNotPromoted
	}
	return KindDeployed
}

// whyNot says, from the outcome alone, why the release was not promoted;
// "" for an outcome that is not a reason (updated, passed, ...).
func (ev event) whyNot() string {
	target := ev.targetEnv
	if target == "" {
		target = "the next environment"
	}
	switch ev.outcome {
	case outcome.AlreadyThere:
		return target + " already runs " + ev.tag
	case outcome.NewerPresent:
		return target + " runs a newer release"
	case outcome.NotARelease:
		return ev.tag + " is not a release (branch deploys stay put)"
	case outcome.Stale:
		return ev.env + " runs another tag now"
	case outcome.AutoDeployDisabled:
		return "automatic deploys are off in " + ev.env
	case outcome.NotPromotable:
		return "promote_deployment is false in " + ev.env
	case outcome.NoTagFile:
		return target + " has no tag file for " + ev.app
	case outcome.FrozenPastDeadline:
		return "a freeze on " + target + " lasts past the deadline"
	case outcome.FreezeWindow:
		return "a freeze covers " + target + " now"
	case outcome.Held:
		return "a hold covers " + target + " now"
	case outcome.HeldPastDeadline:
		return "a hold on " + target + " lasted past the deadline"
	case outcome.RolledBackFrom:
		return target + " was rolled back from " + ev.tag
	case outcome.Soaking:
		return "still soaking in " + ev.env
	case outcome.InProgress:
		return "the promotion was still in progress"
	case outcome.ExpectationFailed:
		return "the tag file was not as expected"
	case outcome.ChecksFailed:
		return "smoke checks failed"
	case outcome.Failed:
		return "the promotion failed"
	case outcome.Invalid:
		return "invalid input"
	}
	return ""
}

// headline is the message's first line, without its emoji.
func (ev event) headline(k Kind) string {
	who := ev.app + " " + ev.tag
	to := ""
	if ev.targetEnv != "" {
		to = " to " + ev.targetEnv
	}
	switch k {
	case KindSyncFailed:
		return who + " sync failed in " + ev.env
	case KindFailed:
		s := who + " failed in " + ev.env
		if ev.failedStep != "" {
			s += " at " + ev.failedStep
		}
		if ev.status == Error {
			s += " (workflow error)"
		}
		return withWhy(s, ev.failureWhy())
	case KindPromoted:
		return who + " deployed to " + ev.env + " and promoted" + to
	case KindNotPromoted:
		why := ev.whyNot()
		if !ev.outcome.Valid() {
			why = ev.reason
		}
		return withWhy(who+" deployed to "+ev.env+", not promoted"+to, why)
	}
	if ev.outcome == outcome.LastEnvironment {
		return who + " deployed to " + ev.env + " (the last environment)"
	}
	return who + " deployed to " + ev.env
}

// failureWhy is what a failure outcome adds to a failure's headline
// (nothing for plain "failed": the headline says it).
func (ev event) failureWhy() string {
	if ev.outcome == outcome.Failed || ev.outcome.ExitCode() == 0 || ev.outcome.Waiting() {
		return ""
	}
	return ev.whyNot()
}

func withWhy(s, why string) string {
	if why == "" {
		return s
	}
	return s + ": " + why
}

// message is the Block Kit message for ev: a header with the headline,
// a section with the facts (and the reason given, if any), and the links.
func (ev event) message(k Kind) slack.Message {
	head := kinds[k].emoji + " " + ev.headline(k)
	var reason string
	if ev.reason != "" {
		reason = "*Reason:* " + slack.Escape(ev.reason)
	}
	msg := slack.Message{
		Channel: ev.channel,
		Text:    slack.Escape(head),
		Blocks:  []slack.Block{slack.Header(head), slack.Section(reason, ev.fields(k)...)},
	}
	if links := ev.links(); len(links) > 0 {
		msg.Blocks = append(msg.Blocks, slack.Context(links...))
	}
	return msg
}

func (ev event) fields(k Kind) []string {
	tag := "`" + ev.tag + "`"
	if ev.previousTag != "" {
		tag += " (was `" + ev.previousTag + "`)"
	}
	f := []string{"*App*\n" + ev.app, "*Environment*\n" + ev.env, "*Tag*\n" + tag, "*Status*\n" + string(ev.status)}
	switch {
	case k == KindPromoted && ev.targetEnv != "":
		f = append(f, "*Promoted to*\n"+ev.targetEnv)
	case k == KindNotPromoted && ev.targetEnv != "":
		f = append(f, "*Not promoted to*\n"+ev.targetEnv)
	}
	if ev.outcome.Valid() {
		f = append(f, "*Outcome*\n`"+ev.outcome.String()+"`")
	}
	if ev.failedStep != "" {
		f = append(f, "*Failed step*\n`"+slack.Escape(ev.failedStep)+"`")
	}
	return f
}

func (ev event) links() []string {
	var out []string
	if ev.workflowURL != "" {
		out = append(out, slack.Link(ev.workflowURL, "Workflow"))
	}
	if ev.compareURL != "" {
		label := "Changes"
		if ev.previousTag != "" {
			label += " " + ev.previousTag + "..." + ev.tag
		}
		out = append(out, slack.Link(ev.compareURL, label))
	}
	if ev.argoCDURL != "" {
		out = append(out, slack.Link(ev.argoCDURL, "Argo CD"))
	}
	return out
}

// encode is the payload as posted and as --dry-run prints it: indented
// JSON, with <, > and & as they are (Slack reads the entities of mrkdwn,
// not JSON's \u003c).
func encode(msg slack.Message) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(msg); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
