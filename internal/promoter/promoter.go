// Package promoter performs one promotion: it reads the charts repo once,
// decides once with promotion.Decide, re-applied to the head of every push
// attempt, and writes through bumptag's writer, which decides nothing
// itself (the decision is its Gate). It knows nothing of HTTP or Argo: the
// executor plugin's transport (promoterserver) turns its Result into a
// reply and metrics.
package promoter

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/slipway-deploy/slipway/internal/bumptag"
	"github.com/slipway-deploy/slipway/internal/chartsrepo"
	"github.com/slipway-deploy/slipway/internal/gitwriter"
	"github.com/slipway-deploy/slipway/internal/outcome"
	"github.com/slipway-deploy/slipway/internal/promotion"
	"github.com/slipway-deploy/slipway/internal/tagfile"
)

// Outcomes are every outcome Promote returns: the decision's, AlreadyThere
// when the write finds the target already holding it, and Failed.
var Outcomes = append(append([]outcome.Outcome{}, promotion.Outcomes...), outcome.Failed)

// Config is what a Promoter needs.
type Config struct {
	Layout *chartsrepo.Layout
	Policy promotion.Policy
	// Git is how to reach the charts repo (remote, auth, branch, strategy,
	// author, attempts); Log and Now are taken from the Promoter.
	Git gitwriter.Options
	// HistoryDepth bounds the history read for a soak (default 500).
	HistoryDepth int
	Log          *slog.Logger
	// Now is the clock (time.Now by default).
	Now func() time.Time
}

// Promoter performs promotions, keeping a few git writers (and their
// fetched stores) warm between them.
type Promoter struct {
	cfg     Config
	writers chan *gitwriter.Writer
}

// New returns a Promoter; nothing touches the network until Promote.
func New(cfg Config) *Promoter {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Git.Log = cfg.Log
	return &Promoter{cfg: cfg, writers: make(chan *gitwriter.Writer, 16)}
}

// Request is one promotion, its names checked where it came in.
type Request struct {
	App  chartsrepo.App
	From chartsrepo.Env
	Tag  chartsrepo.Tag
	// Workflow is the Argo workflow UID, recorded in the commit.
	Workflow string
}

// Result is how a promotion ended.
type Result struct {
	Outcome outcome.Outcome
	Target  chartsrepo.Env
	Reason  string
	// Commit is the promotion's commit, or the head that already had it.
	Commit string
	// Requeue is when to ask again, for a waiting outcome.
	Requeue time.Duration
}

// OutputNames are the promote step's Argo outputs, in reply order.
var OutputNames = []string{"promoted", "target-env", "commit", "reason"}

// Outputs are the promote step's Argo outputs.
func (r Result) Outputs() map[string]string {
	return map[string]string{"promoted": fmt.Sprint(r.Outcome.Wrote()), "target-env": r.Target.String(),
		"commit": r.Commit, "reason": r.Reason}
}

// Report is the result as every step reports one.
func (r Result) Report() outcome.Result {
	res := outcome.Result{Outcome: r.Outcome, Reason: r.Reason, Outputs: r.Outputs(), Requeue: r.Requeue,
		Attrs: []any{"target_env", r.Target.String(), "reason", r.Reason}}
	if r.Commit != "" {
		res.Attrs = append(res.Attrs, "commit", r.Commit)
	}
	return res
}

// promoteMessage is a promotion's commit subject.
var promoteMessage, _ = bumptag.ParseMessage("Promote {{.App}} {{.Tag}} to {{.Env}}")

// Promote performs one promotion. The decision is promotion.Decide's alone,
// made again on every push attempt against the head that attempt would
// push onto (source, target, clock and, when a soak applies, the history at
// that head); bumptag writes what the decision allows. An error comes with
// a Failed result that names the target.
func (p *Promoter) Promote(ctx context.Context, req Request) (Result, error) {
	pol := p.cfg.Policy
	preq := promotion.Request{App: req.App, From: req.From, Tag: req.Tag}
	target, ok := pol.Next(req.From)
	if !ok {
		return fromDecision(promotion.Decide(pol, preq, promotion.State{}, p.cfg.Now())), nil
	}
	failed := Result{Outcome: outcome.Failed, Target: target}
	srcPath, err := p.cfg.Layout.TagFile(req.From, req.App)
	if err != nil {
		return failed, err
	}
	dstPath, err := p.cfg.Layout.TagFile(target, req.App)
	if err != nil {
		return failed, err
	}
	w := p.writer()
	defer p.putWriter(w)
	var d promotion.Decision
	var decided bool
	var gateErr error
	gate := func(at gitwriter.Current, dst *tagfile.File) (outcome.Outcome, string, error) {
		d, gateErr = p.decide(ctx, preq, srcPath, at, dst)
		if gateErr != nil {
			return outcome.Failed, "", gateErr
		}
		decided = true
		return d.Outcome, d.Reason, nil
	}
	yes := true
	br, err := bumptag.Write(ctx, bumptag.Charts{Layout: p.cfg.Layout, Policy: pol.Releases, Writer: w}, bumptag.Request{
		App: req.App, Env: target, Tag: req.Tag, Promote: &yes, Workflow: req.Workflow, SourceEnv: req.From,
		Message: promoteMessage, Gate: gate,
	})
	switch {
	case gateErr != nil:
		return failed, gateErr
	case err != nil && !decided:
		return failed, fmt.Errorf("read the charts repo: %w", err)
	case err != nil:
		return failed, fmt.Errorf("write %s: %w", dstPath, err)
	}
	res := Result{Outcome: br.Outcome, Target: target, Reason: br.Reason, Requeue: d.Requeue}
	if br.Outcome.Wrote() || br.Outcome == outcome.AlreadyThere {
		res.Commit = br.Commit // the new commit, or the head that already has it
	}
	return res, nil
}

func fromDecision(d promotion.Decision) Result {
	return Result{Outcome: d.Outcome, Target: d.Target, Reason: d.Reason, Requeue: d.Requeue}
}

func (p *Promoter) writer() *gitwriter.Writer {
	select {
	case w := <-p.writers:
		return w
	default:
		return gitwriter.New(p.cfg.Git)
	}
}

func (p *Promoter) putWriter(w *gitwriter.Writer) {
	select {
	case p.writers <- w:
	default: // enough idle writers kept
	}
}

// decide reads the source tag file at at's head and applies
// promotion.Decide to it and the target (dst, as bumptag read it at that
// head), reading the soak's start from the history at that same head when
// the decision needs it.
func (p *Promoter) decide(ctx context.Context, req promotion.Request, srcPath string, at gitwriter.Current, dst *tagfile.File) (promotion.Decision, error) {
	src, err := at.Read(srcPath)
	if err != nil {
		return promotion.Decision{}, fmt.Errorf("read the charts repo: %w", err)
	}
	var st promotion.State
	if st.Source, err = p.parse(srcPath, src); err != nil {
		return promotion.Decision{}, err
	}
	st.Target = file(dst)
	now := p.cfg.Now()
	d := promotion.Decide(p.cfg.Policy, req, st, now)
	if d.Action != promotion.NeedTagSetAt {
		return d, nil
	}
	if st.TagSetAt, err = p.tagSetAt(ctx, at, srcPath, req.Tag.String()); err != nil {
		return d, err
	}
	if d = promotion.Decide(p.cfg.Policy, req, st, now); d.Action == promotion.NeedTagSetAt {
		// Cannot happen: rule 3 passed, so the head itself holds the tag.
		return d, fmt.Errorf("%s: no commit in its history sets %s", srcPath, req.Tag)
	}
	return d, nil
}

// parse reads a tag file as the decision sees it.
func (p *Promoter) parse(path string, cur gitwriter.Current) (promotion.File, error) {
	if !cur.Exists {
		return promotion.File{}, nil
	}
	f, err := tagfile.Parse(cur.Content, p.cfg.Layout.Keys)
	if err != nil {
		return promotion.File{}, fmt.Errorf("%s: %w", path, err)
	}
	return file(f), nil
}

// file is a parsed tag file (nil: none) as the decision sees it.
func file(f *tagfile.File) promotion.File {
	if f == nil {
		return promotion.File{}
	}
	tag, _ := f.Tag()
	return promotion.File{Exists: true, Tag: tag, AutoDeploy: f.AutoDeploy(), Promote: f.Promote()}
}

// tagSetAt walks the source file's history back from at's head and returns
// when the commit that set tag (the oldest of the newest run of versions
// holding it) landed. Read from the head the decision is made on, it holds
// for that head: a source that moved away and back since is a new start.
func (p *Promoter) tagSetAt(ctx context.Context, at gitwriter.Current, path, tag string) (time.Time, error) {
	var when time.Time
	err := at.History(ctx, path, p.cfg.HistoryDepth, func(r gitwriter.Revision) bool {
		f, err := p.parse(path, gitwriter.Current{Content: r.Content, Exists: r.Exists})
		if err != nil || !f.Exists || f.Tag != tag {
			return false
		}
		when = r.When
		return true
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("read the history of %s: %w", path, err)
	}
	return when, nil
}
