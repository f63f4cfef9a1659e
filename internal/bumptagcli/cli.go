// Package bumptagcli declares bump-tag's flags and wires them to bumptag.
// It lives apart from main so tests run the real command in-process.
package bumptagcli

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/slipway-deploy/slipway/internal/bumptag"
	"github.com/slipway-deploy/slipway/internal/chartsrepo"
	"github.com/slipway-deploy/slipway/internal/exitcode"
	"github.com/slipway-deploy/slipway/internal/gitauth"
	"github.com/slipway-deploy/slipway/internal/gitwriter"
	"github.com/slipway-deploy/slipway/internal/outputs"
	"github.com/slipway-deploy/slipway/internal/release"
	"github.com/slipway-deploy/slipway/internal/stepcli"
	"github.com/slipway-deploy/slipway/internal/tagfile"
)

var env = stepcli.Env

// GitFlags are the git remote and auth flags, shared with the promoter.
func GitFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "git-token-file", EnvVars: env("git-token-file"),
			Usage: "file holding an HTTPS token, sent as basic auth (or set SLIPWAY_GIT_TOKEN)"},
		&cli.StringFlag{Name: "git-username", Value: gitauth.DefaultUsername, EnvVars: env("git-username"),
			Usage: "user name sent with the token"},
		&cli.StringFlag{Name: "ssh-key-file", EnvVars: env("ssh-key-file"), Usage: "private key for an ssh:// or git@host: remote"},
		&cli.StringFlag{Name: "known-hosts", EnvVars: env("known-hosts"),
			Usage: "known_hosts file the SSH host key is checked against (required for SSH; never skipped)"},
	}
}

// Step is the bump-tag command.
func Step() stepcli.Step {
	return stepcli.Step{
		Name:      "bump-tag",
		Usage:     "write an image tag into an environment's tag file in the charts repo and push it",
		UsageText: "bump-tag --repo URL --app NAME --env ENV --tag TAG [flags]",
		Description: `Sets image_tag (and promote_deployment) in the tag file of one app in one
environment, keeping every other byte of the file, and pushes the commit.
When another writer pushed first, it re-reads the branch and re-applies the
edit (bounded by --max-attempts). Re-running with the same inputs does nothing.
An older release never replaces a newer one unless --allow-downgrade is given.

The HTTPS token comes from --git-token-file or the SLIPWAY_GIT_TOKEN variable.

Exit codes: 0 done or nothing to do, 1 failed (a retry may help),
2 invalid input, 3 --expect-current did not hold.`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "repo", Required: true, EnvVars: env("repo"), Usage: "charts repo: https://, ssh://, file:// URL or a path"},
			&cli.StringFlag{Name: "branch", Value: "main", EnvVars: env("branch"), Usage: "branch to update"},
			&cli.StringFlag{Name: "app", Required: true, EnvVars: env("app"), Usage: "app name, e.g. frontend"},
			&cli.StringFlag{Name: "env", Required: true, EnvVars: env("env"), Usage: "environment, one of --environments"},
			&cli.StringFlag{Name: "tag", Required: true, EnvVars: env("tag"), Usage: "image tag to deploy, e.g. v42"},
			&cli.StringFlag{Name: "environments", Value: chartsrepo.DefaultChain, EnvVars: env("environments"), Usage: "the environment chain, in promotion order"},
			&cli.StringFlag{Name: "path-template", Value: chartsrepo.DefaultPathTemplate, EnvVars: env("path-template"), Usage: "tag file path in the repo"},
			&cli.StringFlag{Name: "release-pattern", Value: release.DefaultPattern, EnvVars: env("release-pattern"), Usage: "regexp of release (promotable) tags"},
			&cli.StringFlag{Name: "promote-deployment", EnvVars: env("promote-deployment"),
				Usage: "true or false (default: true when --tag matches --release-pattern)"},
			&cli.BoolFlag{Name: "allow-downgrade", EnvVars: env("allow-downgrade"), Usage: "allow an older release over a newer one (a rollback)"},
			&cli.StringFlag{Name: "expect-current", EnvVars: env("expect-current"), Usage: "only write if the file holds this tag now (compare-and-swap)"},
			&cli.BoolFlag{Name: "create", EnvVars: env("create"), Usage: "create the tag file if it does not exist"},
			&cli.StringFlag{Name: "strategy", Value: string(gitwriter.Direct), EnvVars: env("strategy"),
				Usage: "direct: push to --branch; branch: push update-image-tag/<app>/<env>/<tag>, merge it, delete it"},
			&cli.IntFlag{Name: "max-attempts", Value: 10, EnvVars: env("max-attempts"), Usage: "push attempts when other writers race us"},
			&cli.BoolFlag{Name: "dry-run", EnvVars: env("dry-run"), Usage: "print the diff and commit message; push nothing"},
			&cli.StringFlag{Name: "outputs-dir", EnvVars: env("outputs-dir"), Usage: "write Argo outputs changed, commit, previous-tag, reason here"},
			&cli.StringFlag{Name: "author-name", Value: "Slipway", EnvVars: env("author-name"), Usage: "commit author name"},
			&cli.StringFlag{Name: "author-email", Value: "slipway@localhost", EnvVars: env("author-email"), Usage: "commit author email"},
			&cli.StringFlag{Name: "message", Value: bumptag.DefaultMessage, EnvVars: env("message"),
				Usage: "commit message template (fields .App .Env .Tag .PreviousTag .Workflow)"},
			&cli.StringFlag{Name: "workflow", EnvVars: append(env("workflow"), "ARGO_WORKFLOW_UID"), Usage: "Argo workflow UID, recorded in the commit"},
			&cli.DurationFlag{Name: "timeout", Value: 5 * time.Minute, EnvVars: env("timeout"), Usage: "give up after this long"},
		}, GitFlags()...),
		Action: run,
	}
}

// Remote resolves --repo and the auth flags, registering secrets.
func Remote(c *cli.Context, rt *stepcli.Runtime) (*gitauth.Remote, error) {
	token := os.Getenv("SLIPWAY_GIT_TOKEN")
	rt.Redactor.Add(token)
	remote, err := gitauth.Resolve(c.String("repo"), gitauth.Options{
		Token: token, TokenFile: c.String("git-token-file"), Username: c.String("git-username"),
		SSHKeyFile: c.String("ssh-key-file"), KnownHosts: c.String("known-hosts"),
	})
	if remote != nil {
		rt.Redactor.Add(remote.Secrets...)
	}
	if err != nil {
		return nil, exitcode.AsInvalid(err)
	}
	return remote, nil
}

func run(ctx context.Context, c *cli.Context, rt *stepcli.Runtime) error {
	remote, err := Remote(c, rt)
	if err != nil {
		return err
	}
	layout, err := chartsrepo.NewLayout(c.String("path-template"), c.String("environments"), tagfile.DefaultKeys)
	if err != nil {
		return exitcode.AsInvalid(err)
	}
	policy, err := release.NewPolicy(c.String("release-pattern"))
	if err != nil {
		return exitcode.AsInvalid(err)
	}
	req := bumptag.Request{
		App: c.String("app"), Env: c.String("env"), Tag: c.String("tag"),
		AllowDowngrade: c.Bool("allow-downgrade"), ExpectCurrent: c.String("expect-current"),
		Create: c.Bool("create"), Workflow: c.String("workflow"), Message: c.String("message"),
		DryRun: c.Bool("dry-run"),
	}
	if v := c.String("promote-deployment"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return exitcode.Invalidf("--promote-deployment %q: want true or false", v)
		}
		req.Promote = &b
	}
	strategy := gitwriter.Strategy(c.String("strategy"))
	if strategy != gitwriter.Direct && strategy != gitwriter.Branch {
		return exitcode.Invalidf("--strategy %q: want direct or branch", strategy)
	}
	if c.Int("max-attempts") < 1 {
		return exitcode.Invalidf("--max-attempts must be at least 1")
	}
	ctx, cancel := context.WithTimeout(ctx, c.Duration("timeout"))
	defer cancel()

	writer := gitwriter.New(gitwriter.Options{
		URL: remote.URL, Auth: remote.Auth, Branch: c.String("branch"), Strategy: strategy,
		AuthorName: c.String("author-name"), AuthorEmail: c.String("author-email"),
		MaxAttempts: c.Int("max-attempts"), Log: rt.Log,
	})
	log := rt.Log.With("app", req.App, "env", req.Env, "tag", req.Tag)
	log.Debug("bumping tag", "repo", remote.Display, "branch", c.String("branch"))
	res, err := bumptag.Run(ctx, bumptag.Config{Layout: layout, Policy: policy, Writer: writer}, req)
	if err != nil {
		return err
	}
	if req.DryRun {
		if res.Diff == "" {
			fmt.Fprintf(rt.Stdout, "no change: %s\n", res.Reason)
		} else {
			fmt.Fprintf(rt.Stdout, "%s\n%s", res.Diff, indent(res.Message))
		}
		log.Info("dry run: nothing pushed", "path", res.Path, "reason", res.Reason)
		return nil
	}
	if err := outputs.Write(c.String("outputs-dir"), res.Outputs()); err != nil {
		return err
	}
	switch {
	case res.Changed:
		log.Info(res.Reason, "path", res.Path, "previous_tag", res.PreviousTag, "commit", res.Commit, "attempts", res.Attempts)
	default:
		log.Info("nothing to do: "+res.Reason, "path", res.Path, "commit", res.Commit)
	}
	return nil
}

// indent shows a commit message the way git log does.
func indent(msg string) string {
	var b strings.Builder
	b.WriteString("commit message:\n")
	for _, line := range strings.Split(strings.TrimRight(msg, "\n"), "\n") {
		b.WriteString("    " + line + "\n")
	}
	return b.String()
}
