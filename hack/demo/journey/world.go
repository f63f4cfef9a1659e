package journey

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/argoproj/argo-workflows/v3/pkg/plugins/executor"

	"github.com/slipway-deploy/slipway/hack/demo/localargo"
	"github.com/slipway-deploy/slipway/internal/chartsrepo"
	"github.com/slipway-deploy/slipway/internal/tagfile"
	"github.com/slipway-deploy/slipway/internal/testsupport/gitserver"
	"github.com/slipway-deploy/slipway/internal/testsupport/serverproc"
	"github.com/slipway-deploy/slipway/internal/testsupport/slackserver"
)

// The charts repo the demo generates: GOV.UK's layout, every app at v1
// everywhere.
var (
	envs = []string{"integration", "staging", "production"}
	apps = []string{"frontend", "publisher", "router"}
)

// binaries are what the demo runs, as make build leaves them.
var binaries = []string{"bump-tag", "precompile-assets", "migrate", "smoke-test", "notify", "promoter"}

const (
	firstRelease = "v1"
	gitUser      = "x-access-token" // what bump-tag and the promoter send by default
	namespace    = "apps"
	// marker is the file that says a folder is the demo's own, so that
	// wiping it at the start never removes anything else.
	marker = ".slipway-demo"
)

// world is everything the demo runs on loopback: the charts repo's git
// server, one web server per environment, the Slack stand-in, the
// promoter, and an Argo Workflows per environment (localargo).
type world struct {
	cfg      Config
	dir      string // absolute
	layout   *chartsrepo.Layout
	repo     string // the bare charts repo
	gitURL   string
	images   *images
	pipeline *localargo.Pipeline
	apps     map[string]*webApp
	clusters map[string]*localargo.Cluster
	slack    *slackserver.Server
	secrets  struct{ git, agent, webhook string }

	promoter     *serverproc.Process
	promoterAddr string
	// promoterStarts numbers its logs (logs/promoter-N.log).
	promoterStarts int
	// onRunning, when set, is told of each Running reply of the promoter.
	onRunning func(localargo.Node, time.Duration)

	stops []func() // closes what was started, last first
}

// start makes the demo's folder and starts everything on loopback.
func start(ctx context.Context, cfg Config) (*world, error) {
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	if err := fresh(dir); err != nil {
		return nil, err
	}
	w := &world{cfg: cfg, dir: dir, apps: map[string]*webApp{}, clusters: map[string]*localargo.Cluster{}}
	bin, err := filepath.Abs(cfg.Bin)
	if err != nil {
		return w, err
	}
	for _, b := range binaries {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			return w, fmt.Errorf("%s/%s is missing: build the binaries first (make build)", cfg.Bin, b)
		}
	}
	w.images = &images{dir: w.path("images"), bin: bin, pod: w.path("pods")}
	if w.layout, err = chartsrepo.NewLayout(chartsrepo.DefaultPathTemplate, strings.Join(envs, ","), tagfile.DefaultKeys); err != nil {
		return w, err
	}
	if w.pipeline, err = localargo.Load(cfg.Workflows); err != nil {
		return w, err
	}
	w.secrets.git, w.secrets.agent = "demo-git-"+randomHex(12), "demo-agent-"+randomHex(12)
	for _, f := range []func() error{w.startGit, w.startSlack, w.startApps} {
		if err := f(); err != nil {
			return w, err
		}
	}
	w.stops = append(w.stops, func() { _ = w.stopPromoter() })
	if err := w.startPromoter(ctx, nil); err != nil {
		return w, err
	}
	if err := os.MkdirAll(w.path("locks"), 0o755); err != nil {
		return w, err
	}
	w.makeClusters()
	return w, nil
}

// fresh empties dir if it is the demo's (or new), and marks it.
func fresh(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return err
	case len(entries) > 0:
		if _, err := os.Stat(filepath.Join(dir, marker)); err != nil {
			return fmt.Errorf("%s is not empty and not the demo's own (no %s): not wiping it", dir, marker)
		}
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
	}
	return writeFile(filepath.Join(dir, marker), "made by make demo (hack/demo); wiped by its next run\n", 0o644)
}

func (w *world) path(elem ...string) string {
	return filepath.Join(append([]string{w.dir}, elem...)...)
}

// stop closes everything started, last first.
func (w *world) stop() {
	for i := len(w.stops) - 1; i >= 0; i-- {
		w.stops[i]()
	}
	w.stops = nil
}

// serve serves h on a loopback port until the demo stops.
func (w *world) serve(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	w.stops = append(w.stops, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			srv.Close()
		}
	})
	return "http://" + ln.Addr().String(), nil
}

// startGit makes the charts repo (three environments, three apps, v1
// everywhere) and serves it with git http-backend, basic auth enforced.
func (w *world) startGit() error {
	root := w.path("git")
	w.repo = filepath.Join(root, "charts.git")
	if err := w.git("", "init", "-q", "--bare", "--initial-branch=main", w.repo); err != nil {
		return err
	}
	if err := w.git(w.repo, "config", "http.receivepack", "true"); err != nil {
		return err
	}
	seed := w.path("seed")
	if err := w.git("", "clone", "-q", w.repo, seed); err != nil {
		return err
	}
	for _, env := range envs {
		for _, app := range apps {
			p, err := w.tagPath(env, app)
			if err != nil {
				return err
			}
			content := fmt.Sprintf("# %s in %s\nimage_tag: %s\nautomatic_deploys_enabled: true\npromote_deployment: true\n", app, env, firstRelease)
			if err := writeFile(filepath.Join(seed, p), content, 0o644); err != nil {
				return err
			}
		}
	}
	for _, args := range [][]string{{"add", "-A"}, {"commit", "-q", "-m", "Seed charts repo: 3 environments x 3 apps at " + firstRelease}, {"push", "-q", "origin", "HEAD:main"}} {
		if err := w.git(seed, args...); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(seed); err != nil {
		return err
	}
	srv, err := gitserver.New(root, gitUser, w.secrets.git)
	if err != nil {
		return err
	}
	base, err := w.serve(srv)
	w.gitURL = base + "/charts.git"
	return err
}

// git runs the git command line with a fixed identity and no user config.
func (w *world) git(dir string, args ...string) error {
	_, err := w.gitOutput(dir, args...)
	return err
}

func (w *world) gitOutput(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Demo seed", "GIT_AUTHOR_EMAIL=seed@demo.invalid",
		"GIT_COMMITTER_NAME=Demo seed", "GIT_COMMITTER_EMAIL=seed@demo.invalid", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_TERMINAL_PROMPT=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %v: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimRight(string(out), "\n"), nil
}

func (w *world) tagPath(env, app string) (string, error) {
	e, err := w.layout.ParseEnv(env)
	if err != nil {
		return "", err
	}
	a, err := chartsrepo.ParseApp(app)
	if err != nil {
		return "", err
	}
	return w.layout.TagFile(e, a)
}

// tag reads env's tag file for app at main's head.
func (w *world) tag(env, app string) (string, error) {
	p, err := w.tagPath(env, app)
	if err != nil {
		return "", err
	}
	src, err := w.gitOutput(w.repo, "show", "main:"+p)
	if err != nil {
		return "", err
	}
	f, err := tagfile.Parse([]byte(src), tagfile.DefaultKeys)
	if err != nil {
		return "", fmt.Errorf("%s: %w", p, err)
	}
	tag, ok := f.Tag()
	if !ok {
		return "", fmt.Errorf("%s: no image_tag", p)
	}
	return tag, nil
}

// programTB lets the demo, a program, start slackserver, which is written
// for tests: slackserver.Start calls only Helper and Cleanup (the embedded
// TB is nil, so anything else would panic loudly rather than pass).
type programTB struct {
	testing.TB
	cleanups []func()
}

func (p *programTB) Helper()          {}
func (p *programTB) Cleanup(f func()) { p.cleanups = append(p.cleanups, f) }

// startSlack starts the stand-in for Slack's incoming webhook.
func (w *world) startSlack() error {
	tb := &programTB{}
	w.slack = slackserver.Start(tb)
	w.stops = append(w.stops, func() {
		for i := len(tb.cleanups) - 1; i >= 0; i-- {
			tb.cleanups[i]()
		}
	})
	w.secrets.webhook = w.slack.URL + "/services/T0DEMO/B0DEMO/" + randomHex(12)
	return nil
}

// posts are the headlines Slack received, in order.
func (w *world) posts() []string {
	var out []string
	for _, p := range w.slack.Posts() {
		var msg struct{ Text string }
		if json.Unmarshal(p.Body, &msg) == nil {
			out = append(out, msg.Text)
		}
	}
	return out
}

// startApps starts each environment's web server, every app rolled to
// what its tag file says, with that release's assets already published
// (the world before the demo).
func (w *world) startApps() error {
	for _, env := range envs {
		a := &webApp{env: env, assets: w.path("assets", env), images: w.images, running: map[string]string{},
			tag: func(app string) (string, error) { return w.tag(env, app) }}
		for _, app := range apps {
			tag, err := a.roll(app)
			if err != nil {
				return err
			}
			if err := copyTree(filepath.Join(w.images.dir, app, tag, "public", "assets", app), filepath.Join(a.assets, app)); err != nil {
				return err
			}
		}
		url, err := w.serve(a.handler())
		if err != nil {
			return err
		}
		a.url, w.apps[env] = url, a
	}
	return nil
}

func copyTree(from, to string) error {
	return filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		return writeFile(filepath.Join(to, rel), string(b), 0o644)
	})
}

// freeze is a weekly freeze window on production, in UTC, to the minute
// (the promoter's configuration has minutes, no seconds).
type freeze struct{ from, to time.Time }

func (f freeze) String() string {
	return fmt.Sprintf("weekly freeze %s to %s UTC", f.from.Format("Mon 15:04"), f.to.Format("Mon 15:04"))
}

// freezeNow is a freeze that covers now and at least the next minute
// (the demo lifts it before it ends).
func freezeNow(now time.Time) freeze {
	f := freeze{from: now.UTC().Truncate(time.Minute)}
	f.to = f.from.Add(2 * time.Minute)
	return f
}

// promoterConfig is the promoter's configuration: this charts repo, its
// chain, a freeze on production when fr is set, and the agent asked to ask
// again within a second while the promoter waits.
func (w *world) promoterConfig(fr *freeze) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# the demo's promoter configuration (plugin/promoter.example.yaml has every key)
repo:
  url: %s
  branch: main
  strategy: direct
  pathTemplate: %q
environments: [%s]
releasePattern: "^v[0-9]+$"
git:
  authorName: Slipway promoter
  authorEmail: promoter@demo.invalid
  tokenFile: %s
maxRequeue: 1s
timeout: 30s
`, w.gitURL, chartsrepo.DefaultPathTemplate, strings.Join(envs, ", "), w.path("secrets", "git-token"))
	if fr != nil {
		fmt.Fprintf(&b, `freezes:
  production:
    timezone: UTC
    weekly:
      - from: %q
        to: %q
`, fr.from.Format("Mon 15:04"), fr.to.Format("Mon 15:04"))
	}
	return b.String()
}

// startPromoter starts bin/promoter with the demo's configuration (a
// freeze on production when fr is set) on the address it had, or a free
// one the first time, and waits until it answers /healthz.
func (w *world) startPromoter(ctx context.Context, fr *freeze) error {
	if err := writeFile(w.path("secrets", "git-token"), w.secrets.git+"\n", 0o600); err != nil {
		return err
	}
	if err := writeFile(w.path("secrets", "agent-token"), w.secrets.agent+"\n", 0o600); err != nil {
		return err
	}
	if err := writeFile(w.path("promoter.yaml"), w.promoterConfig(fr), 0o644); err != nil {
		return err
	}
	addr := w.promoterAddr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	logDir := w.path("logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	w.promoterStarts++
	p, err := serverproc.Run(serverproc.Spec{Name: fmt.Sprintf("promoter-%d", w.promoterStarts), Path: filepath.Join(w.images.bin, "promoter"),
		Args: []string{"--addr", addr, "--config", w.path("promoter.yaml"), "--token-file", w.path("secrets", "agent-token"),
			"--log-format", "json", "--shutdown-grace", "5s"},
		Env: []string{"PATH=" + os.Getenv("PATH")}, LogDir: logDir, Grace: 10 * time.Second})
	if err != nil {
		return err
	}
	w.promoter = p
	if w.promoterAddr, err = listening(ctx, p); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	return p.WaitOK(wctx, http.DefaultClient, "http://"+w.promoterAddr+"/healthz", nil)
}

// stopPromoter stops the promoter (SIGTERM, then SIGKILL after its grace).
func (w *world) stopPromoter() error {
	if w.promoter == nil {
		return nil
	}
	_, err := w.promoter.Stop()
	w.promoter = nil
	return err
}

// listening reads the address the promoter listens on from its log.
func listening(ctx context.Context, p *serverproc.Process) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for {
		if f, err := os.Open(p.LogPath); err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				var line struct{ Msg, Addr string }
				if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "promoter listening" {
					f.Close()
					return line.Addr, nil
				}
			}
			f.Close()
		}
		select {
		case <-p.Done():
			return "", p.Exited()
		case <-ctx.Done():
			return "", fmt.Errorf("promoter: no address in its log: %w", context.Cause(ctx))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// makeClusters makes each environment's Argo Workflows: its Secrets and
// ConfigMaps, the promoter plugin, and, without a database, migrate's
// lock on a file.
func (w *world) makeClusters() {
	for _, env := range envs {
		c := &localargo.Cluster{Name: env, Pipeline: w.pipeline, Namespace: namespace, Dir: w.path("pods", env),
			Images: w.images.image, Env: []string{"PATH=" + os.Getenv("PATH")},
			Secrets: map[string]map[string]string{
				"slipway-charts-repo":   {"token": w.secrets.git},
				"slipway-slack-webhook": {"url": w.secrets.webhook},
			},
			ConfigMaps: map[string]map[string]string{},
			Plugins:    map[string]localargo.Plugin{"promoter": {URL: "http://" + w.promoterAddr, Token: w.secrets.agent}},
			OnReply: func(n localargo.Node, r executor.ExecuteTemplateReply) {
				if w.onRunning != nil {
					w.onRunning(n, r.GetRequeue())
				}
			},
		}
		for _, app := range apps {
			// Secret APP-database: empty without DATABASE_URL, and migrate
			// then locks a file instead of the database.
			c.Secrets[app+"-database"] = map[string]string{"url": w.cfg.DatabaseURL}
			c.ConfigMaps[app+"-smoke-test"] = map[string]string{"smoke.yaml": smokeSpec(app)}
		}
		if w.cfg.DatabaseURL == "" {
			c.ExtraArgs = map[string][]string{"migrate": {"--lock=file:" + w.path("locks", env+".lock")}}
		}
		w.clusters[env] = c
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
