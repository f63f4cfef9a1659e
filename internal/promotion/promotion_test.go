package promotion

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/chartsrepo"
	"github.com/slipway-deploy/slipway/internal/holds"
	"github.com/slipway-deploy/slipway/internal/outcome"
	"github.com/slipway-deploy/slipway/internal/release"
	"github.com/slipway-deploy/slipway/internal/tagfile"
)

func london(t *testing.T) *time.Location {
	loc, err := time.LoadLocation("Europe/London")
	require.NoError(t, err)
	return loc
}

func testLayout(t *testing.T) *chartsrepo.Layout {
	layout, err := chartsrepo.NewLayout("", "", tagfile.DefaultKeys)
	require.NoError(t, err)
	return layout
}

// request checks the names the way the promoter's edge does.
func request(t *testing.T, app, from, tag string) Request {
	a, err := chartsrepo.ParseApp(app)
	require.NoError(t, err)
	f, err := testLayout(t).ParseEnv(from)
	require.NoError(t, err)
	g, err := chartsrepo.ParseTag(tag)
	require.NoError(t, err)
	return Request{App: a, From: f, Tag: g}
}

func testPolicy(t *testing.T) Policy {
	layout := testLayout(t)
	rel, err := release.NewPolicy("")
	require.NoError(t, err)
	fri, _ := ParseWeekTime("Fri 17:00")
	mon, _ := ParseWeekTime("Mon 09:00")
	from, _ := ParseDate("2026-12-20")
	to, _ := ParseDate("2027-01-04")
	return Policy{
		Releases: rel,
		Next:     layout.Next,
		Freezes: map[string]*Freeze{"production": {
			Location: london(t),
			Weekly:   []WeeklyWindow{{Start: fri, End: mon}},
			Dated:    []DatedWindow{{From: from, To: to}},
		}},
		Soak:       map[string]time.Duration{"production": 30 * time.Minute},
		Deadline:   72 * time.Hour,
		MaxRequeue: 10 * time.Minute,
	}
}

func at(t *testing.T, s string) time.Time {
	tm, err := time.Parse(time.RFC3339, s)
	require.NoError(t, err)
	return tm
}

// holdsFile is a holds file as read at some head.
func holdsFile(t *testing.T, content string) *holds.Set {
	s := holds.Load("charts/app-config/holds.yaml", []byte(content), true, nil, testLayout(t).Chain())
	if !strings.HasPrefix(content, "holds: [") {
		require.NoError(t, s.Err())
	}
	return s
}

func TestDecide(t *testing.T) {
	p := testPolicy(t)
	prodHeld := holdsFile(t, "holds:\n  - {environments: [production], apps: ['*'], reason: INC-1234, by: jane, since: 2026-11-25T10:00:00Z}\n")
	untilOneOClock := holdsFile(t, "holds:\n  - {environments: ['*'], apps: [frontend], reason: deploy window, by: ops, since: 2026-11-25T11:00:00Z, until: 2026-11-25T13:00:00Z}\n")
	longHold := holdsFile(t, "holds:\n  - {environments: [production], apps: [frontend], reason: migration, by: dba, since: 2026-11-25T11:00:00Z, until: 2026-12-01T00:00:00Z}\n")
	routerHeld := holdsFile(t, "holds:\n  - {environments: [production], apps: [router], reason: INC-9, by: sam, since: 2026-11-25T11:00:00Z}\n")
	malformed := holdsFile(t, "holds: [\n")
	// Wednesday 2026-11-25 12:00Z: no freeze.
	wed := at(t, "2026-11-25T12:00:00Z")
	src := func(tag string) File { return File{Exists: true, Tag: tag, AutoDeploy: true, Promote: true} }
	tgt := func(tag string) File { return File{Exists: true, Tag: tag, AutoDeploy: true, Promote: true} }
	seen := map[outcome.Outcome]bool{}
	for _, tc := range []struct {
		name    string
		req     Request
		st      State
		now     time.Time
		action  Action
		phase   outcome.Phase
		outcome outcome.Outcome
		reason  string
		requeue time.Duration
	}{
		{"1 last environment", request(t, "frontend", "production", "v42"), State{Source: src("v42")}, wed, Done, outcome.PhaseSucceeded, outcome.LastEnvironment, "last environment", 0},
		{"1 before 2: last env with a branch tag", request(t, "frontend", "production", "abc123"), State{Source: src("abc123")}, wed, Done, outcome.PhaseSucceeded, outcome.LastEnvironment, "last environment", 0},
		{"2 branch deploy stays put", request(t, "frontend", "integration", "3f2a9c1"), State{Source: src("3f2a9c1"), Target: tgt("v40")}, wed, Done, outcome.PhaseSucceeded, outcome.NotARelease, "not a release: 3f2a9c1 does not match ^v[0-9]+$", 0},
		{"3 stale", request(t, "frontend", "integration", "v41"), State{Source: src("v42"), Target: tgt("v40")}, wed, Done, outcome.PhaseSucceeded, outcome.Stale, "stale: integration now runs v42", 0},
		{"3 stale wins over target newer", request(t, "frontend", "integration", "v41"), State{Source: src("v42"), Target: tgt("v42")}, wed, Done, outcome.PhaseSucceeded, outcome.Stale, "stale: integration now runs v42", 0},
		{"3 stale: source file gone", request(t, "frontend", "integration", "v41"), State{Target: tgt("v40")}, wed, Done, outcome.PhaseSucceeded, outcome.Stale, "stale: integration now runs no tag", 0},
		{"4 automatic deploys off", request(t, "frontend", "integration", "v42"), State{Source: File{Exists: true, Tag: "v42", Promote: true}, Target: tgt("v40")}, wed, Done, outcome.PhaseSucceeded, outcome.AutoDeployDisabled, "automatic_deploys_enabled is false in integration", 0},
		{"4 promote_deployment off", request(t, "frontend", "integration", "v42"), State{Source: File{Exists: true, Tag: "v42", AutoDeploy: true}, Target: tgt("v40")}, wed, Done, outcome.PhaseSucceeded, outcome.NotPromotable, "promote_deployment is false in integration", 0},
		{"4 before 5: flag off and target already there", request(t, "frontend", "integration", "v42"), State{Source: File{Exists: true, Tag: "v42", AutoDeploy: true}, Target: tgt("v42")}, wed, Done, outcome.PhaseSucceeded, outcome.NotPromotable, "promote_deployment is false in integration", 0},
		{"5 already there", request(t, "frontend", "integration", "v42"), State{Source: src("v42"), Target: tgt("v42")}, wed, Done, outcome.PhaseSucceeded, outcome.AlreadyThere, "already there", 0},
		{"5 newer present", request(t, "frontend", "integration", "v42"), State{Source: src("v42"), Target: tgt("v43")}, wed, Done, outcome.PhaseSucceeded, outcome.NewerPresent, "newer release present: staging runs v43", 0},
		{"5 numeric order v9 < v10", request(t, "frontend", "integration", "v9"), State{Source: src("v9"), Target: tgt("v10")}, wed, Done, outcome.PhaseSucceeded, outcome.NewerPresent, "newer release present: staging runs v10", 0},
		{"5 target file missing", request(t, "frontend", "integration", "v42"), State{Source: src("v42")}, wed, Done, outcome.PhaseSucceeded, outcome.NoTagFile, "no tag file for frontend in staging", 0},
		{"5 before 6: already there during a freeze", request(t, "frontend", "staging", "v42"), State{Source: src("v42"), Target: tgt("v42")}, at(t, "2026-11-28T12:00:00Z"), Done, outcome.PhaseSucceeded, outcome.AlreadyThere, "already there", 0},
		{"8 over a branch deploy in the target", request(t, "frontend", "integration", "v42"), State{Source: src("v42"), Target: tgt("3f2a9c1")}, wed, Write, outcome.PhaseSucceeded, outcome.Promoted, "promoted", 0},
		{"8 staging has no freeze nor soak", request(t, "frontend", "integration", "v42"), State{Source: src("v42"), Target: tgt("v41")}, at(t, "2026-11-28T12:00:00Z"), Write, outcome.PhaseSucceeded, outcome.Promoted, "promoted", 0},
		{"6 weekend freeze: wait, capped requeue", request(t, "frontend", "staging", "v42"), State{Source: src("v42"), Target: tgt("v41")}, at(t, "2026-11-28T12:00:00Z"), Wait, outcome.PhaseRunning, outcome.FreezeWindow, "waiting: weekly freeze Fri 17:00 to Mon 09:00 Europe/London until 2026-11-30T09:00:00Z", 10 * time.Minute},
		{"6 freeze ending within the cap", request(t, "frontend", "staging", "v42"), State{Source: src("v42"), Target: tgt("v41")}, at(t, "2026-11-30T08:57:30Z"), Wait, outcome.PhaseRunning, outcome.FreezeWindow, "waiting: weekly freeze Fri 17:00 to Mon 09:00 Europe/London until 2026-11-30T09:00:00Z", 150 * time.Second},
		{"6 weekend running into the dated freeze is past the deadline", request(t, "frontend", "staging", "v42"), State{Source: src("v42"), Target: tgt("v41")}, at(t, "2026-12-19T10:00:00Z"), Done, outcome.PhaseSucceeded, outcome.FrozenPastDeadline, "frozen: weekly freeze Fri 17:00 to Mon 09:00 Europe/London until 2027-01-05T00:00:00Z, after the decision deadline", 0},
		{"6 dated freeze", request(t, "frontend", "staging", "v42"), State{Source: src("v42"), Target: tgt("v41")}, at(t, "2026-12-23T10:00:00Z"), Done, outcome.PhaseSucceeded, outcome.FrozenPastDeadline, "frozen: freeze 2026-12-20..2027-01-04 until 2027-01-05T00:00:00Z, after the decision deadline", 0},
		{"6 before 7: freeze checked before soak", request(t, "frontend", "staging", "v42"), State{Source: src("v42"), Target: tgt("v41")}, at(t, "2026-11-30T08:59:00Z"), Wait, outcome.PhaseRunning, outcome.FreezeWindow, "waiting: weekly freeze Fri 17:00 to Mon 09:00 Europe/London until 2026-11-30T09:00:00Z", time.Minute},
		{"7 soak needs the history", request(t, "frontend", "staging", "v42"), State{Source: src("v42"), Target: tgt("v41")}, wed, NeedTagSetAt, outcome.PhaseRunning, outcome.Soaking, "", 0},
		{"7 soaking", request(t, "frontend", "staging", "v42"), State{Source: src("v42"), Target: tgt("v41"), TagSetAt: wed.Add(-25 * time.Minute)}, wed, Wait, outcome.PhaseRunning, outcome.Soaking, "soaking: v42 in staging for 25m0s of 30m0s", 5 * time.Minute},
		{"7 soak done", request(t, "frontend", "staging", "v42"), State{Source: src("v42"), Target: tgt("v41"), TagSetAt: wed.Add(-30 * time.Minute)}, wed, Write, outcome.PhaseSucceeded, outcome.Promoted, "promoted", 0},
		{"6 rolled back from this tag: needs the target's history", request(t, "frontend", "staging", "v42"), State{Source: src("v42"), Target: tgt("v40"), RollbacksUnread: true}, wed, NeedRollbacks, outcome.PhaseSucceeded, outcome.RolledBackFrom, "", 0},
		{"6 rolled back from this tag", request(t, "frontend", "staging", "v42"), State{Source: src("v42"), Target: tgt("v40"), RolledBackFrom: []Rollback{{From: "v41", When: wed}, {From: "v42", When: wed.Add(-time.Hour)}}}, wed, Done, outcome.PhaseSucceeded, outcome.RolledBackFrom, "v42 was rolled back in production on 2026-11-25 11:00 UTC: promote a newer release or deploy it by hand", 0},
		{"6 a newer release than the rolled-back one promotes", request(t, "frontend", "staging", "v43"), State{Source: src("v43"), Target: tgt("v40"), RolledBackFrom: []Rollback{{From: "v42", When: wed}}, TagSetAt: wed.Add(-time.Hour)}, wed, Write, outcome.PhaseSucceeded, outcome.Promoted, "promoted", 0},
		{"6 before 7: rolled back wins over a hold", request(t, "frontend", "staging", "v42"), State{Source: src("v42"), Target: tgt("v40"), RolledBackFrom: []Rollback{{From: "v42", When: wed}}, Holds: prodHeld}, wed, Done, outcome.PhaseSucceeded, outcome.RolledBackFrom, "v42 was rolled back in production on 2026-11-25 12:00 UTC: promote a newer release or deploy it by hand", 0},
		{"7 held: needs when the tag arrived", request(t, "frontend", "staging", "v42"), State{Source: src("v42"), Target: tgt("v41"), Holds: prodHeld}, wed, NeedTagSetAt, outcome.PhaseRunning, outcome.Held, "", 0},
		{"7 held: wait", request(t, "frontend", "staging", "v42"), State{Source: src("v42"), Target: tgt("v41"), Holds: prodHeld, TagSetAt: wed.Add(-time.Hour)}, wed, Wait, outcome.PhaseRunning, outcome.Held, "held: INC-1234 by jane since 2026-11-25T10:00:00Z", 10 * time.Minute},
		{"7 before 8: held during a freeze", request(t, "frontend", "staging", "v42"), State{Source: src("v42"), Target: tgt("v41"), Holds: prodHeld, TagSetAt: at(t, "2026-11-28T11:00:00Z")}, at(t, "2026-11-28T12:00:00Z"), Wait, outcome.PhaseRunning, outcome.Held, "held: INC-1234 by jane since 2026-11-25T10:00:00Z", 10 * time.Minute},
		{"7 held: wait until it lifts itself", request(t, "frontend", "staging", "v42"), State{Source: src("v42"), Target: tgt("v41"), Holds: untilOneOClock, TagSetAt: wed.Add(-time.Hour)}, at(t, "2026-11-25T12:58:00Z"), Wait, outcome.PhaseRunning, outcome.Held, "held: deploy window by ops since 2026-11-25T11:00:00Z until 2026-11-25T13:00:00Z", 2 * time.Minute},
		{"7 an expired hold stops nothing", request(t, "frontend", "staging", "v42"), State{Source: src("v42"), Target: tgt("v41"), Holds: untilOneOClock, TagSetAt: wed.Add(-time.Hour)}, at(t, "2026-11-25T13:00:00Z"), Write, outcome.PhaseSucceeded, outcome.Promoted, "promoted", 0},
		{"7 held past the deadline, counted from the tag's arrival", request(t, "frontend", "staging", "v42"), State{Source: src("v42"), Target: tgt("v41"), Holds: prodHeld, TagSetAt: wed}, wed.Add(72 * time.Hour), Done, outcome.PhaseSucceeded, outcome.HeldPastDeadline, "held: INC-1234 by jane since 2026-11-25T10:00:00Z, past the decision deadline (waiting since 2026-11-25T12:00:00Z)", 0},
		{"7 an old release re-asked under a new hold waits from the hold's start", request(t, "frontend", "staging", "v42"), State{Source: src("v42"), Target: tgt("v41"), Holds: prodHeld, TagSetAt: wed.Add(-100 * time.Hour)}, wed.Add(69 * time.Hour), Wait, outcome.PhaseRunning, outcome.Held, "held: INC-1234 by jane since 2026-11-25T10:00:00Z", 10 * time.Minute},
		{"7 a hold that lifts after the deadline gives up at once", request(t, "frontend", "staging", "v42"), State{Source: src("v42"), Target: tgt("v41"), Holds: longHold, TagSetAt: wed}, wed, Done, outcome.PhaseSucceeded, outcome.HeldPastDeadline, "held: migration by dba since 2026-11-25T11:00:00Z until 2026-12-01T00:00:00Z, past the decision deadline (waiting since 2026-11-25T12:00:00Z)", 0},
		{"7 a malformed holds file holds, with no deadline", request(t, "frontend", "staging", "v42"), State{Source: src("v42"), Target: tgt("v41"), Holds: malformed}, wed, Wait, outcome.PhaseRunning, outcome.Held, "held: the holds file charts/app-config/holds.yaml is malformed (yaml: line 1: did not find expected node content): everything is held until it is fixed", 10 * time.Minute},
		{"7 a hold on another app does not hold this one", request(t, "frontend", "staging", "v42"), State{Source: src("v42"), Target: tgt("v41"), Holds: routerHeld, TagSetAt: wed.Add(-time.Hour)}, wed, Write, outcome.PhaseSucceeded, outcome.Promoted, "promoted", 0},
		{"7 soak right after Monday's freeze ends", request(t, "frontend", "staging", "v42"), State{Source: src("v42"), Target: tgt("v41"), TagSetAt: at(t, "2026-11-30T08:50:00Z")}, at(t, "2026-11-30T09:00:00Z"), Wait, outcome.PhaseRunning, outcome.Soaking, "soaking: v42 in staging for 10m0s of 30m0s", 10 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(p, tc.req, tc.st, tc.now)
			assert.Equal(t, tc.action, d.Action, "action")
			assert.Equal(t, tc.phase, d.Outcome.Phase(), "phase")
			assert.Equal(t, tc.outcome, d.Outcome, "outcome")
			assert.Contains(t, Outcomes, d.Outcome, "Outcomes lists every outcome Decide returns")
			seen[d.Outcome] = true
			assert.Equal(t, tc.reason, d.Reason, "reason")
			assert.Equal(t, tc.requeue, d.Requeue, "requeue")
			if d.Action == Wait {
				assert.Positive(t, d.Requeue, "Running always comes with a requeue")
			} else {
				assert.Zero(t, d.Requeue, "a terminal phase never comes with a requeue")
			}
		})
	}
	for _, o := range Outcomes {
		assert.True(t, seen[o], "no rule in the table ends in %s", o)
	}
}

func TestFreezeAcrossDSTChange(t *testing.T) {
	loc := london(t)
	fri, _ := ParseWeekTime("Fri 17:00")
	mon, _ := ParseWeekTime("monday 09:00")
	f := &Freeze{Location: loc, Weekly: []WeeklyWindow{{Start: fri, End: mon}}}
	for _, tc := range []struct {
		name   string
		now    string
		frozen bool
		end    string
	}{
		// BST ends Sunday 2026-10-25 02:00 BST: the freeze starts at 16:00Z
		// (17:00 BST) and ends at 09:00Z (09:00 GMT): one hour longer.
		{"just before the start, summer time", "2026-10-23T15:59:00Z", false, ""},
		{"start, summer time", "2026-10-23T16:00:00Z", true, "2026-10-26T09:00:00Z"},
		{"Sunday after the change", "2026-10-25T12:00:00Z", true, "2026-10-26T09:00:00Z"},
		{"08:30Z Monday is 08:30 GMT: still frozen", "2026-10-26T08:30:00Z", true, "2026-10-26T09:00:00Z"},
		{"end, winter time", "2026-10-26T09:00:00Z", false, ""},
		// BST starts Sunday 2027-03-28: starts 17:00Z (GMT), ends 08:00Z (BST).
		{"start, winter time", "2027-03-26T17:00:00Z", true, "2027-03-29T08:00:00Z"},
		{"08:30Z Monday is 09:30 BST: open", "2027-03-29T08:30:00Z", false, ""},
		{"midweek", "2027-03-31T12:00:00Z", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			end, _, frozen := f.FrozenUntil(at(t, tc.now))
			assert.Equal(t, tc.frozen, frozen)
			if tc.frozen {
				assert.Equal(t, at(t, tc.end), end.UTC())
			}
		})
	}
	// A dated freeze ends at local midnight, also across a change.
	d1, _ := ParseDate("2026-10-24")
	d2, _ := ParseDate("2026-10-25")
	df := &Freeze{Location: loc, Dated: []DatedWindow{{From: d1, To: d2}}}
	end, what, frozen := df.FrozenUntil(at(t, "2026-10-23T23:30:00Z")) // 00:30 BST on the 24th
	require.True(t, frozen)
	assert.Equal(t, at(t, "2026-10-26T00:00:00Z"), end.UTC())
	assert.Equal(t, "freeze 2026-10-24..2026-10-25", what)
	_, _, frozen = df.FrozenUntil(at(t, "2026-10-23T22:59:00Z")) // 23:59 BST on the 23rd
	assert.False(t, frozen)
}

func TestParseWeekTimeAndDate(t *testing.T) {
	for _, bad := range []string{"", "Fri", "Fri 25:00", "Frx 10:00", "Fri 10:00 extra"} {
		_, err := ParseWeekTime(bad)
		assert.Error(t, err, bad)
	}
	wt, err := ParseWeekTime("sat 06:30")
	require.NoError(t, err)
	assert.Equal(t, WeekTime{time.Saturday, 6, 30}, wt)
	_, err = ParseDate("2026-13-01")
	assert.Error(t, err)
}
