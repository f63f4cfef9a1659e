// Package promotion decides whether a release goes on from one environment
// to the next. Decide is a pure function of the request, the charts repo's
// state, the policy and the clock; the caller reads the repo, calls Decide,
// and performs the write it asks for (through bumptag, the one code path
// that writes a tag).
//
// The rules, in order (the first that applies decides):
//  1. no environment after From: done, "last environment";
//  2. Tag is not a release: not promoted (branch deploys stay put);
//  3. From's tag file no longer holds Tag: not promoted, "stale";
//  4. From's automatic_deploys_enabled or promote_deployment is false: not promoted;
//  5. the target already runs Tag ("already there") or a newer release;
//  6. a freeze covers now for the target: wait until it ends, or give up
//     ("frozen") when it ends after the decision deadline;
//  7. Tag has been in From for less than the target's soak time: wait;
//  8. otherwise write the target's tag file.
package promotion

import (
	"fmt"
	"time"

	"github.com/slipway-deploy/slipway/internal/release"
)

// Phase is the Argo node phase the decision maps to.
type Phase string

const (
	Succeeded Phase = "Succeeded"
	Running   Phase = "Running"
)

// Request is what the workflow step asks.
type Request struct {
	App, From, Tag string
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
	// Next returns the environment after env, "" for the last.
	Next func(env string) string
	// Freezes and Soak are per target environment.
	Freezes map[string]*Freeze
	Soak    map[string]time.Duration
	// Deadline is the longest a promotion is held waiting for a freeze to
	// end; a freeze that ends later gives up at once ("frozen").
	Deadline time.Duration
	// MaxRequeue caps a wait before the next look, so that a release that
	// went stale meanwhile is noticed (default 5 minutes).
	MaxRequeue time.Duration
}

// Action is what the caller must do with a decision.
type Action int

const (
	// Done: reply with the decision as it is.
	Done Action = iota
	// Wait: reply Running with Requeue.
	Wait
	// NeedTagSetAt: read State.TagSetAt from history and decide again.
	NeedTagSetAt
	// Write: write Tag into Target's tag file, then reply Succeeded.
	Write
)

// Decision is the outcome.
type Decision struct {
	Action  Action
	Phase   Phase
	Target  string
	Reason  string
	Requeue time.Duration
	// Rule is the number of the rule that decided (1-8), for metrics.
	Rule int
}

// Decide applies the rules in order.
func Decide(p Policy, req Request, st State, now time.Time) Decision {
	target := p.Next(req.From)
	done := func(rule int, reason string) Decision {
		return Decision{Action: Done, Phase: Succeeded, Target: target, Reason: reason, Rule: rule}
	}
	if target == "" {
		return done(1, "last environment")
	}
	if !p.Releases.IsRelease(req.Tag) {
		return done(2, fmt.Sprintf("not a release: %s does not match %s", req.Tag, p.Releases))
	}
	if !st.Source.Exists || st.Source.Tag != req.Tag {
		return done(3, fmt.Sprintf("stale: %s now runs %s", req.From, orNone(st.Source)))
	}
	switch {
	case !st.Source.AutoDeploy:
		return done(4, fmt.Sprintf("automatic_deploys_enabled is false in %s", req.From))
	case !st.Source.Promote:
		return done(4, fmt.Sprintf("promote_deployment is false in %s", req.From))
	}
	if !st.Target.Exists {
		return done(5, fmt.Sprintf("no tag file for %s in %s", req.App, target))
	}
	if st.Target.Tag == req.Tag {
		return done(5, "already there")
	}
	if p.Releases.IsRelease(st.Target.Tag) && release.Compare(st.Target.Tag, req.Tag) > 0 {
		return done(5, fmt.Sprintf("newer release present: %s runs %s", target, st.Target.Tag))
	}
	if end, what, frozen := p.Freezes[target].FrozenUntil(now); frozen {
		if p.Deadline > 0 && end.Sub(now) > p.Deadline {
			return done(6, fmt.Sprintf("frozen: %s until %s, after the decision deadline", what, end.UTC().Format(time.RFC3339)))
		}
		return p.wait(6, target, end.Sub(now), fmt.Sprintf("waiting: %s until %s", what, end.UTC().Format(time.RFC3339)))
	}
	if soak := p.Soak[target]; soak > 0 {
		if st.TagSetAt.IsZero() {
			return Decision{Action: NeedTagSetAt, Phase: Running, Target: target, Rule: 7}
		}
		if left := st.TagSetAt.Add(soak).Sub(now); left > 0 {
			return p.wait(7, target, left, fmt.Sprintf("soaking: %s in %s for %s of %s",
				req.Tag, req.From, now.Sub(st.TagSetAt).Round(time.Second), soak))
		}
	}
	return Decision{Action: Write, Phase: Succeeded, Target: target, Reason: "promoted", Rule: 8}
}

func (p Policy) wait(rule int, target string, d time.Duration, reason string) Decision {
	limit := p.MaxRequeue
	if limit <= 0 {
		limit = 5 * time.Minute
	}
	d = min(max(d, time.Second), limit)
	return Decision{Action: Wait, Phase: Running, Target: target, Reason: reason, Requeue: d.Round(time.Second), Rule: rule}
}

func orNone(f File) string {
	if !f.Exists || f.Tag == "" {
		return "no tag"
	}
	return f.Tag
}
