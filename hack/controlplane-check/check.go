package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type config struct {
	bin  string
	keep bool
}

// stopGrace is how long a process gets between SIGTERM and SIGKILL. An
// apiserver stopped after its etcd can hang on SIGTERM for 30 s or more, which
// is why the apiserver is always stopped first.
const stopGrace = 20 * time.Second

func run(ctx context.Context, cfg config, out io.Writer) (err error) {
	bin := cfg.bin
	if bin == "" {
		if bin, err = printDir(ctx); err != nil {
			return err
		}
	}
	for _, name := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(bin, name)); err != nil {
			return fmt.Errorf("%s not built (run hack/controlplane.sh): %w", name, err)
		}
	}

	dir, err := os.MkdirTemp("", "controlplane-check-")
	if err != nil {
		return fmt.Errorf("scratch folder: %w", err)
	}
	defer func() {
		// Kept on failure too: its logs say why.
		if cfg.keep || err != nil {
			fmt.Fprintf(out, "scratch folder kept: %s\n", dir)
			return
		}
		if rmErr := os.RemoveAll(dir); rmErr != nil {
			err = fmt.Errorf("remove scratch folder: %w", rmErr)
		}
	}()

	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	etcdClient, etcdPeer, apiPort := ports[0], ports[1], ports[2]
	token, err := randomHex(24)
	if err != nil {
		return err
	}
	tokens := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(token+",admin,admin-uid,system:masters\n"), 0o600); err != nil {
		return fmt.Errorf("write token file: %w", err)
	}
	p, err := writePKI(dir)
	if err != nil {
		return err
	}

	clientURL := fmt.Sprintf("http://127.0.0.1:%d", etcdClient)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", etcdPeer)
	etcd, err := start(dir, "etcd", filepath.Join(bin, "etcd"),
		"--name=check", // etcd warns about the default name
		"--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+clientURL, "--advertise-client-urls="+clientURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=check="+peerURL,
		// The data is thrown away afterwards: no need to wait for the disk.
		"--unsafe-no-fsync",
	)
	if err != nil {
		return err
	}
	defer etcd.stop()
	plain := &http.Client{Timeout: 2 * time.Second}
	if err := waitOK(ctx, etcd, plain, clientURL+"/health", ""); err != nil {
		return err
	}
	fmt.Fprintf(out, "etcd healthy after %s\n", round(time.Since(etcd.started)))

	api, err := start(dir, "kube-apiserver", filepath.Join(bin, "kube-apiserver"),
		"--etcd-servers="+clientURL,
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(apiPort),
		// The default endpoint reconciler refuses a loopback advertise address.
		"--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none",
		"--tls-cert-file="+p.servingCert, "--tls-private-key-file="+p.servingKey,
		"--cert-dir="+filepath.Join(dir, "certs"),
		"--token-auth-file="+tokens,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+p.saPublicKey,
		"--service-account-signing-key-file="+p.saPrivateKey,
		"--service-cluster-ip-range=10.96.0.0/16",
		"--enable-priority-and-fairness=false",
	)
	if err != nil {
		return err
	}
	defer api.stop() // deferred after etcd's, so it runs first
	base := fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	secure := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.caPool}},
	}
	if err := waitOK(ctx, api, secure, base+"/readyz", token); err != nil {
		return err
	}
	fmt.Fprintf(out, "kube-apiserver /readyz 200 after %s\n", round(time.Since(api.started)))

	var version struct {
		GitVersion string `json:"gitVersion"`
	}
	if err := getJSON(ctx, secure, base+"/version", token, &version); err != nil {
		return err
	}
	fmt.Fprintf(out, "kube-apiserver reports version %s\n", version.GitVersion)

	// Token auth is real: the admin token is let in, a wrong one is refused.
	for _, c := range []struct {
		what, token string
		want        int
	}{
		{"admin token", token, http.StatusOK},
		{"wrong token", "not-" + token, http.StatusUnauthorized},
	} {
		code, err := status(ctx, secure, base+"/api/v1/namespaces/default", c.token)
		if err != nil {
			return err
		}
		if code != c.want {
			return fmt.Errorf("GET /api/v1/namespaces/default with the %s: status %d, want %d", c.what, code, c.want)
		}
		fmt.Fprintf(out, "GET /api/v1/namespaces/default with the %s: %d\n", c.what, code)
	}

	took, err := api.stop()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "kube-apiserver stopped in %s\n", round(took))
	if took, err = etcd.stop(); err != nil {
		return err
	}
	fmt.Fprintf(out, "etcd stopped in %s\n", round(took))
	return nil
}

// printDir asks hack/controlplane.sh where its binaries are, so that the
// versions and the SLIPWAY_CONTROLPLANE_BIN override are known in one place.
func printDir(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "hack/controlplane.sh", "--print-dir").Output()
	if err != nil {
		return "", fmt.Errorf("hack/controlplane.sh --print-dir (run from the repository root, or pass -bin): %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// freePorts reserves n loopback ports at once (so they differ) and releases them for the children.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func round(d time.Duration) time.Duration { return d.Round(10 * time.Millisecond) }

type proc struct {
	name    string
	cmd     *exec.Cmd
	log     string
	started time.Time
	done    chan struct{} // closed once the process has exited
	err     error         // its exit, valid after done
}

func start(dir, name, path string, args ...string) (*proc, error) {
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = procAttr()
	p := &proc{name: name, cmd: cmd, log: logPath, started: time.Now(), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// stop sends SIGTERM, then SIGKILL after stopGrace; it is a no-op once the
// process has exited. It reports how long the process took to go.
func (p *proc) stop() (time.Duration, error) {
	select {
	case <-p.done:
		return 0, nil
	default:
	}
	begin := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return 0, fmt.Errorf("stop %s: %w", p.name, err)
	}
	select {
	case <-p.done:
		return time.Since(begin), nil
	case <-time.After(stopGrace):
		_ = p.cmd.Process.Kill()
		<-p.done
		return time.Since(begin), fmt.Errorf("stop %s: still running %s after SIGTERM, killed", p.name, stopGrace)
	}
}

// exited describes an early exit with the last line the process logged.
func (p *proc) exited() error {
	return fmt.Errorf("%s exited early (%v): %s", p.name, p.err, lastLine(p.log))
}

func lastLine(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "no log: " + err.Error()
	}
	var last string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			last = line
		}
	}
	return last
}

// waitOK polls url until it answers 200, the process exits or ctx ends.
func waitOK(ctx context.Context, p *proc, client *http.Client, url, token string) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		code, err := status(ctx, client, url, token)
		if err == nil && code == http.StatusOK {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = "status " + strconv.Itoa(code)
		}
		select {
		case <-p.done:
			return p.exited()
		case <-ctx.Done():
			return fmt.Errorf("wait for %s %s: %w (last: %s)", p.name, url, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

func status(ctx context.Context, client *http.Client, url, token string) (int, error) {
	resp, err := get(ctx, client, url, token)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func getJSON(ctx context.Context, client *http.Client, url, token string, v any) error {
	resp, err := get(ctx, client, url, token)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("GET %s: decode: %w", url, err)
	}
	return nil
}

func get(ctx context.Context, client *http.Client, url, token string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		// The error names the URL, never the token.
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	return resp, nil
}
