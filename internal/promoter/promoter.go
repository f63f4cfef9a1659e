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
	"github.com/slipway-deploy/slipway/internal/holds"
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
	// HistoryDepth bounds the history read for a soak, a hold's deadline
	// and the target's rollbacks (default 500).
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
	if cfg.Git.HistoryWindow == 0 {
		// Nearly every promotion reads the target's history (rule 13):
		// its first window is fetched alongside the write's own fetch.
		cfg.Git.HistoryWindow = gitwriter.DefaultHistoryWindow
		if cfg.HistoryDepth > 0 {
			cfg.Git.HistoryWindow = min(cfg.Git.HistoryWindow, cfg.HistoryDepth)
		}
	}
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

// decide reads the source tag file and the holds file at at's head and
// decides with them and the target (dst, as bumptag read it at that head),
// reading whatever else the decision asks for from the history at that
// same head.
func (p *Promoter) decide(ctx context.Context, req promotion.Request, srcPath string, at gitwriter.Current, dst *tagfile.File) (promotion.Decision, error) {
	src, err := at.Read(srcPath)
	if err != nil {
		return promotion.Decision{}, fmt.Errorf("read the charts repo: %w", err)
	}
	st := promotion.State{Target: file(dst)}
	if st.Source, err = p.parse(srcPath, src); err != nil {
		return promotion.Decision{}, err
	}
	holdsPath := p.cfg.Layout.HoldsFile()
	hf, err := at.Read(holdsPath)
	st.Holds = holds.Load(holdsPath, hf.Content, hf.Exists, err, p.cfg.Layout.Chain())
	return Decide(p.cfg.Layout, p.cfg.Policy, req, st, p.cfg.Now(), func(path string) Revisions {
		return func(visit func(gitwriter.Revision) bool) error {
			return at.History(ctx, path, p.cfg.HistoryDepth, visit)
		}
	})
}

// Decide is promotion.Decide with what it asks of the history answered
// from history (a file's revisions at the head st was read at): the
// target's rollbacks, the source tag's arrival, each read at most once.
// The promoter answers from the head of a push attempt, the plan from its
// one walk of the repo: the same code decides both.
func Decide(layout *chartsrepo.Layout, pol promotion.Policy, req promotion.Request, st promotion.State, now time.Time,
	history func(path string) Revisions) (promotion.Decision, error) {
	st.RollbacksUnread = true
	for range 3 {
		d := promotion.Decide(pol, req, st, now)
		switch d.Action {
		case promotion.NeedRollbacks:
			dstPath, err := layout.TagFile(d.Target, req.App)
			if err != nil {
				return d, err
			}
			if st.RolledBackFrom, err = RolledBackFrom(layout.Keys, history(dstPath)); err != nil {
				return d, fmt.Errorf("read the history of %s: %w", dstPath, err)
			}
			st.RollbacksUnread = false
		case promotion.NeedTagSetAt:
			srcPath, err := layout.TagFile(req.From, req.App)
			if err != nil {
				return d, err
			}
			if st.TagSetAt, err = TagSetAt(layout.Keys, req.Tag.String(), history(srcPath)); err != nil {
				return d, fmt.Errorf("read the history of %s: %w", srcPath, err)
			}
			if st.TagSetAt.IsZero() {
				// Cannot happen: rule 3 passed, so the head itself holds the tag.
				return d, fmt.Errorf("%s: no commit in its history sets %s", srcPath, req.Tag)
			}
		default:
			return d, nil
		}
	}
	return promotion.Decision{}, fmt.Errorf("the decision kept asking for history")
}

// parse reads a tag file as the decision sees it.
func (p *Promoter) parse(path string, cur gitwriter.Current) (promotion.File, error) {
	return ParseFile(p.cfg.Layout.Keys, path, cur.Content, cur.Exists)
}

// ParseFile reads a tag file's content (none when !exists) as the decision
// sees it; an error names path.
func ParseFile(keys tagfile.Keys, path string, content []byte, exists bool) (promotion.File, error) {
	if !exists {
		return promotion.File{}, nil
	}
	f, err := tagfile.Parse(content, keys)
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

// tagSetAt returns when the commit that set tag in path landed, read
// from the history at at's head: a source that moved away and back since
// is a new start.
func (p *Promoter) tagSetAt(ctx context.Context, at gitwriter.Current, path, tag string) (time.Time, error) {
	when, err := TagSetAt(p.cfg.Layout.Keys, tag, func(visit func(gitwriter.Revision) bool) error {
		return at.History(ctx, path, p.cfg.HistoryDepth, visit)
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("read the history of %s: %w", path, err)
	}
	return when, nil
}
