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
//  6. the target was rolled back from Tag since its current tag was set:
//     RolledBackFrom (only a newer release, or a person, moves it);
//  7. a hold in the holds file covers the app in the target:
//     Held (wait until it is lifted or expires), or HeldPastDeadline once
//     the promotion has waited longer than the decision deadline (counted
//     from the later of the hold's start and Tag's arrival in From), or
//     when the hold's end comes after it;
//  8. a freeze covers now for the target: FreezeWindow (wait until it
//     ends), or FrozenPastDeadline when it ends after the decision deadline;
//  9. Tag has been in From for less than the target's soak time: Soaking;
//  10. otherwise Promoted: write the target's tag file.
package promotion

import (
	"fmt"
	"slices"
	"time"

	"github.com/slipway-deploy/slipway/internal/chartsrepo"
	"github.com/slipway-deploy/slipway/internal/holds"
	"github.com/slipway-deploy/slipway/internal/oneline"
	"github.com/slipway-deploy/slipway/internal/outcome"
	"github.com/slipway-deploy/slipway/internal/release"
)

// Outcomes are every outcome Decide returns.
var Outcomes = []outcome.Outcome{
	outcome.LastEnvironment, outcome.NotARelease, outcome.Stale, outcome.AutoDeployDisabled,
	outcome.NotPromotable, outcome.NoTagFile, outcome.AlreadyThere, outcome.NewerPresent,
	outcome.RolledBackFrom, outcome.Held, outcome.HeldPastDeadline,
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
	// zero when not read yet (Decide asks for it only when a soak or a
	// hold's deadline needs it).
	TagSetAt time.Time
	// Holds is the holds file at the same head (nil: none).
	Holds *holds.Set
	// RolledBackFrom are the rollbacks of Target since its current tag was
	// set, newest first. RollbacksUnread says they were not read yet:
	// Decide asks for them (NeedRollbacks) when it comes to that rule.
	RolledBackFrom  []Rollback
	RollbacksUnread bool
}

// Rollback is one rollback of an environment: the tag it left, and when.
type Rollback struct {
	From string
	When time.Time
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
	// NeedRollbacks: read State.RolledBackFrom from the target's history
	// and decide again.
	NeedRollbacks
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
	// Why, for a reader that words the decision its own way (the plan).
	Why Why
}

// Why are the facts behind a decision that waits or refuses.
type Why struct {
	// Hold is the hold that stops it (Held, HeldPastDeadline).
	Hold holds.Hold
	// Until is when the freeze ends (FreezeWindow, FrozenPastDeadline);
	// Zone is the freeze's time zone.
	Until time.Time
	Zone  *time.Location
	// Soaked of Soak (Soaking).
	Soaked, Soak time.Duration
	// Rollback is the rollback that keeps the tag out (RolledBackFrom).
	Rollback Rollback
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
	if st.RollbacksUnread {
		return Decision{Action: NeedRollbacks, Outcome: outcome.RolledBackFrom, Target: target}
	}
	if i := slices.IndexFunc(st.RolledBackFrom, func(r Rollback) bool { return r.From == tag }); i >= 0 {
		r := st.RolledBackFrom[i]
		d := done(outcome.RolledBackFrom, fmt.Sprintf("%s was rolled back in %s on %s: promote a newer release or deploy it by hand",
			tag, target, r.When.UTC().Format("2006-01-02 15:04 MST")))
		d.Why.Rollback = r
		return d
	}
	if h, held := st.Holds.Covering(target.String(), req.App.String(), now); held {
		return p.held(req, st, h, target, now)
	}
	if end, what, frozen := p.Freezes[target.String()].FrozenUntil(now); frozen {
		var d Decision
		if p.Deadline > 0 && end.Sub(now) > p.Deadline {
			d = done(outcome.FrozenPastDeadline, fmt.Sprintf("frozen: %s until %s, after the decision deadline", what, end.UTC().Format(time.RFC3339)))
		} else {
			d = p.wait(outcome.FreezeWindow, target, end.Sub(now), fmt.Sprintf("waiting: %s until %s", what, end.UTC().Format(time.RFC3339)))
		}
		d.Why.Until, d.Why.Zone = end, p.Freezes[target.String()].Location
		return d
	}
	if soak := p.Soak[target.String()]; soak > 0 {
		if st.TagSetAt.IsZero() {
			return Decision{Action: NeedTagSetAt, Outcome: outcome.Soaking, Target: target}
		}
		if left := st.TagSetAt.Add(soak).Sub(now); left > 0 {
			soaked := now.Sub(st.TagSetAt).Round(time.Second)
			d := p.wait(outcome.Soaking, target, left, fmt.Sprintf("soaking: %s in %s for %s of %s", tag, req.From, soaked, soak))
			d.Why.Soaked, d.Why.Soak = soaked, soak
			return d
		}
	}
	return Decision{Action: Write, Outcome: outcome.Promoted, Target: target, Reason: "promoted"}
}

// held decides for a target a hold covers: wait while it lasts, or give
// up once the promotion has waited the decision deadline, or at once when
// the hold ends after that. The wait counts from the later of the hold's
// start and the tag's arrival in the source (when the promotion was first
// asked for): a release that arrives under an old hold still gets the
// whole deadline. A holds file that cannot be read has no start or end:
// the promotion waits until someone fixes it.
func (p Policy) held(req Request, st State, h holds.Hold, target chartsrepo.Env, now time.Time) Decision {
	reason := "held: " + h.String()
	if p.Deadline > 0 && h.Broken() == nil {
		if st.TagSetAt.IsZero() {
			return Decision{Action: NeedTagSetAt, Outcome: outcome.Held, Target: target}
		}
		start := st.TagSetAt
		if h.Since.After(start) {
			start = h.Since
		}
		giveUp := start.Add(p.Deadline)
		if !now.Before(giveUp) || (!h.Until.IsZero() && h.Until.After(giveUp)) {
			return Decision{Action: Done, Outcome: outcome.HeldPastDeadline, Target: target, Why: Why{Hold: h},
				Reason: fmt.Sprintf("%s, past the decision deadline (waiting since %s)", reason, start.UTC().Format(time.RFC3339))}
		}
	}
	wait := p.MaxRequeue
	if !h.Until.IsZero() {
		wait = h.Until.Sub(now)
	}
	d := p.wait(outcome.Held, target, wait, reason)
	d.Why.Hold = h
	return d
}

func (p Policy) wait(o outcome.Outcome, target chartsrepo.Env, d time.Duration, reason string) Decision {
	limit := p.MaxRequeue
	if limit <= 0 {
		limit = 5 * time.Minute
	}
	d = min(max(d, time.Second), limit)
	return Decision{Action: Wait, Outcome: o, Target: target, Reason: reason, Requeue: d.Round(time.Second)}
}
