package journey

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/outcome"
	"github.com/slipway-deploy/slipway/internal/testsupport/dbtest"
	"github.com/slipway-deploy/slipway/internal/testsupport/proctest"
	"github.com/slipway-deploy/slipway/internal/testsupport/syncbuffer"
)

// bin holds the binaries, built once for the package's tests as `make
// build` builds them.
var bin string

var root = func() string { r, _ := filepath.Abs("../../.."); return r }()

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "demo-bin-")
	if err == nil {
		bin = dir
		err = build(dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "build the binaries:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func build(dir string) error {
	steps, err := filepath.Glob(filepath.Join(root, "steps", "*"))
	if err != nil {
		return err
	}
	for _, s := range steps {
		if err := goBuild(filepath.Join(dir, filepath.Base(s)), "./steps/"+filepath.Base(s)); err != nil {
			return err
		}
	}
	if err := goBuild(filepath.Join(dir, "promoter"), "./plugin"); err != nil {
		return err
	}
	return goBuild(filepath.Join(dir, "demo"), "./hack/demo")
}

func goBuild(out, pkg string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// The journey and every rule, checked on what the world shows afterwards
// (the charts repo read with git, what Slack received, the command lines
// that ran), with migrate locking a file (`make demo`) or PostgreSQL
// (DATABASE_URL).
func TestDemo(t *testing.T) {
	for _, tc := range []struct {
		name        string
		databaseURL string
		lock        string // what migrate logged it holds
	}{
		{name: "file lock, as make demo", lock: "file:"},
		{name: "PostgreSQL's lock, with DATABASE_URL", databaseURL: dbtest.PostgresURL, lock: "database"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			out := &syncbuffer.Buffer{}
			dir := filepath.Join(t.TempDir(), "demo")
			rep, err := Run(ctx, Config{Dir: dir, Bin: bin, Workflows: filepath.Join(root, "workflows"),
				DatabaseURL: tc.databaseURL, Out: out, Brief: true})
			t.Log("\n" + out.String())
			require.NoError(t, err)
			checkJourney(t, rep, tc.lock)
			checkRules(t, rep)
			checkCharts(t, rep)
			assert.Equal(t, []string{
				":rocket: frontend v2 deployed to integration and promoted to staging",
				":rocket: frontend v2 deployed to staging and promoted to production",
				":white_check_mark: frontend v2 deployed to production (the last environment)",
				":large_yellow_circle: frontend v1 deployed to integration, not promoted to staging: integration runs another tag now",
			}, rep.Posts[:4], "the journey's posts, then the stale post-sync's")
			checkREADME(t, rep)
			assert.Empty(t, processesUnder(dir), "processes left running")
			for _, u := range regexp.MustCompile(`http://127\.0\.0\.1:\d+`).FindAllString(out.String(), -1) {
				assertClosed(t, u)
			}
		})
	}
}

// checkJourney: each environment's steps in the templates' order, each
// with its outcome, and the command lines the templates give.
func checkJourney(t *testing.T, rep *Report, lock string) {
	t.Helper()
	type row struct{ env, name string }
	var got []row
	outcomes := map[row]outcome.Outcome{}
	for _, s := range rep.Journey {
		got = append(got, row{s.Env, s.Name})
		outcomes[row{s.Env, s.Name}] = s.Outcome
	}
	want := []row{{"CI", "bump-tag"}}
	for _, env := range envs {
		want = append(want, row{env, "precompile-assets"}, row{env, "migrate"}, row{env, "rollout"},
			row{env, "smoke-test"}, row{env, "approve"}, row{env, "promoter"}, row{env, "notify"})
	}
	require.Equal(t, want, got)
	assert.Equal(t, outcome.Updated, outcomes[row{"CI", "bump-tag"}])
	for env, promoted := range map[string]outcome.Outcome{"integration": outcome.Promoted, "staging": outcome.Promoted,
		"production": outcome.LastEnvironment} {
		assert.Equal(t, outcome.Published, outcomes[row{env, "precompile-assets"}], env)
		assert.Equal(t, outcome.Migrated, outcomes[row{env, "migrate"}], env)
		assert.Equal(t, outcome.Passed, outcomes[row{env, "smoke-test"}], env)
		assert.Equal(t, promoted, outcomes[row{env, "promoter"}], env)
	}

	// CI's bump-tag ran with the template's arguments, paths in the pod
	// mapped to its folders.
	bump := rep.Journey[0].Node
	out := filepath.Join(bump.Pod, "volumes", "outputs")
	repo := regexp.MustCompile(`^--repo=http://127\.0\.0\.1:\d+/charts\.git$`)
	require.Len(t, bump.Args, 8, "%q", bump.Args)
	assert.Equal(t, filepath.Join(bin, "bump-tag"), bump.Args[0])
	assert.Regexp(t, repo, bump.Args[1])
	assert.Equal(t, []string{"--app=frontend", "--env=integration", "--tag=v2", "--allow-downgrade=false"}, bump.Args[2:6])
	assert.Regexp(t, `^--workflow=[0-9a-f]{32}$`, bump.Args[6])
	assert.Equal(t, "--outputs-dir="+out, bump.Args[7])

	// precompile-assets and migrate ran the copy their init container
	// installed in the pod's emptyDir, in the app's image.
	for _, s := range rep.Journey[1:3] {
		assert.Equal(t, filepath.Join(s.Node.Pod, "volumes", "slipway-bin", s.Name), s.Node.Args[0], s.Name)
	}
	migrate := rep.Journey[2].Node
	assert.Equal(t, []string{"--", "sh", "-c", "sh db/migrate"}, migrate.Args[len(migrate.Args)-4:])
	byFile := slices.ContainsFunc(migrate.Args[:len(migrate.Args)-4], func(a string) bool { return strings.HasPrefix(a, "--lock=file:") })
	assert.Equal(t, lock == "file:", byFile, "--lock=file:... is added only without a database: %q", migrate.Args)
	log, err := os.ReadFile(migrate.Log)
	require.NoError(t, err)
	assert.Contains(t, string(log), "frontend v2: schema migrated", "the command ran in the app's image at v2")
	assert.Contains(t, string(log), `"msg":"holding the migration lock","key":"frontend","lock":"`+lock)
}

// checkREADME: the README shows the demo as it runs: the journey's steps
// in order, then the rules.
func checkREADME(t *testing.T, rep *Report) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	_, block, ok := strings.Cut(string(b), "<!-- demo output -->\n```console\n")
	require.True(t, ok, "the README's demo output marker is missing")
	block, _, _ = strings.Cut(block, "```")
	var want []string
	for _, s := range rep.Journey {
		want = append(want, strings.Join(strings.Fields(s.Env+" "+s.Phase+" "+s.Name), " ")+" ")
	}
	for _, r := range rep.Rules {
		want = append(want, r.Name+" ")
	}
	lines := strings.Split(block, "\n")
	for _, w := range want {
		i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(strings.Join(strings.Fields(l), " ")+" ", w) })
		if !assert.GreaterOrEqual(t, i, 0, "the README's demo output has no line %q after the previous one", w) {
			return
		}
		lines = lines[i+1:]
	}
}

// checkRules: each rule ended as it must, with the promoter's typed answer.
func checkRules(t *testing.T, rep *Report) {
	t.Helper()
	got := map[string]Rule{}
	for _, r := range rep.Rules {
		got[r.Name] = r
	}
	assert.Equal(t, []outcome.Outcome{outcome.Stale}, got["stale"].Outcomes)
	assert.Equal(t, []outcome.Outcome{outcome.NotARelease}, got["branch"].Outcomes)
	assert.Equal(t, []outcome.Outcome{outcome.Updated, outcome.Updated}, got["race"].Outcomes)
	assert.Equal(t, []outcome.Outcome{outcome.Promoted}, got["freeze"].Outcomes)
	assert.Equal(t, 2, got["freeze"].Running, "Running replies while production was frozen")
	assert.Equal(t, []outcome.Outcome{outcome.RolledBackFrom}, got["rollback"].Outcomes)
}

// checkCharts reads the charts repo as git shows it at the end.
func checkCharts(t *testing.T, rep *Report) {
	t.Helper()
	show := func(env, app string) string {
		b, err := exec.Command("git", "-C", rep.Repo, "show", "main:charts/app-config/image-tags/"+env+"/"+app).Output()
		require.NoError(t, err, "%s/%s", env, app)
		m := regexp.MustCompile(`(?m)^image_tag: (\S+)$`).FindStringSubmatch(string(b))
		require.NotNil(t, m, "%s", b)
		return m[1]
	}
	production := "v1" // rolled back by the rollback rule, and kept there
	for _, c := range []struct{ env, app, tag string }{
		{"integration", "frontend", "v3"}, {"staging", "frontend", "v2"}, {"production", "frontend", production},
		{"integration", "publisher", "v2"}, {"staging", "publisher", "v1"}, {"production", "publisher", "v1"},
		{"integration", "router", "v1"}, {"staging", "router", "v2"}, {"production", "router", "v2"},
	} {
		assert.Equal(t, c.tag, show(c.env, c.app), "%s in %s", c.app, c.env)
	}
	trailers, err := exec.Command("git", "-C", rep.Repo, "log", "--format=%(trailers:key=Slipway-Source-Env,valueonly)%(trailers:key=Slipway-Env,valueonly)",
		"--grep=^Promote frontend v2", "main").Output()
	require.NoError(t, err)
	assert.Equal(t, []string{"staging", "production", "integration", "staging"}, strings.Fields(string(trailers)),
		"the promotions' trailers: from, to (newest first)")
}

// Ctrl-C stops the demo and everything it started, a step in flight too.
func TestInterruptLeavesNothingRunning(t *testing.T) {
	if _, err := os.Stat("/proc/self/cwd"); err != nil {
		t.Skip("needs /proc to find what is still running")
	}
	dir := filepath.Join(t.TempDir(), "demo")
	cmd := exec.Command(filepath.Join(bin, "demo"), "--dir", dir, "--bin", bin, "--workflows", filepath.Join(root, "workflows"),
		"--migrate-command", "sh db/migrate && exec sleep 300")
	cmd.Dir = root
	p, err := proctest.Start(t, cmd)
	require.NoError(t, err)
	// Interrupt once the migration command is running (a step's child),
	// and the promoter.
	var running []string
	demo := strconv.Itoa(cmd.Process.Pid) + ": "
	require.Eventually(t, func() bool {
		running = slices.DeleteFunc(processesUnder(dir), func(p string) bool { return strings.HasPrefix(p, demo) })
		return contains(running, "sleep 300") && contains(running, "--config "+dir)
	}, 2*time.Minute, 50*time.Millisecond, "the migration never ran; output:\n%s", p.Out.String())
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	code, out := p.Wait(t, time.Minute)
	t.Log("\n" + out)
	assert.Equal(t, 130, code)
	assert.Contains(t, out, "Everything it started is stopped. Its files: "+dir)
	assert.Contains(t, out, "demo: interrupted")
	assert.Empty(t, processesUnder(dir), "still running after the demo exited (before: %q)", running)
	for _, u := range regexp.MustCompile(`http://127\.0\.0\.1:\d+`).FindAllString(out, -1) {
		assertClosed(t, u)
	}
}

// processesUnder lists the processes whose working directory or command
// line is in dir: everything the demo starts runs in its folder or names
// it.
func processesUnder(dir string) []string {
	entries, _ := os.ReadDir("/proc")
	var found []string
	for _, e := range entries {
		if strings.Trim(e.Name(), "0123456789") != "" {
			continue
		}
		cwd, _ := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		b, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		cmdline := strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
		if strings.HasPrefix(cwd, dir) || strings.Contains(cmdline, dir) {
			found = append(found, e.Name()+": "+cmdline)
		}
	}
	return found
}

func contains(lines []string, s string) bool {
	for _, l := range lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// assertClosed checks nothing listens at u any more.
func assertClosed(t *testing.T, u string) {
	t.Helper()
	p, err := url.Parse(u)
	require.NoError(t, err)
	if c, err := net.DialTimeout("tcp", p.Host, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still listens", u)
	}
}
