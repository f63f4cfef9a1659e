// Package bumptag is the one code path that writes an image tag into an
// environment's tag file. Run is the bump-tag step: it checks every input
// once (names, remote, layout, template) before the network, then writes.
// Write is the writer both bump-tag and the promoter use: it applies the
// change to each push attempt's head, and the Result says how it ended
// (Updated, RolledBack, AlreadyThere, NewerPresent, ExpectationFailed,
// Held, or the outcome of the caller's Gate).
//
// Without a Gate, Write applies bump-tag's rules on every attempt: already
// there (no commit), a downgrade (refused unless a rollback was asked for),
// a compare-and-swap that no longer holds, a hold in the holds file read at
// the same head (refused unless overridden), or an edit. A caller that
// decides for itself (the promoter) passes a Gate instead: bumptag's rules
// do not run, and the Gate is asked on every attempt, at the head the
// commit would be pushed onto.
package bumptag

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"text/template"
	"time"

	"github.com/slipway-deploy/slipway/internal/chartsrepo"
	"github.com/slipway-deploy/slipway/internal/exitcode"
	"github.com/slipway-deploy/slipway/internal/gitwriter"
	"github.com/slipway-deploy/slipway/internal/holds"
	"github.com/slipway-deploy/slipway/internal/oneline"
	"github.com/slipway-deploy/slipway/internal/outcome"
	"github.com/slipway-deploy/slipway/internal/release"
	"github.com/slipway-deploy/slipway/internal/tagfile"
)

// DefaultMessage is the commit message template.
const DefaultMessage = "Update {{.App}} image tag to {{.Tag}} for {{.Env}}"

// Request is one tag to write; its names were checked where they came in.
type Request struct {
	App chartsrepo.App
	Env chartsrepo.Env
	Tag chartsrepo.Tag
	// Promote is the promote_deployment value; nil means "true when the tag
	// is a release".
	Promote        *bool
	AllowDowngrade bool
	// ExpectCurrent, when set, refuses the write unless the file holds it.
	ExpectCurrent chartsrepo.Tag
	// Create allows writing a tag file that does not exist yet.
	Create bool
	// Workflow is the Argo workflow UID, recorded as a trailer.
	Workflow string
	// SourceEnv is the environment a promotion came from, recorded as a trailer.
	SourceEnv chartsrepo.Env
	// OverrideHold, when set, is why a person writes through a hold (or a
	// holds file that cannot be read): the write goes ahead and both the
	// hold and this reason are recorded as trailers. Without it a hold
	// refuses the write (Held).
	OverrideHold string
	// Message is the commit message template (DefaultMessage when nil).
	Message *Message
	DryRun  bool
	// Gate, when set, is the caller's own decision. It replaces bumptag's
	// rules (already there, downgrade, ExpectCurrent, holds) and runs on every
	// attempt against the target file at the head the commit would be
	// pushed onto (at.Read and at.History see that same head), so a
	// decision made on an older head is never pushed.
	Gate Gate
}

// Gate decides, for one attempt's head, whether the write goes ahead. at is
// the target file at that head, target its parse (nil when it does not
// exist). An outcome that writes (Wrote) lets the write go ahead and is
// what the Result reports; any other stops it, with reason beside it.
type Gate func(at gitwriter.Current, target *tagfile.File) (o outcome.Outcome, reason string, err error)

// Message is a checked commit message template.
type Message struct {
	text string
	tmpl *template.Template
}

type messageData struct{ App, Env, Tag, PreviousTag, Workflow string }

// ParseMessage checks a commit message template (fields .App .Env .Tag
// .PreviousTag .Workflow); "" is DefaultMessage.
func ParseMessage(text string) (*Message, error) {
	if text == "" {
		text = DefaultMessage
	}
	tmpl, err := template.New("message").Option("missingkey=error").Parse(text)
	if err == nil {
		err = tmpl.Execute(&bytes.Buffer{}, messageData{})
	}
	if err != nil {
		return nil, exitcode.Invalidf("--message template: %v", err)
	}
	return &Message{text: text, tmpl: tmpl}, nil
}

var defaultMessage, _ = ParseMessage(DefaultMessage)

// Charts is the charts repo a tag is written into.
type Charts struct {
	Layout *chartsrepo.Layout
	Policy *release.Policy
	Writer *gitwriter.Writer
	// Now is the clock holds are read against (time.Now by default).
	Now func() time.Time
}

// Result reports a bump.
type Result struct {
	Outcome outcome.Outcome
	// Reason is the sentence beside the outcome.
	Reason      string
	Changed     bool
	Commit      string
	PreviousTag string
	Path        string
	Promote     bool
	Message     string
	Diff        string
	Attempts    int
	DryRun      bool
	App         chartsrepo.App
	Env         chartsrepo.Env
	Tag         chartsrepo.Tag
}

// OutputNames are the bump-tag step's Argo outputs besides `outcome`.
var OutputNames = []string{"changed", "commit", "previous-tag", "reason"}

// Outputs are the Argo output parameters of a result (OutputNames).
func (r Result) Outputs() map[string]string {
	return map[string]string{
		"changed":      fmt.Sprint(r.Changed),
		"commit":       r.Commit,
		"previous-tag": r.PreviousTag,
		"reason":       r.Reason,
	}
}

// Report is the step's log line and outputs. A dry run writes no outputs
// besides `outcome`, the outcome the write would have had.
func (r Result) Report() outcome.Result {
	res := outcome.Result{Outcome: r.Outcome, Reason: r.Reason, Outputs: r.Outputs(),
		Attrs: []any{"app", r.App.String(), "env", r.Env.String(), "tag", r.Tag.String(), "path", r.Path}}
	switch {
	case r.DryRun:
		res.Event, res.Outputs = "dry run: nothing pushed", nil
		res.Attrs = append(res.Attrs, "reason", r.Reason)
		if r.Outcome.Wrote() {
			res.Outcome = outcome.DryRun // it would have written; it did not
		}
	case r.Changed:
		res.Attrs = append(res.Attrs, "previous_tag", r.PreviousTag, "commit", r.Commit, "attempts", r.Attempts)
	default:
		res.Event = "nothing to do: " + r.Reason
		res.Attrs = append(res.Attrs, "commit", r.Commit)
	}
	return res
}

// plan is a request with what Write worked out before the network.
type plan struct {
	req     Request
	path    string
	promote bool
	policy  *release.Policy
	keys    tagfile.Keys
	layout  *chartsrepo.Layout
	now     func() time.Time
}

// Write writes req into ch's repo.
func Write(ctx context.Context, ch Charts, req Request) (Result, error) {
	res := Result{App: req.App, Env: req.Env, Tag: req.Tag, DryRun: req.DryRun}
	path, err := ch.Layout.TagFile(req.Env, req.App)
	if err != nil {
		return res, exitcode.AsInvalid(err)
	}
	if req.Message == nil {
		req.Message = defaultMessage
	}
	if ch.Now == nil {
		ch.Now = time.Now
	}
	p := &plan{req: req, path: path, promote: ch.Policy.IsRelease(req.Tag.String()), policy: ch.Policy, keys: ch.Layout.Keys,
		layout: ch.Layout, now: ch.Now}
	if req.Promote != nil {
		p.promote = *req.Promote
	}
	res.Path, res.Promote = p.path, p.promote
	workBranch := fmt.Sprintf("update-image-tag/%s/%s/%s", req.App, req.Env, req.Tag)
	var last decision
	wres, err := ch.Writer.Write(ctx, p.path, workBranch, func(cur gitwriter.Current) (gitwriter.Edit, error) {
		d, err := p.decide(cur)
		last = d
		return d.edit, err
	}, req.DryRun)
	res.Outcome, res.PreviousTag, res.Reason = last.outcome, last.previous, last.edit.Reason
	res.Changed, res.Commit, res.Attempts, res.Diff = wres.Changed, wres.Commit, wres.Attempts, wres.Diff
	if last.edit.Changed {
		res.Message = last.edit.Message
	}
	if err != nil {
		res.Outcome = outcome.Failed
		if errors.Is(err, gitwriter.ErrBranchNotFound) {
			return res, exitcode.AsInvalid(err)
		}
		return res, err
	}
	return res, nil
}

// decision is the outcome of one attempt's look at the file.
type decision struct {
	outcome  outcome.Outcome
	edit     gitwriter.Edit
	previous string
	rollback bool
	// overridden is the hold a person wrote through (OverrideHold).
	overridden *holds.Hold
}

// stop is a decision to write nothing.
func (d decision) stop(o outcome.Outcome, reason string) decision {
	d.outcome, d.edit = o, gitwriter.Edit{Reason: reason}
	return d
}

// decide looks at the tag file as it is at the branch head now.
func (p *plan) decide(cur gitwriter.Current) (decision, error) {
	var d decision
	req := p.req
	tag := req.Tag.String()
	var f *tagfile.File
	if cur.Exists {
		var err error
		if f, err = tagfile.Parse(cur.Content, p.keys); err != nil {
			return d, exitcode.Invalidf("%s: %v", p.path, err)
		}
		d.previous, _ = f.Tag()
	}
	d.outcome, d.edit.Reason = outcome.Updated, "updated"
	if req.Gate != nil {
		o, reason, err := req.Gate(cur, f)
		if err != nil || !o.Wrote() {
			return d.stop(o, reason), err
		}
		d.outcome, d.edit.Reason = o, reason
	}
	var next []byte
	if f == nil {
		if !req.Create {
			return d, exitcode.Invalidf("tag file %s does not exist (check --app and --env, or pass --create for a new app)", p.path)
		}
		if !req.ExpectCurrent.IsZero() && req.Gate == nil {
			return d.stop(outcome.ExpectationFailed, fmt.Sprintf("expected %s to hold %s, but the file does not exist", p.path, req.ExpectCurrent)), nil
		}
		next = tagfile.New(tag, p.promote, p.keys)
	} else {
		if req.Gate == nil {
			var stop bool
			if d, stop = p.rules(d, f); stop {
				return d, nil
			}
		}
		var err error
		if next, err = f.Set(tag, p.promote); err != nil {
			return d, exitcode.Invalidf("%s: %v", p.path, err)
		}
		if bytes.Equal(next, cur.Content) {
			// Never an empty commit, whoever decided.
			return d.stop(outcome.AlreadyThere, fmt.Sprintf("already at %s", tag)), nil
		}
	}
	if req.Gate == nil {
		var stop bool
		if d, stop = p.held(d, cur); stop {
			return d, nil
		}
	}
	msg, err := p.message(d)
	if err != nil {
		return d, err
	}
	d.edit = gitwriter.Edit{Changed: true, Content: next, Message: msg, Reason: d.edit.Reason}
	return d, nil
}

// held reads the holds file at the same head as the tag file: a hold that
// covers the app in the environment stops the write, unless a person
// overrides it (then it is recorded). A holds file that cannot be read
// holds everything.
func (p *plan) held(d decision, cur gitwriter.Current) (_ decision, stop bool) {
	path := p.layout.HoldsFile()
	hf, err := cur.Read(path)
	set := holds.Load(path, hf.Content, hf.Exists, err, p.layout.Chain())
	h, held := set.Covering(p.req.Env.String(), p.req.App.String(), p.now())
	switch {
	case !held:
		return d, false
	case p.req.OverrideHold != "":
		d.overridden = &h
		return d, false
	}
	what := h.String()
	if h.Broken() == nil {
		what += ", covering " + h.Scope()
	}
	return d.stop(outcome.Held, "held: "+what+"; --override-hold REASON writes anyway"), true
}

// rules are bump-tag's own, for a caller without a Gate: already there, a
// compare-and-swap that does not hold, a downgrade (refused, or a rollback
// when allowed). stop says they stop the write.
func (p *plan) rules(d decision, f *tagfile.File) (_ decision, stop bool) {
	req, current, tag := p.req, d.previous, p.req.Tag.String()
	if current == tag && f.Promote() == p.promote {
		return d.stop(outcome.AlreadyThere, fmt.Sprintf("already at %s", tag)), true
	}
	if !req.ExpectCurrent.IsZero() && current != req.ExpectCurrent.String() {
		return d.stop(outcome.ExpectationFailed, fmt.Sprintf("expected %s to hold %s, but it holds %s",
			p.path, req.ExpectCurrent, oneline.Or(current, "none"))), true
	}
	if current != tag && p.policy.IsRelease(current) && p.policy.IsRelease(tag) && release.Compare(tag, current) < 0 {
		if !req.AllowDowngrade {
			return d.stop(outcome.NewerPresent, fmt.Sprintf("refused downgrade: %s runs %s, newer than %s (use --allow-downgrade to roll back)",
				req.Env, current, tag)), true
		}
		d.rollback = true
		d.outcome, d.edit.Reason = outcome.RolledBack, fmt.Sprintf("rolled back from %s", current)
	}
	return d, false
}

// message renders the commit message and its audit trailers.
func (p *plan) message(d decision) (string, error) {
	req := p.req
	var buf bytes.Buffer
	data := messageData{App: req.App.String(), Env: req.Env.String(), Tag: req.Tag.String(), PreviousTag: d.previous, Workflow: req.Workflow}
	if err := req.Message.tmpl.Execute(&buf, data); err != nil {
		return "", exitcode.Invalidf("--message template: %v", err)
	}
	subject := strings.TrimSpace(buf.String())
	if d.rollback {
		if req.Message.text == DefaultMessage {
			subject = fmt.Sprintf("Roll back %s image tag to %s for %s", req.App, req.Tag, req.Env)
		} else {
			subject = "Roll back: " + subject
		}
	}
	var b strings.Builder
	b.WriteString(subject)
	b.WriteString("\n\n")
	fmt.Fprintf(&b, "Slipway-App: %s\nSlipway-Env: %s\nSlipway-Tag: %s\nSlipway-Previous-Tag: %s\n", req.App, req.Env, req.Tag, oneline.Or(d.previous, "none"))
	if !req.SourceEnv.IsZero() {
		fmt.Fprintf(&b, "Slipway-Source-Env: %s\n", req.SourceEnv)
	}
	if d.rollback {
		fmt.Fprintf(&b, "%s: true\n%s: %s\n", TrailerRollback, TrailerRollbackFrom, d.previous)
	}
	if d.overridden != nil {
		fmt.Fprintf(&b, "%s: %s\n%s: %s\n", TrailerOverrideHold, oneline.Fold(req.OverrideHold), TrailerOverriddenHold, d.overridden)
	}
	if req.Workflow != "" {
		fmt.Fprintf(&b, "Slipway-Workflow: %s\n", oneline.Fold(req.Workflow))
	}
	return b.String(), nil
}
