package promoterserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/renameio/v2"

	"github.com/slipway-deploy/slipway/internal/chartsrepo"
	"github.com/slipway-deploy/slipway/internal/exitcode"
	"github.com/slipway-deploy/slipway/internal/gitauth"
	"github.com/slipway-deploy/slipway/internal/githistory"
	"github.com/slipway-deploy/slipway/internal/gitwriter"
	"github.com/slipway-deploy/slipway/internal/holds"
	"github.com/slipway-deploy/slipway/internal/oneline"
	"github.com/slipway-deploy/slipway/internal/outcome"
	"github.com/slipway-deploy/slipway/internal/plan"
	"github.com/slipway-deploy/slipway/internal/redact"
)

// Command is what every command of the promoter binary run by a person
// (plan, hold, unhold) shares with the server: the plugin's own
// configuration, and the git flags laid over it.
type Command struct {
	ConfigPath, ConfigYAML string
	Git                    gitauth.Options
	Log                    *slog.Logger
	Redactor               *redact.Redactor
	Stdout                 io.Writer
	// Now is the clock (time.Now by default).
	Now func() time.Time
}

func (c *Command) open() (*Config, *gitauth.Remote, error) {
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Redactor == nil {
		c.Redactor = &redact.Redactor{}
	}
	if c.Stdout == nil {
		c.Stdout = io.Discard
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return open(c.ConfigPath, c.ConfigYAML, c.Git, c.Redactor)
}

// writer is the conflict-safe writer every promotion uses, for the holds
// file.
func (c *Command) writer(cfg *Config, remote *gitauth.Remote) *gitwriter.Writer {
	f := cfg.File
	return gitwriter.New(gitwriter.Options{URL: remote.URL, Auth: remote.Auth, Branch: f.Repo.Branch, Strategy: cfg.Strategy,
		AuthorName: f.Git.AuthorName, AuthorEmail: f.Git.AuthorEmail, MaxAttempts: f.Git.MaxAttempts, Log: c.Log, Now: c.Now})
}

// HoldSettings are `promoter hold` and `promoter unhold`: the scope (comma
// lists; "*" for all), why, who, and for a hold, until when.
type HoldSettings struct {
	Command
	Envs, Apps        string
	Reason, Until, By string
}

// HoldResult is how a hold or an unhold ended.
type HoldResult struct {
	Outcome outcome.Outcome
	Reason  string
	Commit  string
	// Holds are the holds added or lifted.
	Holds []holds.Hold
}

// Report is the command's result line.
func (r HoldResult) Report() outcome.Result {
	return outcome.Result{Outcome: r.Outcome, Reason: r.Reason, Attrs: []any{"commit", r.Commit}}
}

// scope checks the environments and apps a hold names.
func scope(cfg *Config, envs, apps string) (e, a []string, err error) {
	for _, s := range strings.Split(envs, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if s != holds.All {
			if _, err := cfg.Layout.ParseEnv(s); err != nil {
				return nil, nil, exitcode.Invalidf("--env: %v", err)
			}
		}
		e = append(e, s)
	}
	if len(e) == 0 {
		return nil, nil, exitcode.Invalidf("--env is required (a comma list, or %q for every environment)", holds.All)
	}
	for _, s := range strings.Split(apps, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if s != holds.All {
			if err := chartsrepo.ValidateApp(s); err != nil {
				return nil, nil, exitcode.Invalidf("--app: %v", err)
			}
		}
		a = append(a, s)
	}
	return e, a, nil
}

func who(by string) (string, error) {
	if by = strings.TrimSpace(by); by != "" {
		return by, nil
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username, nil
	}
	return "", exitcode.Invalidf("--by is required: who sets the hold")
}

// editFunc is one command's change to the holds file at one attempt's
// head (chain: the environments; res: its result so far).
type editFunc func(cur gitwriter.Current, chain []string, res *HoldResult) (gitwriter.Edit, error)

// write checks the scope, lets prepare check the rest and make the edit,
// and commits it to the holds file through the writer every promotion uses
// (another writer's commit meanwhile is kept; the edit runs again on it).
func (st *HoldSettings) write(ctx context.Context, name string, prepare func(cfg *Config, envs, apps []string) (editFunc, error)) (HoldResult, error) {
	cfg, remote, err := st.open()
	if err != nil {
		return HoldResult{}, err
	}
	envs, apps, err := scope(cfg, st.Envs, st.Apps)
	if err != nil {
		return HoldResult{}, err
	}
	edit, err := prepare(cfg, envs, apps)
	if err != nil {
		return HoldResult{}, err
	}
	path, chain := cfg.Layout.HoldsFile(), cfg.Layout.Chain()
	res := HoldResult{Outcome: outcome.Updated}
	wres, err := st.writer(cfg, remote).Write(ctx, path, fmt.Sprintf("slipway-%s/%d", name, st.Now().Unix()), func(cur gitwriter.Current) (gitwriter.Edit, error) {
		if cur.Exists {
			if _, err := holds.Parse(cur.Content, chain); err != nil {
				return gitwriter.Edit{}, exitcode.Invalidf("%s: %v: fix it in a commit first (until then it holds everything)", path, err)
			}
		}
		return edit(cur, chain, &res)
	}, false)
	res.Reason, res.Commit = wres.Edit.Reason, wres.Commit
	if err != nil {
		if errors.Is(err, gitwriter.ErrBranchNotFound) {
			err = exitcode.AsInvalid(err)
		}
		return HoldResult{Outcome: outcome.Failed}, fmt.Errorf("write %s: %w", path, err)
	}
	return res, nil
}

// Hold adds a hold to the holds file, as one commit; the same hold again
// adds nothing.
func Hold(ctx context.Context, st HoldSettings) (HoldResult, error) {
	return st.write(ctx, "hold", func(cfg *Config, envs, apps []string) (editFunc, error) {
		if len(apps) == 0 {
			apps = []string{holds.All}
		}
		now := st.Now().UTC().Truncate(time.Second)
		h := holds.Hold{Environments: envs, Apps: apps, Reason: oneline.Fold(strings.TrimSpace(st.Reason)), Since: now}
		if h.Reason == "" {
			return nil, exitcode.Invalidf("--reason is required: everyone sees why the line stopped")
		}
		var err error
		if h.By, err = who(st.By); err != nil {
			return nil, err
		}
		if h.Until, err = holds.ParseUntil(st.Until, now); err != nil {
			return nil, exitcode.AsInvalid(err)
		}
		return func(cur gitwriter.Current, chain []string, res *HoldResult) (gitwriter.Edit, error) {
			existing, _ := holds.Parse(cur.Content, chain) // parsed by write
			res.Holds = []holds.Hold{h}
			if slices.ContainsFunc(existing, func(x holds.Hold) bool { return holds.Same(x, h) && x.Active(now) }) {
				res.Outcome = outcome.AlreadyThere
				return gitwriter.Edit{Reason: "already held: " + h.Name() + ", covering " + h.Scope()}, nil
			}
			out, err := holds.Add(cur.Content, h, chain)
			if err != nil {
				return gitwriter.Edit{}, exitcode.AsInvalid(err)
			}
			msg := fmt.Sprintf("Hold %s: %s\n\nSlipway-Hold-By: %s\n", h.Scope(), h.Reason, h.By)
			if !h.Until.IsZero() {
				msg += "Slipway-Hold-Until: " + h.Until.Format(time.RFC3339) + "\n"
			}
			return gitwriter.Edit{Changed: true, Content: out, Message: msg, Reason: "held: " + h.String() + ", covering " + h.Scope()}, nil
		}, nil
	})
}

// Unhold lifts the holds that lie within the scope (every environment and
// app of the hold named by --env and --app; no --app: any apps): never a
// wider hold, which it names instead.
func Unhold(ctx context.Context, st HoldSettings) (HoldResult, error) {
	return st.write(ctx, "unhold", func(cfg *Config, envs, apps []string) (editFunc, error) {
		by, err := who(st.By)
		if err != nil {
			return nil, err
		}
		now := st.Now()
		return func(cur gitwriter.Current, chain []string, res *HoldResult) (gitwriter.Edit, error) {
			out, lifted, err := holds.Remove(cur.Content, chain, func(h holds.Hold) bool { return h.Within(envs, apps) })
			if err != nil {
				return gitwriter.Edit{}, exitcode.AsInvalid(err)
			}
			res.Holds, res.Outcome = lifted, outcome.Updated
			left, _ := holds.Parse(out, chain)
			still := ""
			if i := slices.IndexFunc(left, func(h holds.Hold) bool { return overlaps(h, envs, apps) && h.Active(now) }); i >= 0 {
				still = fmt.Sprintf("; still held by %s, covering %s (wider than asked: lift it by its own scope)", left[i].Name(), left[i].Scope())
			}
			if len(lifted) == 0 {
				res.Outcome = outcome.AlreadyThere
				return gitwriter.Edit{Reason: fmt.Sprintf("no hold within %s (%s) to lift%s", strings.Join(envs, ", "), appsOr(apps), still)}, nil
			}
			names := make([]string, len(lifted))
			for i, h := range lifted {
				names[i] = h.Name() + ", covering " + h.Scope()
			}
			msg := fmt.Sprintf("Lift %s\n\n", strings.Join(names, "; "))
			if r := oneline.Fold(strings.TrimSpace(st.Reason)); r != "" {
				msg += r + "\n\n"
			}
			msg += "Slipway-Unhold-By: " + by + "\n"
			return gitwriter.Edit{Changed: true, Content: out, Message: msg, Reason: "lifted: " + strings.Join(names, "; ") + still}, nil
		}, nil
	})
}

func appsOr(apps []string) string {
	if len(apps) == 0 {
		return "any app"
	}
	return strings.Join(apps, ", ")
}

// overlaps reports whether h holds any of envs x apps (no apps: any).
func overlaps(h holds.Hold, envs, apps []string) bool {
	anyOf := func(have, want []string) bool {
		return len(want) == 0 || slices.Contains(have, holds.All) || slices.Contains(want, holds.All) ||
			slices.ContainsFunc(want, func(w string) bool { return slices.Contains(have, w) })
	}
	return anyOf(h.Environments, envs) && anyOf(h.Apps, apps)
}

// PlanSettings are `promoter plan`.
type PlanSettings struct {
	Command
	Apps        string
	Output      string
	Drift       time.Duration
	FailOnDrift bool
	// HistoryDepth bounds the history the plan reads (0: all of it).
	HistoryDepth int
	// OutputFile, when set, gets the plan instead of Stdout, written whole
	// once the plan is made (drift or not): a plan that could not be made
	// leaves no file, so a workflow tells "drift" (exit 1, a file) from "the
	// charts repo could not be read" (exit 1, none).
	OutputFile string
}

// Plan reads the charts repo once and prints what runs where, what the
// promoter would decide now, and the drift.
func Plan(ctx context.Context, st PlanSettings) (plan.Result, error) {
	cfg, remote, err := st.open()
	if err != nil {
		return plan.Result{}, err
	}
	_, appNames, err := scope(cfg, holds.All, st.Apps)
	if err != nil {
		return plan.Result{}, err
	}
	var apps []chartsrepo.App
	for _, a := range appNames {
		if a == holds.All {
			apps = nil
			break
		}
		app, _ := chartsrepo.ParseApp(a) // checked by scope
		apps = append(apps, app)
	}
	if st.HistoryDepth < 0 {
		return plan.Result{}, exitcode.Invalidf("--history-depth must not be negative")
	}
	out := st.Stdout
	var buf bytes.Buffer
	if st.OutputFile != "" {
		if err := clearOutputFile(st.OutputFile); err != nil {
			return plan.Result{}, err
		}
		out = &buf
	}
	res, err := plan.Run(ctx, plan.Config{
		Layout: cfg.Layout, Policy: cfg.Policy, HistoryDepth: cfg.File.Git.HistoryDepth,
		Repo: githistory.Options{URL: remote.URL, Auth: remote.Auth, Branch: cfg.File.Repo.Branch, Depth: st.HistoryDepth},
		Apps: apps, Drift: st.Drift, Format: st.Output, FailOnDrift: st.FailOnDrift, Out: out, Now: st.Now,
	})
	if buf.Len() > 0 { // printed: the plan was made
		if werr := renameio.WriteFile(st.OutputFile, []byte(st.Redactor.String(buf.String())), 0o644); werr != nil {
			return res, fmt.Errorf("write the plan to --output-file: %w", werr)
		}
	}
	return res, err
}

// clearOutputFile removes what a run before left at path, and checks that
// its folder takes a file, before the charts repo is read: a plan that then
// fails leaves no file, and a path that cannot be written is invalid input
// (exit 2), not a failure a retry would fix.
func clearOutputFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return exitcode.Invalidf("--output-file: %v", err)
	}
	probe, err := os.CreateTemp(filepath.Dir(path), ".plan-probe-*")
	if err != nil {
		return exitcode.Invalidf("--output-file: %v", err)
	}
	cerr := probe.Close()
	if err := errors.Join(cerr, os.Remove(probe.Name())); err != nil {
		return exitcode.Invalidf("--output-file: %v", err)
	}
	return nil
}
