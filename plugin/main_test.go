package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/plugins/executor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/slipway-deploy/slipway/internal/testsupport/gitrepo"
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
	stderr := &syncBuffer{}
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

// syncBuffer collects a process's stderr while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// An ssh:// repo URL with a password: the "listening" line and every other
// log line show it masked.
func TestListeningLineMasksTheRepoPassword(t *testing.T) {
	const password = "ssh-Pw-S3cret-81"
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	block, err := ssh.MarshalPrivateKey(priv, "")
	require.NoError(t, err)
	sshPub, err := ssh.NewPublicKey(pub)
	require.NoError(t, err)
	dir := t.TempDir()
	key, knownHosts, tokenFile := filepath.Join(dir, "id"), filepath.Join(dir, "known_hosts"), filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(key, pem.EncodeToMemory(block), 0o600))
	require.NoError(t, os.WriteFile(knownHosts, []byte("127.0.0.1 "+string(ssh.MarshalAuthorizedKey(sshPub))), 0o600))
	require.NoError(t, os.WriteFile(tokenFile, []byte("agent-token"), 0o600))
	example, err := os.ReadFile("promoter.example.yaml")
	require.NoError(t, err)
	cfg := strings.Replace(string(example), "https://github.com/alphagov/govuk-helm-charts.git", "ssh://git:"+password+"@127.0.0.1:1/charts.git", 1)
	require.NotEqual(t, string(example), cfg)

	cmd := exec.Command(os.Args[0], "--addr", "127.0.0.1:0", "--token-file", tokenFile, "--log-format", "json",
		"--ssh-key-file", key, "--known-hosts", knownHosts)
	cmd.Env = append(os.Environ(), "PROMOTER_TEST_MAIN=1", "SLIPWAY_CONFIG_YAML="+cfg)
	stderr := &syncBuffer{}
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
