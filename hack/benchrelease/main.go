// Command benchrelease measures release control at scale, on a synthetic
// charts repo of 1,000 apps x 3 environments with 5,000 commits served by
// git http-backend on loopback with 20 ms added to every request (a
// stand-in for a remote git host):
//
//   - `promoter plan` over the whole repo, history included: wall time and
//     peak RSS of the process;
//   - 50 bump-tag processes started at once (45 apps, 5 racing on one):
//     whether all land, the slowest, and where the time went (attempts,
//     backoff, CPU per attempt); side by side with the git command line
//     doing the same with a pull --rebase retry loop.
//
// Run it through hack/bench-release.sh.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/slipway-deploy/slipway/hack/benchrepo"
)

const (
	user = "bench"
	pass = "bench-token"
)

func main() {
	cache := flag.String("cache", ".cache/bench-release", "folder for the synthetic repo")
	promoter := flag.String("promoter", "bin/promoter", "promoter binary")
	bumpTag := flag.String("bump-tag", "bin/bump-tag", "bump-tag binary")
	apps := flag.Int("apps", 1000, "apps in the synthetic repo")
	commits := flag.Int("commits", 5000, "commits of history")
	latency := flag.Duration("latency", 20*time.Millisecond, "added to every request")
	runs := flag.Int("runs", 5, "runs of the plan")
	writers := flag.Int("writers", 50, "bump-tag processes started at once")
	racing := flag.Int("racing", 5, "of which racing on one app")
	only := flag.String("only", "", "plan or writers (default both)")
	cliAttempts := flag.Int("cli-attempts", 10, "push attempts of the git CLI loop (bump-tag's default --max-attempts; 0: skip the CLI)")
	flag.Parse()
	b := &bench{promoter: abs(*promoter), bumpTag: abs(*bumpTag), latency: *latency, apps: *apps, commits: *commits}
	if err := b.setup(*cache); err != nil {
		fail(err)
	}
	defer b.stop()
	fmt.Printf("Synthetic repo: %d apps x 3 environments, %d commits; git http-backend on loopback, %s added to every request.\n\n",
		*apps, *commits, *latency)
	if *only != "writers" {
		if err := b.plan(*runs); err != nil {
			fail(err)
		}
	}
	if *only != "plan" {
		if err := b.writers(*writers, *racing, *cliAttempts); err != nil {
			fail(err)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "benchrelease:", err)
	os.Exit(1)
}

func abs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		fail(err)
	}
	return a
}

type bench struct {
	promoter, bumpTag string
	latency           time.Duration
	apps, commits     int
	generated, root   string
	base              string
	stop              func()
}

// setup generates the repo once (cached) and serves a folder of copies.
func (b *bench) setup(cache string) error {
	cache = abs(cache)
	b.generated = filepath.Join(cache, fmt.Sprintf("generated-%d-%d.git", b.apps, b.commits))
	if err := benchrepo.Generate(b.generated, b.apps, b.commits); err != nil {
		return err
	}
	b.root = filepath.Join(cache, "served")
	if err := os.MkdirAll(b.root, 0o755); err != nil {
		return err
	}
	var err error
	b.base, b.stop, err = benchrepo.ServeRoot(b.root, user, pass, b.latency)
	return err
}

// fresh is a copy of the generated repo, served as name.
func (b *bench) fresh(name string) (string, error) {
	if err := benchrepo.Copy(b.generated, filepath.Join(b.root, name+".git")); err != nil {
		return "", err
	}
	return b.base + "/" + name + ".git", nil
}

// proc is one finished process: wall time, CPU, peak RSS, output.
type proc struct {
	wall, cpu time.Duration
	rssKiB    int64
	code      int
	out       string // stdout and stderr
	stdout    string
}

func run(env []string, name string, args ...string) proc {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.MultiWriter(&out, &stdout), &out
	t0 := time.Now()
	err := cmd.Run()
	p := proc{wall: time.Since(t0), out: out.String(), stdout: stdout.String()}
	if cmd.ProcessState != nil {
		p.code = cmd.ProcessState.ExitCode()
		p.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			p.rssKiB = ru.Maxrss
		}
	} else if err != nil {
		p.code, p.out = -1, err.Error()
	}
	return p
}

func (b *bench) plan(runs int) error {
	url, err := b.fresh("plan")
	if err != nil {
		return err
	}
	cfg := fmt.Sprintf("repo:\n  url: %s\nenvironments: [integration, staging, production]\nsoak:\n  production: 30m\ngit:\n  username: %s\n", url, user)
	var walls []time.Duration
	var rss int64
	var last proc
	for range runs {
		p := run([]string{"SLIPWAY_GIT_TOKEN=" + pass, "SLIPWAY_CONFIG_YAML=" + cfg}, b.promoter, "plan", "--output", "json", "--log-format", "json")
		if p.code != 0 {
			return fmt.Errorf("promoter plan: exit %d: %s", p.code, tail(p.out))
		}
		walls = append(walls, p.wall)
		rss = max(rss, p.rssKiB)
		last = p
	}
	var res struct {
		Apps []struct {
			Steps []struct{ Outcome string } `json:"steps"`
		} `json:"apps"`
		Drift []json.RawMessage `json:"drift"`
	}
	if err := json.Unmarshal([]byte(last.stdout), &res); err != nil {
		return fmt.Errorf("plan output: %w", err)
	}
	fmt.Printf("| `promoter plan`, %d apps x 3 environments, %d commits (median of %d) | target |\n|---|---|\n", b.apps, b.commits, runs)
	fmt.Printf("| wall, exec to exit: median %s, slowest %s | <= 2 s |\n", secs(median(walls)), secs(maxD(walls)))
	fmt.Printf("| peak RSS: %.1f MiB | <= 150 MiB |\n", float64(rss)/1024)
	fmt.Printf("| CPU (user+sys) of the last run: %s | |\n", secs(last.cpu))
	fmt.Printf("| apps planned: %d, drift entries: %d | |\n\n", len(res.Apps), len(res.Drift))
	return nil
}

// writer is one writer's job and how it went.
type writer struct {
	app, tag string
	proc
	attempts int
	waited   time.Duration
	// phases are each attempt's fetch, edit and push times.
	phases [][3]time.Duration
}

var (
	waitRE  = regexp.MustCompile(`"wait":"([^"]+)"`)
	phaseRE = regexp.MustCompile(`"fetch":"([^"]+)","edit":"([^"]+)","push":"([^"]+)"`)
)

func (b *bench) writers(n, racing, cliAttempts int) error {
	jobs := func() []*writer {
		var ws []*writer
		base := time.Now().Unix()
		for i := range n - racing {
			ws = append(ws, &writer{app: fmt.Sprintf("app-%03d", i), tag: fmt.Sprintf("v%d", base+int64(i))})
		}
		for i := range racing {
			ws = append(ws, &writer{app: fmt.Sprintf("app-%03d", n-racing), tag: fmt.Sprintf("v%d", base+int64(n+i))})
		}
		return ws
	}
	url, err := b.fresh("writers")
	if err != nil {
		return err
	}
	slip := jobs()
	wall := all(slip, func(w *writer) {
		w.proc = run([]string{"SLIPWAY_GIT_TOKEN=" + pass, "SLIPWAY_GIT_USERNAME=" + user}, b.bumpTag,
			"--repo", url, "--app", w.app, "--env", "production", "--tag", w.tag, "--log-format", "json", "--debug")
		w.attempts = 1 + strings.Count(w.out, "branch moved under us")
		for _, m := range waitRE.FindAllStringSubmatch(w.out, -1) {
			d, _ := time.ParseDuration(m[1])
			w.waited += d
		}
		for _, m := range phaseRE.FindAllStringSubmatch(w.out, -1) {
			var ph [3]time.Duration
			for i := range ph {
				ph[i], _ = time.ParseDuration(m[i+1])
			}
			w.phases = append(w.phases, ph)
		}
	})
	landed := b.landed(filepath.Join(b.root, "writers.git"), slip)

	cli, cliWall, cliLanded := jobs(), time.Duration(0), false
	if cliAttempts > 0 {
		curl, err := b.fresh("cli")
		if err != nil {
			return err
		}
		authURL := strings.Replace(curl, "http://", "http://"+user+":"+pass+"@", 1)
		work, err := os.MkdirTemp("", "benchrelease")
		if err != nil {
			return err
		}
		defer os.RemoveAll(work)
		cliWall = all(cli, func(w *writer) { gitCLI(work, authURL, w, cliAttempts) })
		cliLanded = b.landed(filepath.Join(b.root, "cli.git"), cli)
	}

	fmt.Printf("| %d writers at once (%d apps, %d racing on one) | bump-tag | git CLI, pull --rebase loop (%d attempts) |\n|---|---|---|\n",
		n, n-racing, racing, cliAttempts)
	row := func(name string, f func([]*writer) string) {
		other := "(skipped)"
		if cliAttempts > 0 {
			other = f(cli)
		}
		fmt.Printf("| %s | %s | %s |\n", name, f(slip), other)
	}
	row("all succeeded (exit 0)", func(ws []*writer) string {
		return fmt.Sprintf("%d of %d", count(ws, func(w *writer) bool { return w.code == 0 }), len(ws))
	})
	row("every change on the branch", func(ws []*writer) string {
		if &ws[0] == &slip[0] {
			return fmt.Sprint(landed)
		}
		return fmt.Sprint(cliLanded)
	})
	row("wall, first start to last exit", func(ws []*writer) string {
		if &ws[0] == &slip[0] {
			return secs(wall)
		}
		return secs(cliWall)
	})
	row("slowest writer (target <= 30 s)", func(ws []*writer) string { return secs(maxD(walls(ws))) })
	row("median writer", func(ws []*writer) string { return secs(median(walls(ws))) })
	row("attempts: total / most by one", func(ws []*writer) string {
		t, m := 0, 0
		for _, w := range ws {
			t, m = t+w.attempts, max(m, w.attempts)
		}
		return fmt.Sprintf("%d / %d", t, m)
	})
	row("time in backoff waits, summed", func(ws []*writer) string {
		var s time.Duration
		for _, w := range ws {
			s += w.waited
		}
		return secs(s)
	})
	row("CPU per attempt (user+sys, median)", func(ws []*writer) string {
		var per []time.Duration
		for _, w := range ws {
			per = append(per, w.cpu/time.Duration(max(w.attempts, 1)))
		}
		return secs(median(per))
	})
	row("peak RSS of one writer (largest)", func(ws []*writer) string {
		var m int64
		for _, w := range ws {
			m = max(m, w.rssKiB)
		}
		return fmt.Sprintf("%.1f MiB", float64(m)/1024)
	})
	var phases [3][]time.Duration
	for _, w := range slip {
		for _, ph := range w.phases {
			for i := range ph {
				phases[i] = append(phases[i], ph[i])
			}
		}
	}
	if len(phases[0]) > 0 {
		fmt.Printf("\nbump-tag, each attempt (median / p90 of %d): fetch %s / %s, edit and commit %s / %s, push %s / %s\n", len(phases[0]),
			secs(median(phases[0])), secs(p90(phases[0])), secs(median(phases[1])), secs(p90(phases[1])), secs(median(phases[2])), secs(p90(phases[2])))
	}
	for _, w := range slip {
		if w.code != 0 {
			fmt.Printf("\nbump-tag %s %s: exit %d: %s\n", w.app, w.tag, w.code, tail(w.out))
			break
		}
	}
	return nil
}

// landed checks the branch: each app's file holds its tag (the raced app
// the newest of its tags).
func (b *bench) landed(repo string, ws []*writer) bool {
	want := map[string]string{}
	for _, w := range ws {
		if cur, ok := want[w.app]; !ok || w.tag > cur {
			want[w.app] = w.tag
		}
	}
	for app, tag := range want {
		cmd := exec.Command("git", "show", "main:charts/app-config/image-tags/production/"+app)
		cmd.Dir = repo
		out, err := cmd.Output()
		if err != nil || !strings.Contains(string(out), "image_tag: "+tag+"\n") {
			return false
		}
	}
	return true
}

// gitCLI does what a shell script does: shallow clone, edit, commit, push,
// and on a rejected push `pull --rebase` and push again, up to attempts.
func gitCLI(work, url string, w *writer, attempts int) {
	dir := filepath.Join(work, "cli-"+w.app+"-"+w.tag)
	defer os.RemoveAll(dir)
	t0 := time.Now()
	var cpu time.Duration
	git := func(dir string, args ...string) error {
		p := run([]string{"GIT_AUTHOR_NAME=CLI", "GIT_AUTHOR_EMAIL=cli@localhost", "GIT_COMMITTER_NAME=CLI",
			"GIT_COMMITTER_EMAIL=cli@localhost", "GIT_TERMINAL_PROMPT=0"}, "git", append([]string{"-C", dir}, args...)...)
		cpu += p.cpu
		w.rssKiB = max(w.rssKiB, p.rssKiB)
		if p.code != 0 {
			return fmt.Errorf("git %s: %s", args[0], tail(p.out))
		}
		return nil
	}
	finish := func(code int) { w.wall, w.cpu, w.code = time.Since(t0), cpu, code }
	if err := git(work, "clone", "-q", "--depth", "1", "--single-branch", "--branch", "main", url, dir); err != nil {
		finish(1)
		return
	}
	path := filepath.Join(dir, "charts/app-config/image-tags/production", w.app)
	content, err := os.ReadFile(path)
	if err != nil {
		finish(1)
		return
	}
	re := regexp.MustCompile(`(?m)^image_tag: .*$`)
	if os.WriteFile(path, re.ReplaceAll(content, []byte("image_tag: "+w.tag)), 0o644) != nil ||
		git(dir, "commit", "-q", "-am", "Update "+w.app+" image tag to "+w.tag+" for production") != nil {
		finish(1)
		return
	}
	for w.attempts = 1; ; w.attempts++ {
		if git(dir, "push", "-q", "origin", "HEAD:main") == nil {
			finish(0)
			return
		}
		if w.attempts >= attempts || git(dir, "pull", "-q", "--rebase", "origin", "main") != nil {
			finish(1) // gave up (or a rebase conflict on the raced app)
			return
		}
	}
}

// all starts every job at once and returns the time until the last ends.
func all(ws []*writer, fn func(*writer)) time.Duration {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			fn(w)
		}()
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	return time.Since(t0)
}

func count(ws []*writer, f func(*writer) bool) int {
	n := 0
	for _, w := range ws {
		if f(w) {
			n++
		}
	}
	return n
}

func walls(ws []*writer) []time.Duration {
	var out []time.Duration
	for _, w := range ws {
		out = append(out, w.wall)
	}
	return out
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func p90(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)*9/10]
}

func maxD(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func tail(s string) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	var last []string
	for sc.Scan() {
		last = append(last, sc.Text())
		if len(last) > 3 {
			last = last[1:]
		}
	}
	return strings.Join(last, " | ")
}
