// Package outcome is the one list of ways a step or a promotion can end.
// Every step's Run and the promoter return a Result carrying one Outcome;
// the exit code, the Argo node phase, the metric label and whether
// something was written are properties of the Outcome, looked up here, so
// no caller ever matches a sentence to learn what happened.
package outcome

import (
	"fmt"
	"time"

	"github.com/slipway-deploy/slipway/internal/exitcode"
)

// Outcome is how a step or a promotion ended.
type Outcome uint8

// The outcomes. The zero value is not an outcome: a Result must say.
const (
	_ Outcome = iota

	// Something was written.

	Updated    // bump-tag wrote the tag
	RolledBack // bump-tag wrote an older release over a newer one, as asked
	Promoted   // the promoter wrote the tag into the next environment
	Published  // precompile-assets uploaded at least one object
	Migrated   // migrate ran the command or applied pending files
	Notified   // notify posted the message

	// Nothing needed doing, or the rules said no: done, nothing written.

	AlreadyThere       // the target already holds it: a re-run
	NewerPresent       // the target runs a newer release (no downgrade)
	LastEnvironment    // no environment after this one
	NotARelease        // the tag is not a release: branch deploys stay put
	Stale              // the source runs another tag now
	AutoDeployDisabled // automatic_deploys_enabled is false in the source
	NotPromotable      // promote_deployment is false in the source
	NoTagFile          // the target has no tag file for the app
	FrozenPastDeadline // a freeze lasts past the decision deadline: given up
	HeldPastDeadline   // a hold lasts past the decision deadline: given up
	RolledBackFrom     // the target was rolled back from this tag: not promoted into it again
	Passed             // every smoke check and test passed
	Stopped            // a server (the promoter) stopped on SIGTERM, its work in flight done
	DryRun             // --dry-run: said what it would do, wrote nothing
	NothingToReport    // notify: the report was empty, so nothing was posted

	// Not yet: ask again later (Argo node Running, with a requeue).

	FreezeWindow // a freeze covers the target now
	Soaking      // the release has not been in the source long enough
	InProgress   // the work goes on past the reply budget
	Held         // a hold in the charts repo covers the target (bump-tag: refused)

	// Refused: the step fails without a retry.

	ExpectationFailed // --expect-current did not hold

	// Failed.

	ChecksFailed // a smoke check or test failed (a retry may help)
	Failed       // an error a retry may fix
	Invalid      // invalid input or configuration: never retry

	end
)

// Phase is the Argo node phase an outcome maps to (Argo's own spelling).
type Phase string

// The phases a promoter reply uses.
const (
	PhaseSucceeded Phase = "Succeeded"
	PhaseRunning   Phase = "Running"
	PhaseFailed    Phase = "Failed"
)

const (
	exitOK      = exitcode.OK
	exitFailed  = exitcode.Failed
	exitInvalid = exitcode.Invalid
	exitHeld    = exitcode.Held
)

type facts struct {
	name  string // the outcome's name: the `outcome` output, logs, JSON
	label string // the metric label (Prometheus style)
	exit  int
	phase Phase
	wrote bool
}

var table = [end]facts{
	Updated:    {"updated", "updated", exitOK, PhaseSucceeded, true},
	RolledBack: {"rolled-back", "rolled_back", exitOK, PhaseSucceeded, true},
	Promoted:   {"promoted", "promoted", exitOK, PhaseSucceeded, true},
	Published:  {"published", "published", exitOK, PhaseSucceeded, true},
	Migrated:   {"migrated", "migrated", exitOK, PhaseSucceeded, true},
	Notified:   {"notified", "notified", exitOK, PhaseSucceeded, true},

	AlreadyThere:       {"already-there", "already_there", exitOK, PhaseSucceeded, false},
	NewerPresent:       {"newer-present", "newer_release_present", exitOK, PhaseSucceeded, false},
	LastEnvironment:    {"last-environment", "last_environment", exitOK, PhaseSucceeded, false},
	NotARelease:        {"not-a-release", "not_release", exitOK, PhaseSucceeded, false},
	Stale:              {"stale", "stale", exitOK, PhaseSucceeded, false},
	AutoDeployDisabled: {"auto-deploy-disabled", "automatic_deploys_disabled", exitOK, PhaseSucceeded, false},
	NotPromotable:      {"not-promotable", "promote_deployment_false", exitOK, PhaseSucceeded, false},
	NoTagFile:          {"no-tag-file", "no_tag_file", exitOK, PhaseSucceeded, false},
	FrozenPastDeadline: {"frozen", "frozen", exitOK, PhaseSucceeded, false},
	HeldPastDeadline:   {"held-past-deadline", "held_past_deadline", exitOK, PhaseSucceeded, false},
	RolledBackFrom:     {"rolled-back-from", "rolled_back_from", exitOK, PhaseSucceeded, false},
	Passed:             {"passed", "passed", exitOK, PhaseSucceeded, false},
	Stopped:            {"stopped", "stopped", exitOK, PhaseSucceeded, false},
	DryRun:             {"dry-run", "dry_run", exitOK, PhaseSucceeded, false},
	NothingToReport:    {"nothing-to-report", "nothing_to_report", exitOK, PhaseSucceeded, false},

	FreezeWindow: {"freeze-window", "freeze_window", exitHeld, PhaseRunning, false},
	Soaking:      {"soaking", "soaking", exitHeld, PhaseRunning, false},
	InProgress:   {"in-progress", "in_progress", exitFailed, PhaseRunning, false},
	Held:         {"held", "held", exitHeld, PhaseRunning, false},

	ExpectationFailed: {"expectation-failed", "expectation_failed", exitHeld, PhaseFailed, false},

	ChecksFailed: {"checks-failed", "checks_failed", exitFailed, PhaseFailed, false},
	Failed:       {"failed", "error", exitFailed, PhaseFailed, false},
	Invalid:      {"invalid", "invalid", exitInvalid, PhaseFailed, false},
}

func (o Outcome) facts() facts {
	if o == 0 || o >= end {
		return facts{name: fmt.Sprintf("outcome(%d)", uint8(o)), label: "unknown", exit: exitFailed, phase: PhaseFailed}
	}
	return table[o]
}

// String is the outcome's name, e.g. "already-there": the value of every
// step's `outcome` output.
func (o Outcome) String() string { return o.facts().name }

// Label is the outcome as a metric label value, e.g. "already_there".
func (o Outcome) Label() string { return o.facts().label }

// ExitCode is the exit code of a step that ends with o.
func (o Outcome) ExitCode() int { return o.facts().exit }

// Phase is the Argo node phase of a plugin reply that ends with o.
func (o Outcome) Phase() Phase { return o.facts().phase }

// Wrote reports whether o means something was written (a commit, an
// upload, a migration).
func (o Outcome) Wrote() bool { return o.facts().wrote }

// Waiting reports whether o means "not yet: ask again later".
func (o Outcome) Waiting() bool { return o.facts().phase == PhaseRunning }

// Valid reports whether o is one of the outcomes above.
func (o Outcome) Valid() bool { return o > 0 && o < end }

// All lists every outcome, in declaration order (for tables and docs).
func All() []Outcome {
	out := make([]Outcome, 0, int(end)-1)
	for o := Outcome(1); o < end; o++ {
		out = append(out, o)
	}
	return out
}

// Parse reads an outcome's name back (from an `outcome` output).
func Parse(name string) (Outcome, error) {
	for _, o := range All() {
		if o.String() == name {
			return o, nil
		}
	}
	return 0, fmt.Errorf("unknown outcome %q", name)
}

// ForExitCode is the outcome of an error that carries exit code code.
func ForExitCode(code int) Outcome {
	switch code {
	case exitInvalid:
		return Invalid
	case exitHeld:
		return ExpectationFailed
	default:
		return Failed
	}
}

// Result is what every step's Run (and the promoter's Promote) reports:
// the outcome, the sentence that explains it, and what goes to Argo.
// stepcli alone turns it into the log line, the outputs files and the exit
// code.
type Result struct {
	Outcome Outcome
	// Reason is the sentence a person reads: why this outcome, one line.
	Reason string
	// Event is the log line's message when it differs from Reason.
	Event string
	// Attrs are the log line's attributes, key then value.
	Attrs []any
	// Outputs are the Argo output parameters besides `outcome`.
	Outputs map[string]string
	// Requeue is when to ask again (waiting outcomes).
	Requeue time.Duration
}

// Report makes a Result its own Reporter.
func (r Result) Report() Result { return r }

// Reporter is a step's own typed result, able to say its Result.
type Reporter interface {
	Report() Result
}
