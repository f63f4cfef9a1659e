package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/plugins/executor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/testsupport/gitrepo"
	"github.com/slipway-deploy/slipway/internal/testsupport/sshkey"
	"github.com/slipway-deploy/slipway/internal/testsupport/syncbuffer"
)

// The test binary doubles as the promoter: with this variable set it runs main.
func TestMain(m *testing.M) {
	if os.Getenv("PROMOTER_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// TestBinary runs the plugin as a process on the example configuration:
// it answers, promotes, keeps its secrets out of the logs, and exits 0 on
// SIGTERM.
func TestBinary(t *testing.T) {
	const token = "agent-token-Zq81x"
	git := gitrepo.New(t, map[string]string{
		"charts/app-config/image-tags/integration/frontend": "image_tag: v42\nautomatic_deploys_enabled: true\npromote_deployment: true\n",
		"charts/app-config/image-tags/staging/frontend":     "image_tag: v41\nautomatic_deploys_enabled: true\npromote_deployment: true\n",
	})
	example, err := os.ReadFile("promoter.example.yaml")
	require.NoError(t, err)
	cfg := strings.Replace(string(example), "https://github.com/alphagov/govuk-helm-charts.git", git.URL(), 1)
	require.NotEqual(t, string(example), cfg)
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(token), 0o600))
	addr := freeAddr(t)

	cmd := exec.Command(os.Args[0], "--addr", addr, "--token-file", tokenFile, "--git-username", gitrepo.User, "--log-format", "json")
	cmd.Env = append(os.Environ(), "PROMOTER_TEST_MAIN=1", "SLIPWAY_CONFIG_YAML="+cfg, "SLIPWAY_GIT_TOKEN="+gitrepo.Password)
	stderr := &syncbuffer.Buffer{}
	cmd.Stderr = stderr
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill() }()

	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		require.True(t, time.Now().Before(deadline), "the plugin never answered: %s", stderr.String())
		time.Sleep(10 * time.Millisecond)
	}

	raw, _ := json.Marshal(map[string]any{"promoter": map[string]any{"promote": map[string]any{"app": "frontend", "from": "integration", "tag": "v42"}}})
	body, _ := json.Marshal(executor.ExecuteTemplateArgs{
		Workflow: &executor.Workflow{ObjectMeta: executor.ObjectMeta{Name: "post-sync", UID: "uid-7"}},
		Template: &wfv1.Template{Name: "promote", Plugin: &wfv1.Plugin{Object: wfv1.Object{Value: raw}}},
	})
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/api/v1/template.execute", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode, string(out))
	var reply executor.ExecuteTemplateReply
	require.NoError(t, json.Unmarshal(out, &reply))
	require.NotNil(t, reply.Node)
	assert.Equal(t, wfv1.NodeSucceeded, reply.Node.Phase, reply.Node.Message)
	got, _ := git.Read("charts/app-config/image-tags/staging/frontend")
	assert.Contains(t, got, "image_tag: v42\n")

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		assert.NoError(t, err, "exit 0 on SIGTERM: %s", stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	logs := stderr.String()
	assert.Contains(t, logs, "promoter listening")
	assert.Contains(t, logs, `"msg":"promotion decided"`)
	assert.NotContains(t, logs, token)
	assert.NotContains(t, logs, gitrepo.Password)
}

func TestConfigRequired(t *testing.T) {
	cmd := exec.Command(os.Args[0], "--addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "PROMOTER_TEST_MAIN=1")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 2, ee.ExitCode())
	assert.Contains(t, string(out), "--config or --config-yaml is required")
}

// An error in a git setting names it the way it was given: the config
// key when it came from the configuration, the flag when a flag set it.
func TestGitSettingErrorsNameTheSettingAsGiven(t *testing.T) {
	example, err := os.ReadFile("promoter.example.yaml")
	require.NoError(t, err)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing-token")
	cfg := strings.Replace(string(example), "  # tokenFile: /var/run/secrets/charts-repo/token", "  tokenFile: "+missing, 1)
	require.NotEqual(t, string(example), cfg)
	tokenFile := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("agent-token"), 0o600))
	for _, tc := range []struct {
		name      string
		args      []string
		want, not string
	}{
		{"config key", nil, "read git.tokenFile: open " + missing, "--git-token-file"},
		{"flag over the config key", []string{"--git-token-file", missing + "-flag"}, "read --git-token-file: open " + missing + "-flag", "git.tokenFile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], append([]string{"--addr", "127.0.0.1:0", "--token-file", tokenFile}, tc.args...)...)
			cmd.Env = append(os.Environ(), "PROMOTER_TEST_MAIN=1", "SLIPWAY_CONFIG_YAML="+cfg)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee, string(out))
			assert.Equal(t, 2, ee.ExitCode(), string(out))
			assert.Contains(t, string(out), "promoter: "+tc.want)
			assert.NotContains(t, string(out), tc.not)
		})
	}
}

// An ssh:// repo URL with a password: the "listening" line and every other
// log line show it masked.
func TestListeningLineMasksTheRepoPassword(t *testing.T) {
	const password = "ssh-Pw-S3cret-81"
	key, knownHosts := sshkey.Files(t, "127.0.0.1")
	tokenFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("agent-token"), 0o600))
	example, err := os.ReadFile("promoter.example.yaml")
	require.NoError(t, err)
	cfg := strings.Replace(string(example), "https://github.com/alphagov/govuk-helm-charts.git", "ssh://git:"+password+"@127.0.0.1:1/charts.git", 1)
	require.NotEqual(t, string(example), cfg)

	cmd := exec.Command(os.Args[0], "--addr", "127.0.0.1:0", "--token-file", tokenFile, "--log-format", "json",
		"--ssh-key-file", key, "--known-hosts", knownHosts)
	cmd.Env = append(os.Environ(), "PROMOTER_TEST_MAIN=1", "SLIPWAY_CONFIG_YAML="+cfg)
	stderr := &syncbuffer.Buffer{}
	cmd.Stderr = stderr
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill() }()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(stderr.String(), "promoter listening") {
		require.True(t, time.Now().Before(deadline), "no listening line: %s", stderr.String())
		time.Sleep(10 * time.Millisecond)
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	_ = cmd.Wait()
	logs := stderr.String()
	assert.Contains(t, logs, `"repo":"ssh://git@127.0.0.1:1/charts.git"`)
	assert.NotContains(t, logs, password)
}

// The commands for people run as the promoter binary with the plugin's own
// configuration: hold (exit 0, a commit), plan (the hold shows, JSON on
// stdout), unhold; bad input exits 2; the token never shows.
func TestReleaseControlCommands(t *testing.T) {
	git := gitrepo.New(t, map[string]string{
		"charts/app-config/image-tags/integration/frontend": "image_tag: v42\nautomatic_deploys_enabled: true\npromote_deployment: true\n",
		"charts/app-config/image-tags/staging/frontend":     "image_tag: v41\nautomatic_deploys_enabled: true\npromote_deployment: true\n",
	})
	example, err := os.ReadFile("promoter.example.yaml")
	require.NoError(t, err)
	cfg := strings.Replace(string(example), "https://github.com/alphagov/govuk-helm-charts.git", git.URL(), 1)
	promoter := func(args ...string) (int, string, string) {
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(os.Environ(), "PROMOTER_TEST_MAIN=1", "SLIPWAY_CONFIG_YAML="+cfg, "SLIPWAY_GIT_TOKEN="+gitrepo.Password,
			"SLIPWAY_GIT_USERNAME="+gitrepo.User, "SLIPWAY_LOG_FORMAT=json")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		assert.NotContains(t, stdout.String()+stderr.String(), gitrepo.Password)
		return code, stdout.String(), stderr.String()
	}
	code, _, logs := promoter("hold", "--env", "staging", "--reason", "INC-1234", "--by", "jane", "--until", "2h")
	require.Equal(t, 0, code, logs)
	assert.Contains(t, logs, `"msg":"held: INC-1234 by jane since `)
	assert.Contains(t, git.Message("main"), "Hold staging (all apps): INC-1234")

	code, out, logs := promoter("plan", "--output", "json")
	require.Equal(t, 0, code, logs)
	var plan struct {
		Holds []struct{ Reason string } `json:"holds"`
		Apps  []struct {
			Steps []struct{ Outcome, Summary string } `json:"steps"`
		} `json:"apps"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &plan), out)
	require.Len(t, plan.Holds, 1)
	assert.Equal(t, "INC-1234", plan.Holds[0].Reason)
	require.Len(t, plan.Apps, 1)
	assert.Equal(t, "held", plan.Apps[0].Steps[0].Outcome)
	assert.Equal(t, "held: INC-1234 by jane", plan.Apps[0].Steps[0].Summary)

	// The markdown to a file, as the promoter-plan workflow asks for it.
	file := filepath.Join(t.TempDir(), "plan.md")
	code, out, logs = promoter("plan", "--output", "markdown", "--fail-on-drift", "--output-file", file)
	require.Equal(t, 0, code, logs)
	assert.Empty(t, out, "the plan goes to the file")
	md, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Contains(t, string(md), "*Holds*\n- staging (all apps): INC-1234 by jane since ")

	code, _, logs = promoter("unhold", "--env", "staging", "--by", "sam")
	require.Equal(t, 0, code, logs)
	assert.Contains(t, logs, "lifted: INC-1234 by jane")

	for _, bad := range [][]string{
		{"hold", "--env", "qa", "--reason", "x", "--by", "y"},
		{"hold", "--env", "staging", "--by", "y"},
		{"plan", "--output", "yaml"},
		{"plan", "--app", "../x"},
	} {
		code, _, logs := promoter(bad...)
		assert.Equal(t, 2, code, "%v: %s", bad, logs)
	}
}
