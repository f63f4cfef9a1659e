// Package journey is `make demo`: a release of an app walked from CI to
// production on this machine, by the real binaries (bin/), run the way the
// pipeline of workflows/ runs them (localargo), then the safety rules shown
// on the same world. Everything runs on loopback and stops when the demo
// ends, interrupted or not; its files stay in one folder.
//
// It is also the end-to-end test of the pieces together (journey_test.go):
// Run fails when a step of the journey or a rule does not end as it must.
package journey

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"

	"github.com/slipway-deploy/slipway/hack/demo/localargo"
	"github.com/slipway-deploy/slipway/internal/outcome"
)

// Config is what the demo runs with.
type Config struct {
	Dir       string // its folder, wiped first (only if it is the demo's own)
	Bin       string // the binaries, as `make build` leaves them
	Workflows string // workflows/: the hooks and WorkflowTemplates
	// DatabaseURL, when set, is the apps' database: migrate locks it
	// (PostgreSQL's advisory lock) instead of a file.
	DatabaseURL string
	// MigrateCommand is the apps' migration command, run in their images
	// (default: their db/migrate script).
	MigrateCommand string
	Out            io.Writer
	// Brief prints one line per environment instead of one per step.
	Brief bool
}

// The release the demo walks.
const (
	demoApp = "frontend"
	demoTag = "v2"
)

// Report is what the demo did, for its test.
type Report struct {
	Dir, Repo string
	Journey   []Step
	Rules     []Rule
	// Posts are the headlines Slack received, in order.
	Posts []string
}

// Step is one step as it ended: a workflow's node, or the rollout.
type Step struct {
	Env, Phase, Name string
	Node             localargo.Node
	// Outcome is the step's `outcome` output (zero when it has none).
	Outcome outcome.Outcome
	Line    string
}

// Run runs the demo. It returns an error when anything did not end as it
// must, and stops everything it started before it returns.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	began := time.Now()
	p := &printer{out: cfg.Out, brief: cfg.Brief, dir: cfg.Dir}
	rep := &Report{Dir: cfg.Dir}
	w, err := start(ctx, cfg)
	if w != nil {
		defer func() {
			w.stop()
			p.printf("\nEverything it started is stopped. Its files: %s (%s)\n", cfg.Dir, took(began))
		}()
	}
	if err != nil {
		return rep, fmt.Errorf("start: %w", err)
	}
	p.abs, rep.Repo = w.dir, w.repo
	p.intro(w)

	p.printf("\nRelease %s of %s, from CI to production, in the order the hooks and WorkflowTemplates of workflows/ give:\n", demoTag, demoApp)
	if rep.Journey, err = w.release(ctx, p, demoApp, demoTag); err != nil {
		return rep, err
	}
	if err := p.gitLog(w); err != nil {
		return rep, err
	}

	p.printf("\nThe safety rules, on the same charts repo:\n")
	for _, r := range rules {
		res := Rule{Name: r.name}
		err := r.show(ctx, w, &res)
		rep.Rules = append(rep.Rules, res)
		p.rule(res)
		if err != nil {
			return rep, fmt.Errorf("rule %s: %w", r.name, err)
		}
	}
	rep.Posts = w.posts()
	return rep, nil
}

// release walks tag of app from CI's bump-tag into the first environment
// through each environment's sync, for as long as the promoter promotes it,
// and checks that it reached the last environment.
func (w *world) release(ctx context.Context, p *printer, app, tag string) ([]Step, error) {
	var steps []Step
	run, n, err := w.bumpTag(ctx, envs[0], app, tag, false)
	if err != nil {
		return nil, err
	}
	steps = append(steps, w.step("CI", "argo submit", run, n))
	p.step(steps[0])
	if err := want(n, outcome.Updated); err != nil {
		return steps, err
	}
	for env := envs[0]; ; {
		s, err := w.sync(ctx, env, app, p.step)
		steps = append(steps, s.steps...)
		p.synced(env, s)
		if err != nil {
			return steps, err
		}
		promote, o := s.promote()
		if o != outcome.Promoted {
			if env != envs[len(envs)-1] || o != outcome.LastEnvironment {
				return steps, fmt.Errorf("%s: %s %s stopped in %s: %s (%s)", app, tag, promote.Name, env, promote.Message, o)
			}
			return steps, nil
		}
		env = promote.Outputs["target-env"]
	}
}

// bumpTag submits WorkflowTemplate bump-tag in env's Argo Workflows, as CI
// or a person does (argo submit --from workflowtemplate/bump-tag -p ...).
func (w *world) bumpTag(ctx context.Context, env, app, tag string, rollback bool) (*localargo.Run, localargo.Node, error) {
	run, err := w.clusters[env].Submit(ctx, localargo.Submitted("bump-tag", map[string]string{
		"app": app, "environment": env, "image-tag": tag, "allow-downgrade": strconv.FormatBool(rollback), "charts-repo": w.gitURL}))
	if err != nil {
		return run, localargo.Node{}, err
	}
	n, ok := run.Node("bump-tag")
	if !ok {
		return run, n, fmt.Errorf("bump-tag ran no step")
	}
	return run, n, nil
}

// synced is one sync of an app in an environment: its steps in order.
type synced struct {
	tag   string
	steps []Step
}

// add records a step and shows it (show may be nil).
func (s *synced) add(st Step, show func(Step)) {
	s.steps = append(s.steps, st)
	if show != nil {
		show(st)
	}
}

// promote is the sync's promote step and its outcome.
func (s *synced) promote() (localargo.Node, outcome.Outcome) {
	for _, st := range s.steps {
		if st.Node.Template == "promote" {
			return st.Node, st.Outcome
		}
	}
	return localargo.Node{}, 0
}

// sync is what Argo CD does when app's charts changed in env: it renders
// the hooks with the chart's values at the tag the tag file names now, and
// runs them by phase and wave, rolling the app's Deployment at wave 0. A
// failed PreSync or Sync hook ends the sync and runs the SyncFail hook.
// Each step, as it ends, is shown.
func (w *world) sync(ctx context.Context, env, app string, show func(Step)) (*synced, error) {
	s := &synced{}
	var err error
	if s.tag, err = w.tag(env, app); err != nil {
		return s, err
	}
	hooks, err := w.pipeline.Hooks(app, w.values(env, app, s.tag))
	if err != nil {
		return s, err
	}
	rolled := false
	for _, h := range hooks {
		if h.Phase == localargo.SyncFail {
			continue
		}
		if !rolled && (h.Phase == localargo.PostSync || h.Phase == localargo.Sync && h.Wave >= 0) {
			st, err := w.rollout(env, app)
			if err != nil {
				return s, err
			}
			s.add(st, show)
			rolled = true
		}
		run, err := w.clusters[env].Submit(ctx, h.Workflow)
		if err != nil {
			return s, fmt.Errorf("%s in %s: %s hook: %w", app, env, h.Phase, err)
		}
		for _, n := range run.Nodes {
			s.add(w.step(env, phaseLabel(h), run, n), show)
		}
		if run.Status != wfv1.WorkflowSucceeded {
			if h.Phase != localargo.PostSync {
				w.syncFailed(ctx, env, s, hooks, show)
			}
			return s, fmt.Errorf("%s in %s: the %s hook (%s) failed: %s", app, env, h.Phase, run.Name, failedStep(run))
		}
	}
	return s, nil
}

// syncFailed runs the SyncFail hook, as Argo CD does after a failed sync.
func (w *world) syncFailed(ctx context.Context, env string, s *synced, hooks []localargo.Hook, show func(Step)) {
	for _, h := range hooks {
		if h.Phase != localargo.SyncFail {
			continue
		}
		if run, err := w.clusters[env].Submit(ctx, h.Workflow); err == nil {
			for _, n := range run.Nodes {
				s.add(w.step(env, phaseLabel(h), run, n), show)
			}
		}
	}
}

func failedStep(run *localargo.Run) string {
	for _, n := range run.Nodes {
		if n.Phase == wfv1.NodeFailed || n.Phase == wfv1.NodeError {
			return fmt.Sprintf("%s: %s (log: %s)", n.Name, n.Message, n.Log)
		}
	}
	return "no step failed"
}

func phaseLabel(h localargo.Hook) string {
	if h.Phase == localargo.Sync {
		return fmt.Sprintf("Sync %d", h.Wave)
	}
	return h.Phase
}

// rollout rolls app's Deployment in env (the web server re-reads the tag
// file) and asks the app what it serves now.
func (w *world) rollout(env, app string) (Step, error) {
	st := Step{Env: env, Phase: "Sync 0", Name: "rollout"}
	tag, err := w.apps[env].roll(app)
	if err != nil {
		return st, err
	}
	served, err := w.apps[env].serving(app)
	if err != nil {
		return st, err
	}
	if served != tag {
		return st, fmt.Errorf("%s in %s: rolled to %s, serves %s", app, env, tag, served)
	}
	st.Line = fmt.Sprintf("%s/%s/ serves %s", w.apps[env].url, app, served)
	return st, nil
}

// values are app's chart values in env at tag: what the hooks read.
func (w *world) values(env, app, tag string) map[string]any {
	return map[string]any{
		"image": map[string]any{"repository": registry + app, "tag": tag},
		"slipway": map[string]any{
			"environment": env, "argocdURL": "", "argoWorkflowsURL": "", "approvalEnvironments": "",
			"assets":  map[string]any{"destination": "file://" + w.path("assets", env, app), "command": ""},
			"migrate": map[string]any{"command": cmp.Or(w.cfg.MigrateCommand, "sh db/migrate")},
			"smoke":   map[string]any{"baseURL": w.apps[env].url + "/" + app},
		},
	}
}

// want checks a step's outcome.
func want(n localargo.Node, o outcome.Outcome) error {
	got, err := outcome.Parse(n.Outputs["outcome"])
	if err != nil || got != o {
		return fmt.Errorf("%s: want %s, got %q: %s (log: %s)", n.Name, o, n.Outputs["outcome"], n.Message, n.Log)
	}
	return nil
}

// outcomeOf is a node's `outcome` output as an Outcome (zero when it has
// none).
func outcomeOf(n localargo.Node) outcome.Outcome {
	o, _ := outcome.Parse(n.Outputs["outcome"])
	return o
}

func took(since time.Time) string { return time.Since(since).Round(100 * time.Millisecond).String() }

// short is a commit hash as git log shows it.
func short(commit string) string {
	if len(commit) > 7 {
		return commit[:7]
	}
	return commit
}
