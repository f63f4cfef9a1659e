package plan

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/slipway-deploy/slipway/internal/oneline"
	"github.com/slipway-deploy/slipway/internal/outcome"
	"github.com/slipway-deploy/slipway/internal/promotion"
)

// Duration prints as a person reads it ("12m", "3d4h") and encodes so in
// JSON.
type Duration time.Duration

func (d Duration) String() string {
	t := time.Duration(d)
	switch {
	case t < time.Minute:
		return fmt.Sprintf("%ds", int(t.Seconds()))
	case t < time.Hour:
		return fmt.Sprintf("%dm", int(t.Minutes()))
	case t < 24*time.Hour:
		return trim(fmt.Sprintf("%dh%dm", int(t.Hours()), int(t.Minutes())%60), "h0m", "h")
	}
	days := int(t.Hours()) / 24
	return trim(fmt.Sprintf("%dd%dh", days, int(t.Hours())%24), "d0h", "d")
}

func trim(s, suffix, with string) string {
	if strings.HasSuffix(s, suffix) {
		return strings.TrimSuffix(s, suffix) + with
	}
	return s
}

// MarshalText encodes a Duration as its String.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// summary words a decision for the plan: short, with what a person asks
// next (how long, until when, who).
func summary(d promotion.Decision, src, dst promotion.File, now time.Time) string {
	w := d.Why
	switch d.Outcome {
	case outcome.Promoted:
		return "would promote " + src.Tag
	case outcome.AlreadyThere:
		return "up to date"
	case outcome.NewerPresent:
		return d.Target.String() + " runs newer " + dst.Tag
	case outcome.NotARelease:
		return "branch deploy: stays put"
	case outcome.AutoDeployDisabled:
		return "automatic deploys off"
	case outcome.NotPromotable:
		return "promote_deployment false"
	case outcome.NoTagFile:
		return "no tag file in " + d.Target.String()
	case outcome.RolledBackFrom:
		return "rolled back from " + w.Rollback.From
	case outcome.Held:
		return "held: " + w.Hold.Name()
	case outcome.HeldPastDeadline:
		return "held past the deadline: " + w.Hold.Name()
	case outcome.FreezeWindow:
		return "frozen until " + when(w.Until, w.Zone, now)
	case outcome.FrozenPastDeadline:
		return "frozen until " + when(w.Until, w.Zone, now) + ", past the deadline"
	case outcome.Soaking:
		return fmt.Sprintf("soaking %s of %s", Duration(w.Soaked), Duration(w.Soak))
	}
	return oneline.Fold(d.Reason)
}

// when is a time in a zone, as a day and a time within the week ahead
// ("Mon 09:00"), with the date further out ("Tue 5 Jan 00:00").
func when(t time.Time, zone *time.Location, now time.Time) string {
	if zone == nil {
		zone = time.UTC
	}
	t = t.In(zone)
	if t.Sub(now) < 6*24*time.Hour {
		return t.Format("Mon 15:04")
	}
	return t.Format("Mon 2 Jan 15:04")
}

// Render prints a plan in format (text, json or markdown).
func Render(w io.Writer, format string, r Result) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case "markdown":
		_, err := io.WriteString(w, markdown(r))
		return err
	}
	return text(w, r)
}

func short(head string) string {
	if len(head) > 7 {
		return head[:7]
	}
	return head
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// holdLine is a hold in one line.
func holdLine(h Hold) string {
	s := fmt.Sprintf("%s (%s): %s by %s since %s", strings.Join(h.Environments, ", "), apps(h.Apps),
		oneline.Fold(h.Reason), oneline.Fold(h.By), stamp(h.Since))
	if h.Until != nil {
		s += " until " + stamp(*h.Until)
	}
	return s
}

func apps(list []string) string {
	for _, a := range list {
		if a == "*" {
			return "all apps"
		}
	}
	return strings.Join(list, ", ")
}

func driftLine(d Drift) string {
	for_ := d.For.String()
	if d.AtLeastFor {
		for_ = "at least " + for_
	}
	return fmt.Sprintf("%s runs %s, %s behind %s (%s) for %s", d.Env, d.Tag, count(d.Releases, "release"), d.Behind, d.BehindTag, for_)
}

// count is n with its noun ("1 app", "3 apps"); the plural is given when
// it is not the noun with an s.
func count(n int, one string, many ...string) string {
	if n == 1 {
		return "1 " + one
	}
	if len(many) > 0 {
		return fmt.Sprintf("%d %s", n, many[0])
	}
	return fmt.Sprintf("%d %ss", n, one)
}

// tagCell shortens a long tag (a commit SHA) for a table.
func tagCell(tag string) string {
	if len(tag) > 16 {
		return tag[:12] + "…"
	}
	return tag
}

// text is the whole plan as tables: every app, then holds and drift.
func text(w io.Writer, r Result) error {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "charts repo %s at %s, %s: %s\n\n", r.Branch, short(r.Head), stamp(r.Now), count(len(r.Apps), "app"))
	head := []string{"APP"}
	for _, e := range r.Chain {
		head = append(head, strings.ToUpper(e))
	}
	for i := 1; i < len(r.Chain); i++ {
		head = append(head, "TO "+strings.ToUpper(r.Chain[i]))
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, a := range r.Apps {
		row := []string{a.Name}
		for _, e := range a.Envs {
			row = append(row, envCell(e, r.Now))
		}
		for _, s := range a.Steps {
			row = append(row, s.Summary)
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	fmt.Fprintln(tw)
	switch {
	case r.HoldsError != "":
		fmt.Fprintf(tw, "HOLDS: %s\n", r.HoldsError)
	case len(r.Holds) == 0:
		fmt.Fprintln(tw, "HOLDS: none")
	default:
		fmt.Fprintln(tw, "HOLDS")
		for _, h := range r.Holds {
			fmt.Fprintf(tw, "  %s\n", holdLine(h))
		}
	}
	fmt.Fprintln(tw)
	if len(r.Drift) == 0 {
		fmt.Fprintf(tw, "DRIFT: none behind for more than %s\n", r.DriftAfter)
	} else {
		fmt.Fprintf(tw, "DRIFT (behind the environment before for more than %s)\n", r.DriftAfter)
		for _, d := range r.Drift {
			fmt.Fprintf(tw, "  %s\t%s\n", d.App, driftLine(d))
		}
	}
	return tw.Flush()
}

// envCell is what runs in an environment, and for how long.
func envCell(e EnvState, now time.Time) string {
	switch {
	case e.Error != "":
		return "(unreadable)"
	case !e.Exists:
		return "-"
	case e.Since == nil:
		return tagCell(e.Tag)
	}
	return fmt.Sprintf("%s (%s)", tagCell(e.Tag), Duration(now.Sub(*e.Since)))
}

// markdown is the plan's news, for a chat message (Slack's mrkdwn reads
// it too: no tables, no headings): holds, drift, and every step that
// waits, is stopped, or would promote; steps up to date are counted, not
// listed.
func markdown(r Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*Release plan*: `%s` at `%s`, %s, %s\n", r.Branch, short(r.Head), stamp(r.Now), count(len(r.Apps), "app"))
	switch {
	case r.HoldsError != "":
		fmt.Fprintf(&b, "\n*Holds*: %s\n", r.HoldsError)
	case len(r.Holds) > 0:
		b.WriteString("\n*Holds*\n")
		for _, h := range r.Holds {
			fmt.Fprintf(&b, "- %s\n", holdLine(h))
		}
	}
	if len(r.Drift) > 0 {
		fmt.Fprintf(&b, "\n*Drift* (behind the environment before for more than %s)\n", r.DriftAfter)
		for _, d := range r.Drift {
			fmt.Fprintf(&b, "- `%s` %s\n", d.App, driftLine(d))
		}
	}
	var promote, stopped []string
	quiet := 0
	for _, a := range r.Apps {
		for _, s := range a.Steps {
			line := fmt.Sprintf("- `%s` %s → %s: %s\n", a.Name, s.From, s.To, s.Summary)
			switch {
			case s.WouldPromote:
				promote = append(promote, line)
			case s.quiet():
				quiet++
			default:
				stopped = append(stopped, line)
			}
		}
	}
	if len(stopped) > 0 {
		b.WriteString("\n*Waiting or stopped*\n")
		b.WriteString(strings.Join(stopped, ""))
	}
	if len(promote) > 0 {
		b.WriteString("\n*Would promote now*\n")
		b.WriteString(strings.Join(promote, ""))
	}
	fmt.Fprintf(&b, "\n%s nothing to do.\n", count(quiet, "other step has", "other steps have"))
	return b.String()
}
