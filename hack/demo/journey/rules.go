package journey

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slipway-deploy/slipway/hack/demo/localargo"
	"github.com/slipway-deploy/slipway/internal/outcome"
)

// Rule is a safety rule as the demo showed it.
type Rule struct {
	Name string
	// Outcomes are what the steps that decide answered, in order.
	Outcomes []outcome.Outcome
	// Running counts the promoter's Running replies (a wait).
	Running int
	Lines   []string
}

func (r *Rule) say(format string, args ...any) {
	r.Lines = append(r.Lines, fmt.Sprintf(format, args...))
}

// rule is one safety rule, shown on the world the journey left: frontend
// v2 everywhere, publisher and router at v1.
type rule struct {
	name string
	show func(ctx context.Context, w *world, r *Rule) error
}

var rules = []rule{
	{name: "stale", show: staleRelease},
	{name: "branch", show: branchDeploy},
	{name: "race", show: raceTwoReleases},
	{name: "freeze", show: freezeHoldsProduction},
	{name: "rollback", show: rollbackStays},
}

// staleRelease: v1's post-sync in integration comes late, after v2 got
// there; the promoter refuses to promote what integration no longer runs.
func staleRelease(ctx context.Context, w *world, r *Rule) error {
	promote, o, err := w.postSync(ctx, envs[0], demoApp, "v1")
	if err != nil {
		return err
	}
	r.Outcomes = append(r.Outcomes, o)
	r.say("%s v1's post-sync in %s, late (v2 runs there now): not promoted: %s (%s)", demoApp, envs[0], promote.Outputs["reason"], o)
	if o != outcome.Stale {
		return fmt.Errorf("want %s, the promoter answered %s", outcome.Stale, o)
	}
	return w.runs(envs[1], demoApp, demoTag)
}

// postSync runs only the PostSync hook of app in env, at tag, and returns
// its promote step.
func (w *world) postSync(ctx context.Context, env, app, tag string) (localargo.Node, outcome.Outcome, error) {
	hooks, err := w.pipeline.Hooks(app, w.values(env, app, tag))
	if err != nil {
		return localargo.Node{}, 0, err
	}
	for _, h := range hooks {
		if h.Phase != localargo.PostSync {
			continue
		}
		run, err := w.clusters[env].Submit(ctx, h.Workflow)
		if err != nil {
			return localargo.Node{}, 0, err
		}
		n, ok := run.Node("promote")
		if !ok {
			return n, 0, fmt.Errorf("post-sync of %s %s in %s did not promote: %s", app, tag, env, failedStep(run))
		}
		return n, outcomeOf(n), nil
	}
	return localargo.Node{}, 0, fmt.Errorf("no PostSync hook")
}

// runs checks what env's tag file for app says.
func (w *world) runs(env, app, tag string) error {
	got, err := w.tag(env, app)
	if err != nil {
		return err
	}
	if got != tag {
		return fmt.Errorf("%s runs %s in %s, want %s", app, got, env, tag)
	}
	return nil
}

// branchDeploy: a branch build, tagged with its commit SHA, deployed to
// integration and synced: it stays there.
func branchDeploy(ctx context.Context, w *world, r *Rule) error {
	const app = "publisher"
	sha := randomHex(20)
	_, n, err := w.bumpTag(ctx, envs[0], app, sha, false)
	if err != nil {
		return err
	}
	if err := want(n, outcome.Updated); err != nil {
		return err
	}
	s, err := w.sync(ctx, envs[0], app, nil)
	if err != nil {
		return err
	}
	promote, o := s.promote()
	r.Outcomes = append(r.Outcomes, o)
	r.say("%s %s (a branch build's commit SHA) deployed to %s and synced: not promoted (%s); %s still runs %s",
		app, short(sha), envs[0], o, envs[1], firstRelease)
	if o != outcome.NotARelease {
		return fmt.Errorf("want %s, the promoter answered %s: %s", outcome.NotARelease, o, promote.Message)
	}
	return w.runs(envs[1], app, firstRelease)
}

// raceTwoReleases: two bump-tag processes write integration at the same
// moment; neither write is lost.
func raceTwoReleases(ctx context.Context, w *world, r *Rule) error {
	writes := []struct{ app, tag string }{{demoApp, "v3"}, {"publisher", "v2"}}
	nodes := make([]localargo.Node, len(writes))
	errs := make([]error, len(writes))
	var wg sync.WaitGroup
	for i, wr := range writes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, nodes[i], errs[i] = w.bumpTag(ctx, envs[0], wr.app, wr.tag, false)
		}()
	}
	wg.Wait()
	for i, wr := range writes {
		if errs[i] != nil {
			return errs[i]
		}
		r.Outcomes = append(r.Outcomes, outcomeOf(nodes[i]))
		if err := want(nodes[i], outcome.Updated); err != nil {
			return err
		}
		if err := w.runs(envs[0], wr.app, wr.tag); err != nil {
			return err
		}
	}
	// The history shows the order they landed in.
	log, err := w.gitOutput(w.repo, "log", "--format=%H", "-2", "main")
	if err != nil {
		return err
	}
	var landed []string
	for _, c := range strings.Fields(log) {
		i := slices.IndexFunc(nodes, func(n localargo.Node) bool { return n.Outputs["commit"] == c })
		if i < 0 {
			return fmt.Errorf("the last two commits on main are not the two writes")
		}
		l := fmt.Sprintf("%s %s %s", short(c), writes[i].app, writes[i].tag)
		if a := attempts(nodes[i]); a > 1 {
			l += fmt.Sprintf(" (%d attempts: it lost the race, fetched the new head and wrote again)", a)
		}
		landed = append([]string{l}, landed...)
	}
	r.say("%s %s and %s %s written to %s by two bump-tag processes at once: both landed, one after the other: %s",
		writes[0].app, writes[0].tag, writes[1].app, writes[1].tag, envs[0], strings.Join(landed, ", then "))
	return nil
}

// attempts is how many pushes a bump-tag step made, from its result's
// log line.
func attempts(n localargo.Node) int {
	b, err := os.ReadFile(n.Log)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		var res struct{ Attempts int }
		if json.Unmarshal([]byte(line), &res) == nil && res.Attempts > 0 {
			return res.Attempts
		}
	}
	return 0
}

// freezeHoldsProduction: router v2, deployed to staging by hand, syncs
// there while a freeze closes production; the promoter answers Running
// and the agent asks again, until the freeze is lifted.
func freezeHoldsProduction(ctx context.Context, w *world, r *Rule) error {
	const app = "router"
	_, n, err := w.bumpTag(ctx, envs[1], app, demoTag, false)
	if err != nil {
		return err
	}
	if err := want(n, outcome.Updated); err != nil {
		return err
	}
	fr := freezeNow(time.Now())
	if err := w.restartPromoter(ctx, &fr); err != nil {
		return err
	}
	var replies []string
	var lifted error
	w.onRunning = func(n localargo.Node, requeue time.Duration) {
		r.Running++
		replies = append(replies, fmt.Sprintf("Running, %q, ask again in %s", n.Message, requeue))
		if r.Running == 2 {
			lifted = w.restartPromoter(ctx, nil)
		}
	}
	defer func() { w.onRunning = nil }()
	s, err := w.sync(ctx, envs[1], app, nil)
	if err != nil {
		return err
	}
	if lifted != nil {
		return lifted
	}
	promote, o := s.promote()
	r.Outcomes = append(r.Outcomes, o)
	r.say("production closed by a %s (the promoter's config); %s %s, synced in %s, asks to go on: %s",
		fr, app, demoTag, envs[1], firstOr(replies, "no Running reply"))
	r.say("asked again: Running; the freeze lifted (the promoter restarted without it), the next ask promoted %s to production, commit %s (%s)",
		demoTag, short(promote.Outputs["commit"]), o)
	if r.Running != 2 || o != outcome.Promoted {
		return fmt.Errorf("want two Running replies, then %s; got %d, then %s: %s", outcome.Promoted, r.Running, o, promote.Message)
	}
	return w.runs(envs[2], app, demoTag)
}

func firstOr(s []string, none string) string {
	if len(s) == 0 {
		return none
	}
	return s[0]
}

// restartPromoter restarts the promoter on its address with a freeze on
// production, or without one.
func (w *world) restartPromoter(ctx context.Context, fr *freeze) error {
	if err := w.stopPromoter(); err != nil {
		return err
	}
	return w.startPromoter(ctx, fr)
}

// rollbackStays: production is rolled back from v2 to v1; staging, which
// still runs v2, re-syncs, and its post-sync does not promote v2 again.
func rollbackStays(ctx context.Context, w *world, r *Rule) error {
	rolledBackFrom, err := outcome.Parse("rolled-back-from") // the release control issue's outcome
	if err != nil {
		return err
	}
	prod := envs[len(envs)-1]
	_, n, err := w.bumpTag(ctx, prod, demoApp, firstRelease, true)
	if err != nil {
		return err
	}
	if err := want(n, outcome.RolledBack); err != nil {
		return err
	}
	if _, err := w.sync(ctx, prod, demoApp, nil); err != nil {
		return err
	}
	trailers, err := w.gitOutput(w.repo, "log", "-1", "--format=%(trailers:only,unfold)", n.Outputs["commit"])
	if err != nil {
		return err
	}
	var rollback []string
	for _, t := range strings.Split(trailers, "\n") {
		if strings.HasPrefix(t, "Slipway-Rollback") {
			rollback = append(rollback, t)
		}
	}
	r.say("production rolled back from %s to %s by bump-tag with allow-downgrade=true (commit %s, %s), and synced",
		demoTag, firstRelease, short(n.Outputs["commit"]), strings.Join(rollback, ", "))
	s, err := w.sync(ctx, envs[1], demoApp, nil)
	if err != nil {
		return err
	}
	promote, o := s.promote()
	r.Outcomes = append(r.Outcomes, o)
	r.say("%s re-synced, still at %s: not promoted again: %s (%s)", envs[1], demoTag, promote.Outputs["reason"], o)
	if o != rolledBackFrom {
		return fmt.Errorf("want %s, the promoter answered %s", rolledBackFrom, o)
	}
	return w.runs(prod, demoApp, firstRelease)
}
