package outcome

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every outcome, with everything a caller reads off it. A new outcome
// without a row here fails TestEveryOutcomeIsInTheTable.
var want = map[Outcome]struct {
	name, label string
	exit        int
	phase       Phase
	wrote       bool
}{
	Updated:            {"updated", "updated", 0, PhaseSucceeded, true},
	RolledBack:         {"rolled-back", "rolled_back", 0, PhaseSucceeded, true},
	Promoted:           {"promoted", "promoted", 0, PhaseSucceeded, true},
	Published:          {"published", "published", 0, PhaseSucceeded, true},
	Migrated:           {"migrated", "migrated", 0, PhaseSucceeded, true},
	Notified:           {"notified", "notified", 0, PhaseSucceeded, true},
	AlreadyThere:       {"already-there", "already_there", 0, PhaseSucceeded, false},
	NewerPresent:       {"newer-present", "newer_release_present", 0, PhaseSucceeded, false},
	LastEnvironment:    {"last-environment", "last_environment", 0, PhaseSucceeded, false},
	NotARelease:        {"not-a-release", "not_release", 0, PhaseSucceeded, false},
	Stale:              {"stale", "stale", 0, PhaseSucceeded, false},
	AutoDeployDisabled: {"auto-deploy-disabled", "automatic_deploys_disabled", 0, PhaseSucceeded, false},
	NotPromotable:      {"not-promotable", "promote_deployment_false", 0, PhaseSucceeded, false},
	NoTagFile:          {"no-tag-file", "no_tag_file", 0, PhaseSucceeded, false},
	FrozenPastDeadline: {"frozen", "frozen", 0, PhaseSucceeded, false},
	HeldPastDeadline:   {"held-past-deadline", "held_past_deadline", 0, PhaseSucceeded, false},
	RolledBackFrom:     {"rolled-back-from", "rolled_back_from", 0, PhaseSucceeded, false},
	Passed:             {"passed", "passed", 0, PhaseSucceeded, false},
	Stopped:            {"stopped", "stopped", 0, PhaseSucceeded, false},
	DryRun:             {"dry-run", "dry_run", 0, PhaseSucceeded, false},
	NothingToReport:    {"nothing-to-report", "nothing_to_report", 0, PhaseSucceeded, false},
	FreezeWindow:       {"freeze-window", "freeze_window", 3, PhaseRunning, false},
	Soaking:            {"soaking", "soaking", 3, PhaseRunning, false},
	InProgress:         {"in-progress", "in_progress", 1, PhaseRunning, false},
	Held:               {"held", "held", 3, PhaseRunning, false},
	ExpectationFailed:  {"expectation-failed", "expectation_failed", 3, PhaseFailed, false},
	ChecksFailed:       {"checks-failed", "checks_failed", 1, PhaseFailed, false},
	Failed:             {"failed", "error", 1, PhaseFailed, false},
	Invalid:            {"invalid", "invalid", 2, PhaseFailed, false},
}

func TestEveryOutcomeIsInTheTable(t *testing.T) {
	require.Len(t, All(), len(want))
	names, labels := map[string]bool{}, map[string]bool{}
	for _, o := range All() {
		w, ok := want[o]
		require.True(t, ok, "outcome %d has no row", o)
		t.Run(w.name, func(t *testing.T) {
			assert.True(t, o.Valid())
			assert.Equal(t, w.name, o.String())
			assert.Equal(t, w.label, o.Label())
			assert.Equal(t, w.exit, o.ExitCode())
			assert.Equal(t, w.phase, o.Phase())
			assert.Equal(t, w.wrote, o.Wrote())
			assert.Equal(t, w.phase == PhaseRunning, o.Waiting())
			back, err := Parse(w.name)
			require.NoError(t, err)
			assert.Equal(t, o, back)
		})
		assert.False(t, names[w.name], "name %q used twice", w.name)
		assert.False(t, labels[w.label], "label %q used twice", w.label)
		names[w.name], labels[w.label] = true, true
	}
}

func TestNotAnOutcome(t *testing.T) {
	for _, o := range []Outcome{0, end, end + 1} {
		assert.False(t, o.Valid())
		assert.Equal(t, 1, o.ExitCode(), "an unknown outcome never exits 0")
		assert.Equal(t, PhaseFailed, o.Phase())
		assert.Equal(t, "unknown", o.Label())
	}
	_, err := Parse("promoted-ish")
	assert.EqualError(t, err, `unknown outcome "promoted-ish"`)
}

func TestForExitCode(t *testing.T) {
	assert.Equal(t, Failed, ForExitCode(1))
	assert.Equal(t, Invalid, ForExitCode(2))
	assert.Equal(t, ExpectationFailed, ForExitCode(3))
	assert.Equal(t, Failed, ForExitCode(7))
	for _, code := range []int{1, 2, 3} {
		assert.Equal(t, code, ForExitCode(code).ExitCode())
	}
}
