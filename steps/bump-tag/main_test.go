package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/exitcode"
	"github.com/slipway-deploy/slipway/internal/stepcli"
	"github.com/slipway-deploy/slipway/internal/testsupport/gitrepo"
)

// The test binary doubles as bump-tag: with this variable set it runs main.
const asMain = "BUMP_TAG_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMain) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// command is bump-tag as a process.
func command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), asMain+"=1")
	return cmd
}

func tagPath(env, app string) string { return "charts/app-config/image-tags/" + env + "/" + app }

// bumpTag runs bump-tag in-process with the token in the environment.
func bumpTag(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	t.Setenv("SLIPWAY_GIT_TOKEN", gitrepo.Password)
	t.Setenv("SLIPWAY_GIT_USERNAME", gitrepo.User)
	var out, errb bytes.Buffer
	code = stepcli.Main(step(), append([]string{"bump-tag", "--log-format", "text"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// runProcess runs bump-tag as a process.
func runProcess(ctx context.Context, args ...string) (int, string) {
	cmd := command(ctx, args...)
	cmd.Env = append(cmd.Env, "SLIPWAY_GIT_TOKEN="+gitrepo.Password, "SLIPWAY_GIT_USERNAME="+gitrepo.User, "SLIPWAY_LOG_FORMAT=json")
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		}
		return -1, err.Error()
	}
	return 0, string(out)
}

func readOutputs(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, n := range []string{"changed", "commit", "previous-tag", "reason"} {
		m[n] = readOutput(t, dir, n)
	}
	return m
}

// 20 processes at once: 15 apps, plus v10..v14 racing for one app. None is
// lost, the newest race tag wins, and history holds one commit per change.
func TestConcurrentWritersLoseNothing(t *testing.T) {
	files := map[string]string{tagPath("staging", "raced"): "image_tag: v1\npromote_deployment: true\n"}
	var apps []string
	for i := 0; i < 15; i++ {
		app := fmt.Sprintf("app-%02d", i)
		apps = append(apps, app)
		files[tagPath("staging", app)] = "# owned by team " + app + "\nimage_tag: v1\nautomatic_deploys_enabled: true\npromote_deployment: true\n"
	}
	s := gitrepo.New(t, files)
	seedHead := s.Head()

	type job struct{ app, tag string }
	var jobs []job
	for i, app := range apps {
		jobs = append(jobs, job{app, fmt.Sprintf("v%d", 100+i)})
	}
	for v := 10; v <= 14; v++ {
		jobs = append(jobs, job{"raced", fmt.Sprintf("v%d", v)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	runAll := func() {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, j := range jobs {
			wg.Add(1)
			go func(j job) {
				defer wg.Done()
				<-start
				code, out := runProcess(ctx, "--repo", s.URL(), "--app", j.app, "--env", "staging", "--tag", j.tag)
				assert.Equal(t, 0, code, "%s %s: %s", j.app, j.tag, out)
			}(j)
		}
		close(start)
		wg.Wait()
	}
	runAll()

	for i, app := range apps {
		got, _ := s.Read(tagPath("staging", app))
		assert.Equal(t, fmt.Sprintf("# owned by team %s\nimage_tag: v%d\nautomatic_deploys_enabled: true\npromote_deployment: true\n", app, 100+i), got)
	}
	raced, _ := s.Read(tagPath("staging", "raced"))
	assert.Equal(t, "image_tag: v14\npromote_deployment: true\n", raced)

	// One commit per effective change: each changes exactly one file, the
	// apps once each, the raced app only ever upwards.
	assert.Empty(t, s.EmptyCommits())
	commits := strings.Fields(s.Git("rev-list", "--reverse", seedHead+"..main"))
	perApp := map[string]int{}
	lastRaced := 1
	for _, c := range commits {
		changed := strings.Fields(s.Git("diff-tree", "--no-commit-id", "--name-only", "-r", c))
		require.Len(t, changed, 1, "commit %s", c)
		app := filepath.Base(changed[0])
		perApp[app]++
		if app == "raced" {
			tag := s.Git("log", "-1", "--format=%(trailers:key=Slipway-Tag,valueonly)", c)
			var v int
			fmt.Sscanf(tag, "v%d", &v)
			assert.Greater(t, v, lastRaced, "raced app only moves forward")
			lastRaced = v
		}
	}
	for _, app := range apps {
		assert.Equal(t, 1, perApp[app], app)
	}
	assert.Equal(t, 14, lastRaced)
	t.Logf("%d commits: 15 apps + %d for the raced app; %d pushes", len(commits), perApp["raced"], s.Pushes())

	// Re-running every one of them creates no commit.
	head := s.Head()
	runAll()
	assert.Equal(t, head, s.Head(), "re-runs are no-ops")

	// A stale v9 is refused by the downgrade guard.
	out := t.TempDir()
	code, stdout, stderr := bumpTag(t, "--repo", s.URL(), "--app", "raced", "--env", "staging", "--tag", "v9", "--outputs-dir", out)
	assert.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout+stderr, "refused downgrade: staging runs v14, newer than v9")
	assert.Equal(t, head, s.Head())
	o := readOutputs(t, out)
	assert.Equal(t, "false", o["changed"])
	assert.Equal(t, "v14", o["previous-tag"])
	assert.Equal(t, head, o["commit"])
}

func TestOutputsAndDryRun(t *testing.T) {
	s := gitrepo.New(t, map[string]string{tagPath("staging", "frontend"): "image_tag: v41 # from CI\npromote_deployment: true\n"})
	head := s.Head()
	dry := t.TempDir()
	code, stdout, stderr := bumpTag(t, "--repo", s.URL(), "--app", "frontend", "--env", "staging", "--tag", "v42", "--dry-run", "--outputs-dir", dry)
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "dry-run", readOutput(t, dry, "outcome"), "a dry run says it wrote nothing")
	assert.Contains(t, stdout, "-image_tag: v41 # from CI\n+image_tag: v42 # from CI\n")
	assert.Contains(t, stdout, "    Update frontend image tag to v42 for staging\n")
	assert.Contains(t, stdout, "    Slipway-Previous-Tag: v41\n")
	assert.Equal(t, head, s.Head(), "dry run pushes nothing")
	assert.Equal(t, int64(0), s.Pushes())

	out := t.TempDir()
	code, _, stderr = bumpTag(t, "--repo", s.URL(), "--app", "frontend", "--env", "staging", "--tag", "v42",
		"--outputs-dir", out, "--workflow", "wf-uid-1")
	require.Equal(t, 0, code, stderr)
	o := readOutputs(t, out)
	assert.Equal(t, map[string]string{"changed": "true", "commit": s.Head(), "previous-tag": "v41", "reason": "updated"}, o)
	assert.Equal(t, "updated", readOutput(t, out, "outcome"))
	assert.Contains(t, s.Message("main"), "Slipway-Workflow: wf-uid-1")

	// --expect-current that does not hold: exit 3, nothing written.
	head = s.Head()
	out = t.TempDir()
	code, _, stderr = bumpTag(t, "--repo", s.URL(), "--app", "frontend", "--env", "staging", "--tag", "v43", "--expect-current", "v41",
		"--outputs-dir", out)
	assert.Equal(t, exitcode.Held, code)
	assert.Contains(t, stderr, "expected charts/app-config/image-tags/staging/frontend to hold v41, but it holds v42")
	assert.True(t, strings.HasSuffix(stderr, "bump-tag: expected charts/app-config/image-tags/staging/frontend to hold v41, but it holds v42\n"), stderr)
	assert.Equal(t, head, s.Head())
	assert.Equal(t, "expectation-failed", readOutput(t, out, "outcome"))
	assert.Equal(t, "false", readOutput(t, out, "changed"))
}

func readOutput(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	require.NoError(t, err)
	return string(b)
}

func TestBranchStrategyCommand(t *testing.T) {
	s := gitrepo.New(t, map[string]string{tagPath("staging", "frontend"): "image_tag: v41\n"})
	s.Git("branch", "update-image-tag/frontend/staging/v42", "main") // leftover of a failed run
	code, _, stderr := bumpTag(t, "--repo", s.URL(), "--app", "frontend", "--env", "staging", "--tag", "v42", "--strategy", "branch")
	require.Equal(t, 0, code, stderr)
	got, _ := s.Read(tagPath("staging", "frontend"))
	assert.Equal(t, "image_tag: v42\npromote_deployment: true\n", got)
	assert.Equal(t, []string{"main"}, s.Branches())
}

func TestFileRemoteAndPath(t *testing.T) {
	s := gitrepo.New(t, map[string]string{tagPath("integration", "frontend"): "image_tag: v1\n"})
	for i, repo := range []string{s.FileURL(), s.Dir} {
		tag := fmt.Sprintf("v%d", i+2)
		code, _, stderr := bumpTag(t, "--repo", repo, "--app", "frontend", "--env", "integration", "--tag", tag)
		require.Equal(t, 0, code, stderr)
		got, _ := s.Read(tagPath("integration", "frontend"))
		assert.Equal(t, "image_tag: "+tag+"\npromote_deployment: true\n", got)
	}
}

// Bad input and remote failures: the right exit code, one clear line,
// nothing pushed, and the token never printed.
func TestBadInput(t *testing.T) {
	s := gitrepo.New(t, map[string]string{
		tagPath("staging", "frontend"): "image_tag: v1\n",
		tagPath("staging", "broken"):   "image_tag: [v1\n",
	})
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := "http://" + closed.Addr().String() + "/charts.git"
	require.NoError(t, closed.Close())
	// A folder under a regular file cannot be created, by root either.
	notADir := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(notADir, nil, 0o644))

	base := func(app, env, tag string) []string {
		return []string{"--repo", s.URL(), "--app", app, "--env", env, "--tag", tag}
	}
	tests := []struct {
		name  string
		args  []string
		token string
		code  int
		line  string
	}{
		{"path traversal app", base("../etc", "staging", "v2"), "", exitcode.Invalid, `app "../etc" is not a valid name`},
		{"unknown env", base("frontend", "preview", "v2"), "", exitcode.Invalid, `environment "preview" is not in the chain integration -> staging -> production`},
		{"tag with a space", base("frontend", "staging", "v 2"), "", exitcode.Invalid, `tag "v 2" is not a valid image tag`},
		{"tag with a newline", base("frontend", "staging", "v2\nx"), "", exitcode.Invalid, `is not a valid image tag`},
		{"tag ..", append(base("frontend", "staging", ".."), "--strategy", "branch"), "", exitcode.Invalid, `tag ".." is not a valid image tag`},
		{"tag that cannot name a branch", append(base("frontend", "staging", "v2..3"), "--strategy", "branch"), "", exitcode.Invalid, `tag "v2..3" cannot name a git branch`},
		{"tag ending .lock", append(base("frontend", "staging", "v2.lock"), "--strategy", "branch"), "", exitcode.Invalid, `tag "v2.lock" cannot name a git branch`},
		{"malformed yaml", base("broken", "staging", "v2"), "", exitcode.Invalid, `charts/app-config/image-tags/staging/broken: malformed tag file`},
		{"missing file", base("nope", "staging", "v2"), "", exitcode.Invalid, `tag file charts/app-config/image-tags/staging/nope does not exist`},
		{"missing branch", append(base("frontend", "staging", "v2"), "--branch", "release"), "", exitcode.Invalid, `branch not found: "release"`},
		{"bad strategy", append(base("frontend", "staging", "v2"), "--strategy", "merge"), "", exitcode.Invalid, `--strategy "merge"`},
		{"bad promote flag", append(base("frontend", "staging", "v2"), "--promote-deployment", "yes please"), "", exitcode.Invalid, `--promote-deployment`},
		{"unknown flag", append(base("frontend", "staging", "v2"), "--frobnicate"), "", exitcode.Invalid, `flag provided but not defined`},
		{"missing flag", []string{"--repo", s.URL(), "--app", "frontend"}, "", exitcode.Invalid, `Required flags "env, tag" not set`},
		{"unwritable outputs dir", append(base("frontend", "staging", "v2"), "--outputs-dir", filepath.Join(notADir, "out")), "", exitcode.Invalid, "outputs dir " + filepath.Join(notADir, "out") + " is not writable"},
		{"unreachable remote", []string{"--repo", dead, "--app", "frontend", "--env", "staging", "--tag", "v2"}, "", exitcode.Failed, "connection refused"},
		{"wrong password", base("frontend", "staging", "v2"), "wrong-" + gitrepo.Password, exitcode.Failed, "authentication required"},
		{"ssh without known hosts", []string{"--repo", "ssh://git@127.0.0.1/charts.git", "--app", "frontend", "--env", "staging", "--tag", "v2", "--ssh-key-file", "/dev/null"}, "", exitcode.Invalid, "--known-hosts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			head := s.Head()
			pushes := s.Pushes()
			token := gitrepo.Password
			if tt.token != "" {
				token = tt.token
			}
			t.Setenv("SLIPWAY_GIT_TOKEN", token)
			t.Setenv("SLIPWAY_GIT_USERNAME", gitrepo.User)
			var out, errb bytes.Buffer
			code := stepcli.Main(step(), append([]string{"bump-tag", "--log-format", "json", "--debug"}, tt.args...), &out, &errb)
			assert.Equal(t, tt.code, code, errb.String())
			lines := strings.Split(strings.TrimRight(errb.String(), "\n"), "\n")
			last := lines[len(lines)-1]
			assert.True(t, strings.HasPrefix(last, "bump-tag: "), last)
			assert.Contains(t, last, tt.line)
			assert.NotContains(t, out.String()+errb.String(), token)
			assert.Equal(t, head, s.Head(), "nothing pushed")
			assert.Equal(t, pushes, s.Pushes(), "no push attempted")
		})
	}
}

// The token never reaches any output, even when the remote echoes the URL
// (with the token in it) and the credentials back in its error.
func TestTokenNeverPrinted(t *testing.T) {
	const token = "ghs_S3cretT0kenValue123"
	// A git server that refuses with the protocol's ERR line, echoing the
	// URL with the caller's credentials in it.
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ := r.BasicAuth()
		pkt := func(s string) string { return fmt.Sprintf("%04x%s", len(s)+4, s) }
		w.Header().Set("Content-Type", "application/x-git-upload-pack-advertisement")
		fmt.Fprint(w, pkt("# service=git-upload-pack\n")+"0000"+
			pkt(fmt.Sprintf("ERR access denied to https://%s:%s@%s%s\n", user, pass, r.Host, r.URL.Path)))
	}))
	defer echo.Close()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(token+"\n"), 0o600))
	outDir := filepath.Join(dir, "out")

	for _, args := range [][]string{
		{"--repo", echo.URL + "/charts.git", "--git-token-file", tokenFile, "--git-username", "ci"},
		{"--repo", strings.Replace(echo.URL, "http://", "http://ci:"+token+"@", 1) + "/charts.git"},
	} {
		var out, errb bytes.Buffer
		full := append([]string{"bump-tag", "--log-format", "text", "--debug", "--app", "frontend", "--env", "staging",
			"--tag", "v2", "--outputs-dir", outDir}, args...)
		code := stepcli.Main(step(), full, &out, &errb)
		assert.Equal(t, exitcode.Failed, code)
		all := out.String() + errb.String()
		assert.Contains(t, all, "access denied to https://ci:***@", "the remote's echo is shown, masked")
		assert.NotContains(t, all, token)
		assert.Contains(t, all, "***")
	}

	// And as a process, through a real server with a wrong token file.
	s := gitrepo.New(t, map[string]string{tagPath("staging", "frontend"): "image_tag: v1\n"})
	cmd := command(context.Background(), "--repo", s.URL(), "--app", "frontend", "--env", "staging", "--tag", "v2",
		"--git-token-file", tokenFile, "--debug", "--outputs-dir", outDir)
	b, _ := cmd.CombinedOutput()
	assert.NotContains(t, string(b), token)
	assert.Contains(t, string(b), "authentication required")
}

func TestHelp(t *testing.T) {
	var out, errb bytes.Buffer
	code := stepcli.Main(step(), []string{"bump-tag", "--help"}, &out, &errb)
	assert.Equal(t, 0, code)
	for _, flag := range []string{"--repo", "--branch", "--app", "--env", "--tag", "--environments", "--path-template",
		"--release-pattern", "--promote-deployment", "--allow-downgrade", "--expect-current", "--strategy",
		"--max-attempts", "--dry-run", "--outputs-dir", "--author-name", "--author-email", "--message",
		"--git-token-file", "--ssh-key-file", "--known-hosts", "--create", "SLIPWAY_APP"} {
		assert.Contains(t, out.String(), flag)
	}
}

// The step's contract lists the outputs its Result writes.
func TestDescribeListsTheOutputs(t *testing.T) {
	var out, errb bytes.Buffer
	require.Equal(t, 0, stepcli.Main(step(), []string{"bump-tag", stepcli.DescribeArg}, &out, &errb), errb.String())
	var c stepcli.Contract
	require.NoError(t, json.Unmarshal(out.Bytes(), &c))
	assert.Equal(t, []string{"changed", "commit", "previous-tag", "reason", "outcome"}, c.Outputs)
}
