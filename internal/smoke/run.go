package smoke

import (
	"context"
	"io"
	"log/slog"
	"strconv"

	"github.com/slipway-deploy/slipway/internal/outcome"
)

// Outputs are the Argo outputs a Result carries besides `outcome`.
var Outputs = []string{"passed", "failed", "summary"}

// Run is the smoke-test step: prepare the plan (every input error is exit
// 2, before anything is requested), run the checks and the suite, print
// them, and write the reports asked for, masked. Failing checks are not an
// error: the Result says ChecksFailed.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Stdout == nil {
		cfg.Stdout = io.Discard
	}
	if cfg.Stderr == nil {
		cfg.Stderr = io.Discard
	}
	if cfg.Mask == nil {
		cfg.Mask = func(s string) string { return s }
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	plan, err := Prepare(cfg)
	if err != nil {
		return Result{}, err
	}
	if cfg.DryRun {
		return Result{DryRun: true, Planned: len(plan.Checks)}, plan.Describe(cfg.Stdout)
	}
	// masked before anything is encoded (JSON, XML escape what the mask looks for)
	res := plan.Run(ctx, cfg.Stdout, cfg.Stderr).Masked(cfg.Mask)
	if err := res.WriteText(cfg.Stdout); err != nil {
		return res, err
	}
	return res, res.writeReports(cfg)
}

// writeReports writes the report files asked for from the masked result;
// the encoded bytes are masked again as a safety net.
func (r Result) writeReports(cfg Config) error {
	for _, report := range []struct {
		path   string
		encode func() ([]byte, error)
	}{{cfg.JUnitOutput, r.JUnitXML}, {cfg.JSONOutput, r.JSON}} {
		if report.path == "" {
			continue
		}
		data, err := report.encode()
		if err != nil {
			return err
		}
		if err := writeFile(report.path, []byte(cfg.Mask(string(data)))); err != nil {
			return err
		}
	}
	return nil
}

// Report is the outcome: Passed, ChecksFailed (exit 1, "smoke tests
// failed: <summary>"), or DryRun; the counts are outputs once checks ran.
func (r Result) Report() outcome.Result {
	if r.DryRun {
		return outcome.Result{Outcome: outcome.DryRun, Reason: "dry run: nothing requested", Attrs: []any{"checks", r.Planned}}
	}
	t := r.Tally()
	res := outcome.Result{Outcome: outcome.Passed, Reason: "smoke tests passed: " + r.Summary(), Event: "smoke tests passed",
		Attrs: []any{"passed", t.Passed, "failed", t.Failed, "skipped", t.Skipped}}
	if !r.OK() {
		res.Outcome, res.Reason, res.Event = outcome.ChecksFailed, "smoke tests failed: "+r.Summary(), ""
	}
	if r.ran {
		res.Outputs = map[string]string{"passed": strconv.Itoa(t.Passed), "failed": strconv.Itoa(t.Failed), "summary": r.Summary()}
	}
	return res
}
