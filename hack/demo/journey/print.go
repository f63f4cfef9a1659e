package journey

import (
	"fmt"
	"io"
	"strings"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"

	"github.com/slipway-deploy/slipway/hack/demo/localargo"
	"github.com/slipway-deploy/slipway/internal/outcome"
)

// printer writes the demo's lines: one per step (or, brief, one per
// environment), with the demo's folder shown as it was given.
type printer struct {
	out   io.Writer
	brief bool
	dir   string // the folder as given (e.g. .cache/demo)
	abs   string // and as an absolute path
}

func (p *printer) printf(format string, args ...any) {
	if p.out != nil {
		fmt.Fprintf(p.out, format, args...)
	}
}

// show shortens the demo's absolute folder to the one given.
func (p *printer) show(s string) string {
	if p.abs == "" {
		return s
	}
	return strings.ReplaceAll(s, p.abs, p.dir)
}

func (p *printer) intro(w *world) {
	p.printf("Slipway demo: on loopback, with the binaries in %s/; its files in %s\n", w.cfg.Bin, p.dir)
	p.printf("  charts repo  %s  (git http-backend: %d environments x %d apps, all at %s)\n", w.gitURL, len(envs), len(apps), firstRelease)
	p.printf("  promoter     http://%s  (bin/promoter, config %s, the agent's token in %s)\n",
		w.promoterAddr, p.show(w.path("promoter.yaml")), p.show(w.path("secrets", "agent-token")))
	p.printf("  Slack        %s  (a stand-in for the incoming webhook)\n", w.slack.URL)
	var urls []string
	for _, env := range envs {
		urls = append(urls, env+" "+w.apps[env].url)
	}
	p.printf("  web apps     %s\n", strings.Join(urls, "  "))
	lock := "a file lock (no DATABASE_URL)"
	if w.cfg.DatabaseURL != "" {
		lock = "the database's lock (DATABASE_URL)"
	}
	p.printf("  migrate      under %s\n", lock)
}

// step prints a step's line (not brief).
func (p *printer) step(st Step) {
	if !p.brief {
		p.printf("  %-12s %-12s %-18s %s\n", st.Env, st.Phase, st.Name, p.show(st.Line))
	}
}

// step makes a node into a Step, with its line.
func (w *world) step(env, phase string, run *localargo.Run, n localargo.Node) Step {
	st := Step{Env: env, Phase: phase, Name: n.Template, Node: n, Outcome: outcomeOf(n)}
	if n.Template == "promote" {
		st.Name = "promoter"
	}
	st.Line = w.describe(env, run, n, st.Outcome)
	if st.Outcome.Valid() {
		st.Line += " (" + st.Outcome.String() + ")"
	}
	return st
}

// synced prints a sync's one line, when brief.
func (p *printer) synced(env string, s *synced) {
	if !p.brief {
		return
	}
	var parts []string
	for _, st := range s.steps {
		switch {
		case st.Name == "rollout":
			parts = append(parts, "rolled to "+s.tag)
		case st.Outcome.Valid():
			parts = append(parts, st.Name+" "+st.Outcome.String())
		}
	}
	p.printf("  %-12s %s %s: %s\n", env, demoApp, s.tag, strings.Join(parts, ", "))
}

// describe says what a step did, in a few words, from its outputs (or,
// for notify, from what Slack received).
func (w *world) describe(env string, run *localargo.Run, n localargo.Node, o outcome.Outcome) string {
	out := n.Outputs
	switch {
	case n.Phase == wfv1.NodeSkipped && n.Template == "approve":
		return fmt.Sprintf("skipped (approval-environments: %q)", run.Params["approval-environments"])
	case n.Phase == wfv1.NodeSkipped:
		return "skipped"
	case n.Phase != wfv1.NodeSucceeded:
		return fmt.Sprintf("%s (log: %s)", n.Message, n.Log)
	}
	switch n.Template {
	case "bump-tag":
		return fmt.Sprintf("%s %s -> %s in %s, commit %s", run.Params["app"], out["previous-tag"], run.Params["image-tag"],
			run.Params["environment"], short(out["commit"]))
	case "precompile-assets":
		line := fmt.Sprintf("%s files (%s bytes) published to %s", out["uploaded"], out["bytes"], run.Params["asset-destination"])
		if out["skipped"] != "0" {
			line += ", " + out["skipped"] + " already there"
		}
		return line
	case "migrate":
		lock := "the database's lock"
		if args := w.clusters[env].ExtraArgs["migrate"]; len(args) > 0 {
			lock = strings.TrimPrefix(args[0], "--lock=")
		}
		return fmt.Sprintf("%q in %s, %s, under %s", run.Params["migrate-command"], run.Params["app-image"], out["duration"], lock)
	case "smoke-test":
		return "checks against " + run.Params["smoke-base-url"] + ": " + out["summary"]
	case "promote":
		if o == outcome.Promoted {
			return fmt.Sprintf("promoted %s to %s, commit %s", run.Params["image-tag"], out["target-env"], short(out["commit"]))
		}
		return out["reason"]
	case "notify":
		posts := w.posts()
		if len(posts) == 0 {
			return "nothing reached Slack"
		}
		return fmt.Sprintf("posted %q", posts[len(posts)-1])
	}
	return n.Message
}

// gitLog prints the charts repo's history with its audit trailers.
func (p *printer) gitLog(w *world) error {
	log, err := w.gitOutput(w.repo, "log", "--format=%h %s%x1f%(trailers:only,unfold,separator=%x1f)%x1e", "main")
	if err != nil {
		return err
	}
	p.printf("\nThe charts repo's log, with the trailers every write leaves (git -C %s log):\n", p.show(w.repo))
	for _, c := range strings.Split(log, "\x1e") {
		c = strings.Trim(c, "\n")
		if c == "" {
			continue
		}
		fields := strings.Split(c, "\x1f")
		p.printf("  %s\n", fields[0])
		if trailers := strings.Join(fields[1:], "  "); strings.TrimSpace(trailers) != "" {
			p.printf("          %s\n", strings.TrimSpace(trailers))
		}
	}
	return nil
}

// rule prints a rule's lines.
func (p *printer) rule(r Rule) {
	for i, l := range r.Lines {
		name := r.Name
		if i > 0 {
			name = ""
		}
		p.printf("  %-9s %s\n", name, p.show(l))
	}
}
