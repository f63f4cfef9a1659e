// Package promotion decides whether a release goes on from one environment
// to the next. Decide is a pure function of the request, the charts repo's
// state, the policy and the clock; the caller reads the repo, calls Decide,
// and performs the write it asks for (the promoter, through bumptag's
// writer, which decides nothing itself).
//
// The rules, in order (the first that applies decides), with the outcome
// each ends in:
//  1. no environment after From: LastEnvironment;
//  2. Tag is not a release: NotARelease (branch deploys stay put);
//  3. From's tag file no longer holds Tag: Stale;
//  4. From's automatic_deploys_enabled or promote_deployment is false:
//     AutoDeployDisabled or NotPromotable;
//  5. the target has no tag file (NoTagFile), already runs Tag
//     (AlreadyThere) or runs a newer release (NewerPresent);
//  6. a freeze covers now for the target: FreezeWindow (wait until it
//     ends), or FrozenPastDeadline when it ends after the decision deadline;
//  7. Tag has been in From for less than the target's soak time: Soaking;
//  8. otherwise Promoted: write the target's tag file.
package promotion

import (
	"fmt"
	"time"

	"github.com/slipway-deploy/slipway/internal/chartsrepo"
	"github.com/slipway-deploy/slipway/internal/oneline"
	"github.com/slipway-deploy/slipway/internal/outcome"
	"github.com/slipway-deploy/slipway/internal/release"
)

// Outcomes are every outcome Decide returns.
var Outcomes = []outcome.Outcome{
	outcome.LastEnvironment, outcome.NotARelease, outcome.Stale, outcome.AutoDeployDisabled,
	outcome.NotPromotable, outcome.NoTagFile, outcome.AlreadyThere, outcome.NewerPresent,
	outcome.FreezeWindow, outcome.FrozenPastDeadline, outcome.Soaking, outcome.Promoted,
}

// Request is what the workflow step asks, its names already checked.
type Request struct {
	App  chartsrepo.App
	From chartsrepo.Env
	Tag  chartsrepo.Tag
}

// File is an environment's tag file as read from the charts repo.
type File struct {
	Exists     bool
	Tag        string
	AutoDeploy bool
	Promote    bool
}

// State is the charts repo as the decision sees it.
type State struct {
	Source File
	Target File
	// TagSetAt is when the commit that set Source's current tag landed;
	// zero when not read yet (Decide asks for it only when a soak applies).
	TagSetAt time.Time
}

// Policy is the configuration the decision applies.
type Policy struct {
	Releases *release.Policy
	// Next returns the environment after env; ok is false for the last.
	Next func(env chartsrepo.Env) (next chartsrepo.Env, ok bool)
	// Freezes and Soak are per target environment.
	Freezes map[string]*Freeze
	Soak    map[string]time.Duration
	// Deadline is the longest a promotion is held waiting for a freeze to
	// end; a freeze that ends later gives up at once (FrozenPastDeadline).
	Deadline time.Duration
	// MaxRequeue caps a wait before the next look, so that a release that
	// went stale meanwhile is noticed (default 5 minutes).
	MaxRequeue time.Duration
}

// Action is what the caller must do with a decision.
type Action int

const (
	// Done: report the decision as it is.
	Done Action = iota
	// Wait: report it and ask again after Requeue.
	Wait
	// NeedTagSetAt: read State.TagSetAt from history and decide again.
	NeedTagSetAt
	// Write: write Tag into Target's tag file.
	Write
)

// Decision is what Decide says: the outcome, the sentence beside it, and
// what the caller must do.
type Decision struct {
	Action  Action
	Outcome outcome.Outcome
	Target  chartsrepo.Env
	Reason  string
	Requeue time.Duration
}

// Decide applies the rules in order.
func Decide(p Policy, req Request, st State, now time.Time) Decision {
	target, ok := p.Next(req.From)
	done := func(o outcome.Outcome, reason string) Decision {
		return Decision{Action: Done, Outcome: o, Target: target, Reason: reason}
	}
	if !ok {
		return done(outcome.LastEnvironment, "last environment")
	}
	tag := req.Tag.String()
	if !p.Releases.IsRelease(tag) {
		return done(outcome.NotARelease, fmt.Sprintf("not a release: %s does not match %s", tag, p.Releases))
	}
	if !st.Source.Exists || st.Source.Tag != tag {
		return done(outcome.Stale, fmt.Sprintf("stale: %s now runs %s", req.From, oneline.Or(st.Source.Tag, "no tag")))
	}
	switch {
	case !st.Source.AutoDeploy:
		return done(outcome.AutoDeployDisabled, fmt.Sprintf("automatic_deploys_enabled is false in %s", req.From))
	case !st.Source.Promote:
		return done(outcome.NotPromotable, fmt.Sprintf("promote_deployment is false in %s", req.From))
	}
	if !st.Target.Exists {
		return done(outcome.NoTagFile, fmt.Sprintf("no tag file for %s in %s", req.App, target))
	}
	if st.Target.Tag == tag {
		return done(outcome.AlreadyThere, "already there")
	}
	if p.Releases.IsRelease(st.Target.Tag) && release.Compare(st.Target.Tag, tag) > 0 {
		return done(outcome.NewerPresent, fmt.Sprintf("newer release present: %s runs %s", target, st.Target.Tag))
	}
	if end, what, frozen := p.Freezes[target.String()].FrozenUntil(now); frozen {
		if p.Deadline > 0 && end.Sub(now) > p.Deadline {
			return done(outcome.FrozenPastDeadline, fmt.Sprintf("frozen: %s until %s, after the decision deadline", what, end.UTC().Format(time.RFC3339)))
		}
		return p.wait(outcome.FreezeWindow, target, end.Sub(now), fmt.Sprintf("waiting: %s until %s", what, end.UTC().Format(time.RFC3339)))
	}
	if soak := p.Soak[target.String()]; soak > 0 {
		if st.TagSetAt.IsZero() {
			return Decision{Action: NeedTagSetAt, Outcome: outcome.Soaking, Target: target}
		}
		if left := st.TagSetAt.Add(soak).Sub(now); left > 0 {
			return p.wait(outcome.Soaking, target, left, fmt.Sprintf("soaking: %s in %s for %s of %s",
				tag, req.From, now.Sub(st.TagSetAt).Round(time.Second), soak))
		}
	}
	return Decision{Action: Write, Outcome: outcome.Promoted, Target: target, Reason: "promoted"}
}

func (p Policy) wait(o outcome.Outcome, target chartsrepo.Env, d time.Duration, reason string) Decision {
	limit := p.MaxRequeue
	if limit <= 0 {
		limit = 5 * time.Minute
	}
	d = min(max(d, time.Second), limit)
	return Decision{Action: Wait, Outcome: o, Target: target, Reason: reason, Requeue: d.Round(time.Second)}
}
