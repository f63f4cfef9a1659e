// Command benchpromoter measures the promoter plugin binary: start-up to
// first answer and idle RSS (against bump-tag --help, the start-up of our
// other Go binary), and a full promotion (fetch + commit + push) on the
// synthetic 20,000-commit charts repo against bump-tag doing the same
// write. Run it through hack/bench-promoter.sh.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/plugins/executor"

	"github.com/slipway-deploy/slipway/hack/benchrepo"
)

const (
	user  = "bench"
	pass  = "bench-token"
	token = "bench-agent-token"
)

func main() {
	cache := flag.String("cache", ".cache/bench", "folder for the synthetic repo")
	promoter := flag.String("promoter", "bin/promoter", "promoter binary")
	bumpTag := flag.String("bump-tag", "bin/bump-tag", "bump-tag binary")
	runs := flag.Int("runs", 7, "runs of each measurement")
	flag.Parse()
	if err := run(*cache, *promoter, *bumpTag, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "benchpromoter:", err)
		os.Exit(1)
	}
}

type proc struct {
	cmd  *exec.Cmd
	addr string
	logs *bytes.Buffer
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// start runs the promoter and returns once /healthz answers, with the time
// from exec to the first answer.
func start(bin, cfg, tokenFile string) (*proc, time.Duration, error) {
	p := &proc{addr: freeAddr(), logs: &bytes.Buffer{}}
	p.cmd = exec.Command(bin, "--addr", p.addr, "--token-file", tokenFile, "--git-username", user, "--log-format", "json")
	p.cmd.Env = append(os.Environ(), "SLIPWAY_CONFIG_YAML="+cfg, "SLIPWAY_GIT_TOKEN="+pass)
	p.cmd.Stderr = p.logs
	client := &http.Client{Timeout: time.Second}
	t0 := time.Now()
	if err := p.cmd.Start(); err != nil {
		return nil, 0, err
	}
	for time.Since(t0) < 10*time.Second {
		resp, err := client.Get("http://" + p.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			return p, time.Since(t0), nil
		}
		time.Sleep(time.Millisecond)
	}
	p.stop()
	return nil, 0, fmt.Errorf("promoter did not answer: %s", p.logs)
}

func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	_ = p.cmd.Wait()
}

func (p *proc) rss() string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			var kb int
			fmt.Sscan(strings.TrimPrefix(l, "VmRSS:"), &kb)
			return fmt.Sprintf("%.1f MiB", float64(kb)/1024)
		}
	}
	return "?"
}

func (p *proc) promote(app, from, tag string) (time.Duration, string, error) {
	raw, _ := json.Marshal(map[string]any{"promoter": map[string]any{"promote": map[string]any{"app": app, "from": from, "tag": tag}}})
	body, _ := json.Marshal(executor.ExecuteTemplateArgs{
		Workflow: &executor.Workflow{ObjectMeta: executor.ObjectMeta{Name: "bench", UID: "bench-uid"}},
		Template: &wfv1.Template{Name: "promote", Plugin: &wfv1.Plugin{Object: wfv1.Object{Value: raw}}},
	})
	req, _ := http.NewRequest(http.MethodPost, "http://"+p.addr+"/api/v1/template.execute", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	t0 := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(t0)
	var reply executor.ExecuteTemplateReply
	if err := json.Unmarshal(out, &reply); err != nil || reply.Node == nil {
		return d, "", fmt.Errorf("reply %d: %s", resp.StatusCode, out)
	}
	return d, string(reply.Node.Phase) + ": " + reply.Node.Message, nil
}

func run(cache, promoter, bumpTag string, runs int) error {
	url, _, err := benchrepo.Serve(cache, 300, 20000, user, pass)
	if err != nil {
		return err
	}
	example, err := os.ReadFile("plugin/promoter.example.yaml")
	if err != nil {
		return err
	}
	// The example, on the synthetic repo, with no freeze or soak in the way
	// (those are waits, not work).
	cfg := strings.Replace(string(example), "https://github.com/alphagov/govuk-helm-charts.git", url, 1)
	cfg = cfg[:strings.Index(cfg, "\nfreezes:")] + "\n"
	work, err := os.MkdirTemp("", "benchpromoter")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	tokenFile := filepath.Join(work, "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		return err
	}

	fmt.Printf("Synthetic repo: 300 apps x 3 environments, 20,000 commits; git http-backend on loopback.\n\n")
	fmt.Printf("| measurement | promoter | peer | ratio |\n|---|---|---|---|\n")

	// Start-up to first answer, and idle RSS.
	var ups, helps []time.Duration
	var idle string
	for i := 0; i < runs; i++ {
		p, d, err := start(promoter, cfg, tokenFile)
		if err != nil {
			return err
		}
		ups = append(ups, d)
		if i == 0 {
			time.Sleep(2 * time.Second)
			idle = p.rss()
		}
		p.stop()
		t0 := time.Now()
		if err := exec.Command(bumpTag, "--help").Run(); err != nil {
			return err
		}
		helps = append(helps, time.Since(t0))
	}
	fmt.Printf("| start-up to first /healthz answer, median of %d | %s | %s (`bump-tag --help`, start to exit) | %.2f |\n",
		runs, ms(median(ups)), ms(median(helps)), median(ups).Seconds()/median(helps).Seconds())
	fmt.Printf("| idle RSS after start-up | %s | | |\n", idle)

	// A full promotion: the promoter (a fresh process each time: the agent
	// pod starts with the workflow, so its store is cold) against bump-tag
	// writing the same kind of change. Integration gets a new release with
	// the git CLI first, so that each promotion has work to do.
	// Tags only ever grow, across runs too (the repo is cached).
	next := time.Now().Unix() * 100
	var prom, bump []time.Duration
	var after string
	for i := 0; i < runs; i++ {
		app := fmt.Sprintf("app-%03d", 10+i)
		tag := fmt.Sprintf("v%d", atomic.AddInt64(&next, 1))
		if err := setTag(url, app, "integration", tag); err != nil {
			return err
		}
		p, _, err := start(promoter, cfg, tokenFile)
		if err != nil {
			return err
		}
		d, outcome, err := p.promote(app, "integration", tag)
		if i == 0 {
			after = p.rss()
		}
		p.stop()
		if err != nil {
			return err
		}
		if !strings.HasPrefix(outcome, "Succeeded: promoted") {
			return fmt.Errorf("promotion of %s %s: %s", app, tag, outcome)
		}
		prom = append(prom, d)
		t0 := time.Now()
		cmd := exec.Command(bumpTag, "--repo", url, "--app", fmt.Sprintf("app-%03d", 100+i), "--env", "staging",
			"--tag", fmt.Sprintf("v%d", atomic.AddInt64(&next, 1)), "--log-format", "json")
		cmd.Env = append(os.Environ(), "SLIPWAY_GIT_TOKEN="+pass, "SLIPWAY_GIT_USERNAME="+user)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("bump-tag: %v: %s", err, out)
		}
		bump = append(bump, time.Since(t0))
	}
	fmt.Printf("| full promotion (fetch + commit + push), median of %d | %s | %s (`bump-tag`, one write) | %.2f |\n",
		runs, ms(median(prom)), ms(median(bump)), median(prom).Seconds()/median(bump).Seconds())
	fmt.Printf("| RSS after one promotion on this repo | %s | | |\n", after)
	return nil
}

// setTag sets env's tag for app through a bump-tag-free path (git CLI).
func setTag(url, app, env, tag string) error {
	dir, err := os.MkdirTemp("", "benchpromoter-set")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	auth := strings.Replace(url, "http://", "http://"+user+":"+pass+"@", 1)
	if err := benchrepo.Git("", "clone", "-q", "--depth", "1", auth, dir); err != nil {
		return err
	}
	path := filepath.Join(dir, "charts/app-config/image-tags", env, app)
	content := fmt.Sprintf("image_tag: %s\nautomatic_deploys_enabled: true\npromote_deployment: true\n", tag)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		return err
	}
	if err := benchrepo.Git(dir, "commit", "-q", "-am", "release "+tag); err != nil {
		return err
	}
	return benchrepo.Git(dir, "push", "-q", "origin", "HEAD:main")
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
