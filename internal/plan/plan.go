// Package plan is `promoter plan`: what runs where in the charts repo, what
// the promoter would decide now for each step of the chain, and which
// environments have drifted behind the one before them. It reads the
// charts repo once (githistory: one fetch, one walk of the history for
// every tag file) and decides with the promoter's own code
// (promoter.Decide over promotion.Decide), the history read as the
// promoter reads it (its depth), so that what the plan says is what a
// post-sync would get.
package plan

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"time"

	"github.com/slipway-deploy/slipway/internal/chartsrepo"
	"github.com/slipway-deploy/slipway/internal/exitcode"
	"github.com/slipway-deploy/slipway/internal/githistory"
	"github.com/slipway-deploy/slipway/internal/gitwriter"
	"github.com/slipway-deploy/slipway/internal/holds"
	"github.com/slipway-deploy/slipway/internal/outcome"
	"github.com/slipway-deploy/slipway/internal/promoter"
	"github.com/slipway-deploy/slipway/internal/promotion"
	"github.com/slipway-deploy/slipway/internal/release"
)

// DefaultDrift is how long an environment may be behind the one before it
// before the plan calls it drift.
const DefaultDrift = 7 * 24 * time.Hour

// Config is one plan.
type Config struct {
	Layout *chartsrepo.Layout
	Policy promotion.Policy
	// Repo is where to read the charts repo (Depth 0: the whole history,
	// which drift needs).
	Repo githistory.Options
	// HistoryDepth is the promoter's history depth (default 500): the
	// decisions see as much history as the promoter would.
	HistoryDepth int
	// Apps limits the plan to these apps (none: every app).
	Apps []chartsrepo.App
	// Drift is how long behind counts as drift (DefaultDrift when zero).
	Drift time.Duration
	// Format is text, json or markdown; FailOnDrift makes drift an error.
	Format      string
	FailOnDrift bool
	Out         io.Writer
	Now         func() time.Time
}

// Formats are the output formats.
var Formats = []string{"text", "json", "markdown"}

// Result is a plan: the charts repo as read, and what would happen.
type Result struct {
	Head       string    `json:"head"`
	Branch     string    `json:"branch"`
	Now        time.Time `json:"now"`
	Chain      []string  `json:"environments"`
	Holds      []Hold    `json:"holds"`
	HoldsError string    `json:"holdsError,omitempty"`
	Apps       []App     `json:"apps"`
	Drift      []Drift   `json:"drift"`
	// DriftAfter is the --drift threshold.
	DriftAfter Duration `json:"driftAfter"`
}

// Hold is a hold in force.
type Hold struct {
	Environments []string   `json:"environments"`
	Apps         []string   `json:"apps"`
	Reason       string     `json:"reason"`
	By           string     `json:"by"`
	Since        time.Time  `json:"since"`
	Until        *time.Time `json:"until,omitempty"`
}

// App is one app across the chain.
type App struct {
	Name  string     `json:"app"`
	Envs  []EnvState `json:"environments"`
	Steps []Step     `json:"steps"`
}

// EnvState is what runs in one environment.
type EnvState struct {
	Env               string     `json:"env"`
	Exists            bool       `json:"exists"`
	Tag               string     `json:"tag,omitempty"`
	Since             *time.Time `json:"since,omitempty"`
	AutomaticDeploys  bool       `json:"automaticDeploys"`
	PromoteDeployment bool       `json:"promoteDeployment"`
	// Error is why the tag file could not be read.
	Error string `json:"error,omitempty"`
}

// Step is what the promoter would decide now for the source's tag.
type Step struct {
	From string `json:"from"`
	To   string `json:"to"`
	Tag  string `json:"tag,omitempty"`
	// Outcome and Reason are the promoter's (its `outcome`, and the
	// sentence of its reply); Summary is the plan's short wording.
	Outcome      string `json:"outcome"`
	Reason       string `json:"reason"`
	Summary      string `json:"summary"`
	WouldPromote bool   `json:"wouldPromote"`
	Waiting      bool   `json:"waiting"`

	kind outcome.Outcome // 0: nothing to ask the promoter
}

// quiet reports whether the step has nothing to say: up to date, a newer
// release ahead, a branch deploy or a new app that is meant to stay put.
func (s Step) quiet() bool {
	switch s.kind {
	case 0, outcome.AlreadyThere, outcome.NewerPresent, outcome.NotARelease, outcome.NotPromotable, outcome.NoTagFile:
		return true
	}
	return false
}

// Drift is an environment behind the one before it for too long.
type Drift struct {
	App        string    `json:"app"`
	Env        string    `json:"env"`
	Tag        string    `json:"tag"`
	Behind     string    `json:"behind"`
	BehindTag  string    `json:"behindTag"`
	Since      time.Time `json:"since"`
	For        Duration  `json:"for"`
	Releases   int       `json:"releases"`
	AtLeastFor bool      `json:"atLeast,omitempty"` // the history read ends inside the gap
}

// Report is the plan's result line: nothing written, what it found.
func (r Result) Report() outcome.Result {
	promote, waiting := 0, 0
	for _, a := range r.Apps {
		for _, s := range a.Steps {
			if s.WouldPromote {
				promote++
			}
			if s.Waiting {
				waiting++
			}
		}
	}
	return outcome.Result{Outcome: outcome.DryRun, Event: "plan printed",
		Reason: fmt.Sprintf("plan: %d apps, %d would promote, %d waiting, %d drifting", len(r.Apps), promote, waiting, len(r.Drift)),
		Attrs:  []any{"head", r.Head, "apps", len(r.Apps), "would_promote", promote, "waiting", waiting, "drift", len(r.Drift)}}
}

// Run reads the charts repo, plans, and prints the plan in cfg.Format.
// With FailOnDrift, drift is an error (exit 1) once the plan is printed.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if !slices.Contains(Formats, cfg.Format) {
		return Result{}, exitcode.Invalidf("--output %q: want text, json or markdown", cfg.Format)
	}
	repo, err := githistory.Fetch(ctx, cfg.Repo)
	if err != nil {
		return Result{}, fmt.Errorf("read the charts repo: %w", err)
	}
	res, err := Make(ctx, cfg, repo)
	if err != nil {
		return res, err
	}
	if err := Render(cfg.Out, cfg.Format, res); err != nil {
		return res, fmt.Errorf("print the plan: %w", err)
	}
	if cfg.FailOnDrift && len(res.Drift) > 0 {
		return res, exitcode.Failedf("drift: %d environments behind the one before them for more than %s", len(res.Drift), res.DriftAfter)
	}
	return res, nil
}

// Make plans from a fetched repo.
func Make(ctx context.Context, cfg Config, repo *githistory.Repo) (Result, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Drift <= 0 {
		cfg.Drift = DefaultDrift
	}
	if cfg.HistoryDepth <= 0 {
		cfg.HistoryDepth = gitwriter.DefaultHistoryDepth
	}
	files, err := cfg.Layout.TagFiles()
	if err != nil {
		return Result{}, exitcode.AsInvalid(err)
	}
	s := &snapshot{cfg: cfg, files: files, revs: map[string][]gitwriter.Revision{}}
	for _, name := range cfg.Layout.Chain() {
		env, err := cfg.Layout.ParseEnv(name)
		if err != nil {
			return Result{}, exitcode.AsInvalid(err)
		}
		s.chain = append(s.chain, env)
	}
	holdsPath := cfg.Layout.HoldsFile()
	s.line, err = repo.Walk(ctx, githistory.Paths{Dirs: files.Dirs(), Files: []string{holdsPath}}, func(path string, r gitwriter.Revision) {
		if path == holdsPath {
			s.revs[path] = append(s.revs[path], r)
			return
		}
		if _, app, ok := files.Parse(path); ok {
			s.revs[path] = append(s.revs[path], r)
			s.found(app)
		}
	})
	if err != nil {
		return Result{}, fmt.Errorf("read the history of the charts repo: %w", err)
	}
	s.index()
	now := cfg.Now()
	res := Result{Head: repo.Head(), Branch: cfg.Repo.Branch, Now: now, Chain: cfg.Layout.Chain(), DriftAfter: Duration(cfg.Drift),
		Apps: []App{}, Drift: []Drift{}, Holds: []Hold{}}
	if res.Branch == "" {
		res.Branch = "main"
	}
	head := s.current(holdsPath)
	s.holds = holds.Load(holdsPath, head.Content, head.Exists, nil, cfg.Layout.Chain())
	res.Holds, res.HoldsError = inForce(s.holds, now)
	apps, err := s.apps()
	if err != nil {
		return res, err
	}
	for _, app := range apps {
		a, drift, err := s.plan(app, now)
		if err != nil {
			return res, err
		}
		res.Apps = append(res.Apps, a)
		res.Drift = append(res.Drift, drift...)
	}
	return res, nil
}

// snapshot is the charts repo as the walk read it.
type snapshot struct {
	cfg   Config
	chain []chartsrepo.Env
	files *chartsrepo.TagFiles
	// revs are each file's versions, newest first; line the commits walked.
	revs  map[string][]gitwriter.Revision
	line  []githistory.Commit
	seq   map[string]int // a commit's place in line (0: the head)
	names map[string]chartsrepo.App
	holds *holds.Set
}

func (s *snapshot) found(app chartsrepo.App) {
	if s.names == nil {
		s.names = map[string]chartsrepo.App{}
	}
	s.names[app.String()] = app
}

func (s *snapshot) index() {
	s.seq = make(map[string]int, len(s.line))
	for i, c := range s.line {
		s.seq[c.Hash] = i
	}
}

// current is the file at the head.
func (s *snapshot) current(path string) gitwriter.Revision {
	if revs := s.revs[path]; len(revs) > 0 {
		return revs[0]
	}
	return gitwriter.Revision{}
}

// apps are the apps planned: those asked for, or every app with a tag
// file at the head, by name.
func (s *snapshot) apps() ([]chartsrepo.App, error) {
	var out []chartsrepo.App
	for _, app := range s.names {
		for _, env := range s.chain {
			p, err := s.cfg.Layout.TagFile(env, app)
			if err == nil && s.current(p).Exists {
				out = append(out, app)
				break
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	if len(s.cfg.Apps) == 0 {
		return out, nil
	}
	var asked []chartsrepo.App
	for _, a := range s.cfg.Apps {
		if !slices.Contains(out, a) {
			return nil, exitcode.Invalidf("--app %s: no tag file for it in any environment", a)
		}
		asked = append(asked, a)
	}
	return asked, nil
}

// history is path's versions as the promoter would read them: as deep as
// its history depth from the head, the version beyond it cut there.
func (s *snapshot) history(path string) promoter.Revisions {
	depth := s.cfg.HistoryDepth
	return func(visit func(gitwriter.Revision) bool) error {
		for _, r := range s.revs[path] {
			if i := s.seq[r.Commit]; depth < len(s.line) && i >= depth-1 {
				// The promoter's oldest commit stands in for whatever set
				// this version, at or before it.
				edge := s.line[depth-1]
				r.Commit, r.When, r.Message, r.Cut = edge.Hash, edge.When, "", true
				visit(r)
				return nil
			}
			if !visit(r) {
				return nil
			}
		}
		return nil
	}
}

// everything is path's versions as far as the plan read them, for drift.
func (s *snapshot) everything(path string) []gitwriter.Revision { return s.revs[path] }

// plan is one app: its environments, its steps, its drift.
func (s *snapshot) plan(app chartsrepo.App, now time.Time) (App, []Drift, error) {
	l := s.cfg.Layout
	a := App{Name: app.String(), Envs: []EnvState{}, Steps: []Step{}}
	chain := s.chain
	files := make([]promotion.File, len(chain))
	for i, env := range chain {
		path, err := l.TagFile(env, app)
		if err != nil {
			return a, nil, exitcode.AsInvalid(err)
		}
		cur := s.current(path)
		es := EnvState{Env: env.String(), Exists: cur.Exists}
		f, err := promoter.ParseFile(l.Keys, path, cur.Content, cur.Exists)
		if err != nil {
			es.Error = err.Error()
		}
		files[i] = f
		es.Tag, es.AutomaticDeploys, es.PromoteDeployment = f.Tag, f.AutoDeploy, f.Promote
		if f.Exists && f.Tag != "" {
			if when, err := promoter.TagSetAt(l.Keys, f.Tag, s.history(path)); err == nil && !when.IsZero() {
				es.Since = &when
			}
		}
		a.Envs = append(a.Envs, es)
	}
	var drift []Drift
	for i := 0; i+1 < len(chain); i++ {
		step, err := s.step(app, chain[i], chain[i+1], files[i], files[i+1], now)
		if err != nil {
			return a, nil, err
		}
		a.Steps = append(a.Steps, step)
		if d, ok := s.drift(app, chain[i], chain[i+1], files[i], files[i+1], now); ok {
			drift = append(drift, d)
		}
	}
	return a, drift, nil
}

// step is what the promoter would answer now to the source's post-sync,
// which asks to promote the tag the source runs.
func (s *snapshot) step(app chartsrepo.App, from, to chartsrepo.Env, src, dst promotion.File, now time.Time) (Step, error) {
	st := Step{From: from.String(), To: to.String(), Tag: src.Tag}
	if !src.Exists || src.Tag == "" {
		st.Summary = "nothing to promote (no tag in " + from.String() + ")"
		return st, nil
	}
	tag, err := chartsrepo.ParseTag(src.Tag)
	if err != nil {
		st.Summary = "nothing to promote (" + err.Error() + ")"
		return st, nil
	}
	req := promotion.Request{App: app, From: from, Tag: tag}
	d, err := promoter.Decide(s.cfg.Layout, s.cfg.Policy, req, promotion.State{Source: src, Target: dst, Holds: s.holds}, now, s.history)
	if err != nil {
		return st, err
	}
	st.kind, st.Outcome, st.Reason = d.Outcome, d.Outcome.String(), d.Reason
	st.WouldPromote, st.Waiting = d.Outcome.Wrote(), d.Outcome.Waiting()
	st.Summary = summary(d, src, dst, now)
	return st, nil
}

// drift reports env when it runs an older release than prev, the one
// before it, and has for longer than the threshold: since prev first ran
// a release newer than env's (and env had its tag), continuously.
func (s *snapshot) drift(app chartsrepo.App, prev, env chartsrepo.Env, p, e promotion.File, now time.Time) (Drift, bool) {
	rel := s.cfg.Policy.Releases
	if !p.Exists || !e.Exists || !rel.IsRelease(p.Tag) || !rel.IsRelease(e.Tag) || release.Compare(p.Tag, e.Tag) <= 0 {
		return Drift{}, false
	}
	l := s.cfg.Layout
	prevPath, _ := l.TagFile(prev, app) // both read already by plan
	envPath, _ := l.TagFile(env, app)
	d := Drift{App: app.String(), Env: env.String(), Tag: e.Tag, Behind: prev.String(), BehindTag: p.Tag}
	seen := map[string]bool{}
	for _, r := range s.everything(prevPath) {
		f, err := promoter.ParseFile(l.Keys, prevPath, r.Content, r.Exists)
		if err != nil || !rel.IsRelease(f.Tag) || release.Compare(f.Tag, e.Tag) <= 0 {
			break
		}
		d.Since, d.AtLeastFor = r.When, r.Cut
		seen[f.Tag] = true
	}
	// env may have taken its tag after prev moved on (a rollback): behind since then.
	for _, r := range s.everything(envPath) {
		f, err := promoter.ParseFile(l.Keys, envPath, r.Content, r.Exists)
		if err != nil || f.Tag != e.Tag {
			break
		}
		if r.When.After(d.Since) {
			d.Since, d.AtLeastFor = r.When, r.Cut
		}
	}
	d.Releases = len(seen)
	d.For = Duration(now.Sub(d.Since))
	return d, time.Duration(d.For) > s.cfg.Drift
}

// inForce are the holds that still hold at now, or why the file holds
// everything.
func inForce(set *holds.Set, now time.Time) ([]Hold, string) {
	if err := set.Err(); err != nil {
		h, _ := set.Covering("", "", now)
		return []Hold{}, h.Name()
	}
	out := []Hold{}
	for _, h := range set.Holds() {
		if !h.Active(now) {
			continue
		}
		v := Hold{Environments: h.Environments, Apps: h.Apps, Reason: h.Reason, By: h.By, Since: h.Since}
		if !h.Until.IsZero() {
			until := h.Until
			v.Until = &until
		}
		out = append(out, v)
	}
	return out, ""
}
