// Package bumptag is the one code path that writes an image tag into an
// environment's tag file: bump-tag calls it for CI and manual deploys, the
// promoter for promotions. It validates everything before the network, and
// decides each attempt against the branch's current state: already there
// (no commit), a downgrade (refused unless a rollback was asked for), a
// compare-and-swap that no longer holds (held), or an edit. A caller that
// decides for itself (the promoter) passes a Gate instead, which bumptag
// asks on every attempt, at the head the commit would be pushed onto.
package bumptag

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"text/template"

	"github.com/slipway-deploy/slipway/internal/chartsrepo"
	"github.com/slipway-deploy/slipway/internal/exitcode"
	"github.com/slipway-deploy/slipway/internal/gitwriter"
	"github.com/slipway-deploy/slipway/internal/release"
	"github.com/slipway-deploy/slipway/internal/tagfile"
)

// DefaultMessage is the commit message template.
const DefaultMessage = "Update {{.App}} image tag to {{.Tag}} for {{.Env}}"

// Request is one tag to write.
type Request struct {
	App, Env, Tag string
	// Promote is the promote_deployment value; nil means "true when the tag
	// is a release".
	Promote        *bool
	AllowDowngrade bool
	// ExpectCurrent, when set, refuses the write unless the file holds it.
	ExpectCurrent string
	// Create allows writing a tag file that does not exist yet.
	Create bool
	// Workflow is the Argo workflow UID, recorded as a trailer.
	Workflow string
	// SourceEnv is the environment a promotion came from, recorded as a trailer.
	SourceEnv string
	// Message is the commit message template (DefaultMessage when empty).
	Message string
	DryRun  bool
	// Gate, when set, is the caller's own decision. It replaces bumptag's
	// rules (already there, downgrade, ExpectCurrent) and runs on every
	// attempt against the target file at the head the commit would be
	// pushed onto (at.Read and at.History see that same head), so a
	// decision made on an older head is never pushed.
	Gate Gate
}

// Gate decides, for one attempt's head, whether the write goes ahead; when
// it does not, reason says why (it becomes Result.Reason).
type Gate func(at gitwriter.Current) (write bool, reason string, err error)

// Config is what a Request runs against.
type Config struct {
	Layout *chartsrepo.Layout
	Policy *release.Policy
	Writer *gitwriter.Writer
}

// Result reports a bump.
type Result struct {
	Changed     bool
	Commit      string
	PreviousTag string
	Reason      string
	Rollback    bool
	Path        string
	Promote     bool
	Message     string
	Diff        string
	Attempts    int
}

// Outputs are the Argo output parameters of a result.
func (r Result) Outputs() map[string]string {
	return map[string]string{
		"changed":      fmt.Sprint(r.Changed),
		"commit":       r.Commit,
		"previous-tag": r.PreviousTag,
		"reason":       r.Reason,
	}
}

// plan is a validated request.
type plan struct {
	req     Request
	path    string
	promote bool
	msg     *template.Template
	policy  *release.Policy
	keys    tagfile.Keys
}

// validate checks every input before anything touches the network.
func validate(cfg Config, req Request) (*plan, error) {
	if err := chartsrepo.ValidateApp(req.App); err != nil {
		return nil, exitcode.AsInvalid(err)
	}
	if err := cfg.Layout.ValidateEnv(req.Env); err != nil {
		return nil, exitcode.AsInvalid(err)
	}
	if err := chartsrepo.ValidateTag(req.Tag); err != nil {
		return nil, exitcode.AsInvalid(err)
	}
	if req.ExpectCurrent != "" {
		if err := chartsrepo.ValidateTag(req.ExpectCurrent); err != nil {
			return nil, exitcode.AsInvalid(fmt.Errorf("--expect-current: %w", err))
		}
	}
	if req.SourceEnv != "" {
		if err := cfg.Layout.ValidateEnv(req.SourceEnv); err != nil {
			return nil, exitcode.AsInvalid(err)
		}
	}
	path, err := cfg.Layout.TagFile(req.Env, req.App)
	if err != nil {
		return nil, exitcode.AsInvalid(err)
	}
	text := req.Message
	if text == "" {
		text = DefaultMessage
	}
	msg, err := template.New("message").Option("missingkey=error").Parse(text)
	if err == nil {
		err = msg.Execute(&bytes.Buffer{}, messageData{})
	}
	if err != nil {
		return nil, exitcode.Invalidf("--message template: %v", err)
	}
	promote := cfg.Policy.IsRelease(req.Tag)
	if req.Promote != nil {
		promote = *req.Promote
	}
	return &plan{req: req, path: path, promote: promote, msg: msg, policy: cfg.Policy, keys: cfg.Layout.Keys}, nil
}

type messageData struct{ App, Env, Tag, PreviousTag, Workflow string }

// Run validates req and writes it.
func Run(ctx context.Context, cfg Config, req Request) (Result, error) {
	p, err := validate(cfg, req)
	if err != nil {
		return Result{}, err
	}
	res := Result{Path: p.path, Promote: p.promote}
	workBranch := fmt.Sprintf("update-image-tag/%s/%s/%s", req.App, req.Env, req.Tag)
	var last decision
	wres, err := cfg.Writer.Write(ctx, p.path, workBranch, func(cur gitwriter.Current) (gitwriter.Edit, error) {
		d, err := p.decide(cur)
		last = d
		return d.edit, err
	}, req.DryRun)
	res.PreviousTag, res.Rollback, res.Reason = last.previous, last.rollback, last.edit.Reason
	res.Changed, res.Commit, res.Attempts, res.Diff = wres.Changed, wres.Commit, wres.Attempts, wres.Diff
	if last.edit.Changed {
		res.Message = last.edit.Message
	}
	if err != nil {
		if errors.Is(err, gitwriter.ErrBranchNotFound) {
			return res, exitcode.AsInvalid(err)
		}
		return res, err
	}
	return res, nil
}

// decision is the outcome of one attempt's look at the file.
type decision struct {
	edit     gitwriter.Edit
	previous string
	rollback bool
}

// decide looks at the tag file as it is at the branch head now.
func (p *plan) decide(cur gitwriter.Current) (decision, error) {
	var d decision
	req := p.req
	var f *tagfile.File
	if cur.Exists {
		var err error
		if f, err = tagfile.Parse(cur.Content, p.keys); err != nil {
			return d, exitcode.Invalidf("%s: %v", p.path, err)
		}
		d.previous, _ = f.Tag()
	}
	if req.Gate != nil {
		write, reason, err := req.Gate(cur)
		if err != nil || !write {
			d.edit.Reason = reason
			return d, err
		}
	}
	var next []byte
	if f == nil {
		if !req.Create {
			return d, exitcode.Invalidf("tag file %s does not exist (check --app and --env, or pass --create for a new app)", p.path)
		}
		if req.ExpectCurrent != "" && req.Gate == nil {
			return d, exitcode.Heldf("expected %s to hold %s, but the file does not exist", p.path, req.ExpectCurrent)
		}
		next = tagfile.New(req.Tag, p.promote, p.keys)
	} else {
		current := d.previous
		if req.Gate == nil {
			if current == req.Tag && f.Promote() == p.promote {
				d.edit.Reason = fmt.Sprintf("already at %s", req.Tag)
				return d, nil
			}
			if req.ExpectCurrent != "" && current != req.ExpectCurrent {
				return d, exitcode.Heldf("expected %s to hold %s, but it holds %s", p.path, req.ExpectCurrent, orNone(current))
			}
			if current != req.Tag && p.policy.IsRelease(current) && p.policy.IsRelease(req.Tag) && release.Compare(req.Tag, current) < 0 {
				if !req.AllowDowngrade {
					d.edit.Reason = fmt.Sprintf("refused downgrade: %s runs %s, newer than %s (use --allow-downgrade to roll back)", req.Env, current, req.Tag)
					return d, nil
				}
				d.rollback = true
			}
		}
		var err error
		if next, err = f.Set(req.Tag, p.promote); err != nil {
			return d, exitcode.Invalidf("%s: %v", p.path, err)
		}
		if bytes.Equal(next, cur.Content) {
			// Never an empty commit, whoever decided.
			d.edit.Reason = fmt.Sprintf("already at %s", req.Tag)
			return d, nil
		}
	}
	msg, err := p.message(d)
	if err != nil {
		return d, err
	}
	d.edit = gitwriter.Edit{Changed: true, Content: next, Message: msg, Reason: "updated"}
	if d.rollback {
		d.edit.Reason = fmt.Sprintf("rolled back from %s", d.previous)
	}
	return d, nil
}

func orNone(tag string) string {
	if tag == "" {
		return "none"
	}
	return tag
}

// message renders the commit message and its audit trailers.
func (p *plan) message(d decision) (string, error) {
	req := p.req
	var buf bytes.Buffer
	data := messageData{App: req.App, Env: req.Env, Tag: req.Tag, PreviousTag: d.previous, Workflow: req.Workflow}
	if err := p.msg.Execute(&buf, data); err != nil {
		return "", exitcode.Invalidf("--message template: %v", err)
	}
	subject := strings.TrimSpace(buf.String())
	if d.rollback {
		if req.Message == "" || req.Message == DefaultMessage {
			subject = fmt.Sprintf("Roll back %s image tag to %s for %s", req.App, req.Tag, req.Env)
		} else {
			subject = "Roll back: " + subject
		}
	}
	var b strings.Builder
	b.WriteString(subject)
	b.WriteString("\n\n")
	fmt.Fprintf(&b, "Slipway-App: %s\nSlipway-Env: %s\nSlipway-Tag: %s\nSlipway-Previous-Tag: %s\n", req.App, req.Env, req.Tag, orNone(d.previous))
	if req.SourceEnv != "" {
		fmt.Fprintf(&b, "Slipway-Source-Env: %s\n", req.SourceEnv)
	}
	if d.rollback {
		b.WriteString("Slipway-Rollback: true\n")
	}
	if req.Workflow != "" {
		fmt.Fprintf(&b, "Slipway-Workflow: %s\n", oneLine(req.Workflow))
	}
	return b.String(), nil
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
