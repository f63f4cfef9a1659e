// Command benchbump measures bump-tag against the git command line on a
// synthetic charts repo (300 apps x 3 environments, 20,000 commits) served
// by git http-backend on loopback, and prints a markdown report: one bump,
// 10 and 20 concurrent bumps (wall time and retries), peak memory, and
// go-git clone into memory vs into a temp dir. Run it through
// hack/bench-bump-tag.sh.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	gogithttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/slipway-deploy/slipway/hack/benchrepo"
)

const (
	user = "bench"
	pass = "bench-token"
)

var envs = benchrepo.Envs

func main() {
	cache := flag.String("cache", ".cache/bench", "folder for the synthetic repo")
	bin := flag.String("bump-tag", "bin/bump-tag", "bump-tag binary")
	apps := flag.Int("apps", 300, "apps in the synthetic repo")
	commits := flag.Int("commits", 20000, "commits of history")
	runs := flag.Int("runs", 10, "runs of the single-bump measurement")
	flag.Parse()
	if err := run(*cache, *bin, *apps, *commits, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "benchbump:", err)
		os.Exit(1)
	}
}

func run(cache, bin string, apps, commits, runs int) error {
	bin, _ = filepath.Abs(bin)
	url, addr, err := benchrepo.Serve(cache, apps, commits, user, pass)
	if err != nil {
		return err
	}
	authURL := "http://" + user + ":" + pass + "@" + addr + "/charts.git"
	work, err := os.MkdirTemp("", "benchbump")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	// Tags only ever grow, across runs too (the cached repo keeps earlier runs' tags).
	next := time.Now().Unix() * 1000
	tag := func() string { return fmt.Sprintf("v%d", atomic.AddInt64(&next, 1)) }
	app := func(i int) string { return fmt.Sprintf("app-%03d", i%apps) }

	fmt.Printf("Synthetic repo: %d apps x %d environments, %d commits; git http-backend on loopback.\n\n", apps, len(envs), commits)

	// One bump, alternating tools so drift hits both alike.
	var slip, cli []time.Duration
	for i := 0; i < runs; i++ {
		d, _, err := bumpTag(bin, url, app(i), "staging", tag())
		if err != nil {
			return err
		}
		slip = append(slip, d)
		d, _, err = gitCLI(work, authURL, app(i+100), "staging", tag(), fmt.Sprint(i))
		if err != nil {
			return err
		}
		cli = append(cli, d)
	}
	ms, mc := median(slip), median(cli)
	fmt.Printf("| measurement | bump-tag | git CLI | ratio |\n|---|---|---|---|\n")
	fmt.Printf("| one bump, median of %d | %s | %s | %.2f |\n", runs, fmtD(ms), fmtD(mc), ms.Seconds()/mc.Seconds())

	for _, k := range []int{10, 20} {
		ws, rs, err := concurrent(k, func(i int) (int, error) {
			_, r, err := bumpTag(bin, url, app(200+i), "production", tag())
			return r, err
		})
		if err != nil {
			return err
		}
		wc, rc, err := concurrent(k, func(i int) (int, error) {
			_, r, err := gitCLI(work, authURL, app(250+i), "production", tag(), fmt.Sprintf("c%d-%d", k, i))
			return r, err
		})
		if err != nil {
			return err
		}
		fmt.Printf("| %d concurrent bumps: wall time | %s | %s | %.2f |\n", k, fmtD(ws), fmtD(wc), ws.Seconds()/wc.Seconds())
		fmt.Printf("| %d concurrent bumps: retries | %d | %d | |\n", k, rs, rc)
	}

	if rss, err := peakRSS(bin, url, app(7), "integration", tag()); err == nil {
		cliRSS, _ := peakRSSCLI(work, authURL)
		fmt.Printf("| peak RSS of one bump (/usr/bin/time -v) | %s | %s (git clone) | |\n", rss, cliRSS)
	} else {
		fmt.Printf("\npeak RSS: %v\n", err)
	}

	// Where the clone goes: memory vs a temp dir, go-git, depth 1.
	var mem, disk []time.Duration
	for i := 0; i < runs; i++ {
		t0 := time.Now()
		if _, err := git.Clone(memory.NewStorage(), nil, cloneOpts(url)); err != nil {
			return err
		}
		mem = append(mem, time.Since(t0))
		dir := filepath.Join(work, fmt.Sprintf("clone-%d", i))
		t0 = time.Now()
		if _, err := git.PlainClone(dir, true, cloneOpts(url)); err != nil {
			return err
		}
		disk = append(disk, time.Since(t0))
	}
	fmt.Printf("| go-git depth-1 clone: memory vs temp dir | %s | %s (temp dir) | %.2f |\n", fmtD(median(mem)), fmtD(median(disk)), median(mem).Seconds()/median(disk).Seconds())
	return nil
}

func cloneOpts(url string) *git.CloneOptions {
	return &git.CloneOptions{URL: url, Depth: 1, SingleBranch: true, ReferenceName: plumbing.NewBranchReferenceName("main"),
		Tags: git.NoTags, Auth: &gogithttp.BasicAuth{Username: user, Password: pass}}
}

var movedRE = regexp.MustCompile(`branch moved under us`)

// bumpTag runs one bump-tag process and returns its wall time and retries.
func bumpTag(bin, url, app, env, tag string) (time.Duration, int, error) {
	cmd := exec.Command(bin, "--repo", url, "--app", app, "--env", env, "--tag", tag, "--log-format", "json")
	cmd.Env = append(os.Environ(), "SLIPWAY_GIT_TOKEN="+pass, "SLIPWAY_GIT_USERNAME="+user)
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(t0)
	if err != nil {
		return d, 0, fmt.Errorf("bump-tag %s %s: %v\n%s", app, tag, err, out)
	}
	return d, len(movedRE.FindAll(out, -1)), nil
}

// gitCLI does what a shell script does: shallow clone, edit, commit, push,
// and on a rejected push `pull --rebase` and push again.
func gitCLI(work, url, app, env, tag, id string) (time.Duration, int, error) {
	dir := filepath.Join(work, "cli-"+id+"-"+tag)
	t0 := time.Now()
	defer os.RemoveAll(dir)
	if err := benchrepo.Git("", "clone", "-q", "--depth", "1", "--single-branch", "--branch", "main", url, dir); err != nil {
		return 0, 0, err
	}
	path := filepath.Join(dir, "charts/app-config/image-tags", env, app)
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	re := regexp.MustCompile(`(?m)^image_tag: .*$`)
	if err := os.WriteFile(path, re.ReplaceAll(b, []byte("image_tag: "+tag)), 0o644); err != nil {
		return 0, 0, err
	}
	if err := benchrepo.Git(dir, "commit", "-q", "-am", "Update "+app+" image tag to "+tag+" for "+env); err != nil {
		return 0, 0, err
	}
	retries := 0
	for benchrepo.Git(dir, "push", "-q", "origin", "HEAD:main") != nil {
		retries++
		if retries > 100 {
			return 0, retries, fmt.Errorf("git CLI: gave up after %d retries", retries)
		}
		if err := benchrepo.Git(dir, "pull", "-q", "--rebase", "origin", "main"); err != nil {
			return 0, retries, err
		}
	}
	return time.Since(t0), retries, nil
}

// concurrent starts k writers at once; it returns the wall time until the
// last one finished and the total retries.
func concurrent(k int, fn func(i int) (int, error)) (time.Duration, int, error) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	total := 0
	start := make(chan struct{})
	for i := 0; i < k; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			r, err := fn(i)
			mu.Lock()
			defer mu.Unlock()
			total += r
			if err != nil && firstErr == nil {
				firstErr = err
			}
		}(i)
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	return time.Since(t0), total, firstErr
}

func peakRSS(bin, url, app, env, tag string) (string, error) {
	cmd := exec.Command("/usr/bin/time", "-v", bin, "--repo", url, "--app", app, "--env", env, "--tag", tag)
	cmd.Env = append(os.Environ(), "SLIPWAY_GIT_TOKEN="+pass, "SLIPWAY_GIT_USERNAME="+user)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%v: %s", err, out)
	}
	return maxRSS(string(out))
}

func peakRSSCLI(work, url string) (string, error) {
	dir := filepath.Join(work, "rss-clone")
	defer os.RemoveAll(dir)
	out, err := exec.Command("/usr/bin/time", "-v", "git", "clone", "-q", "--depth", "1", "--single-branch", url, dir).CombinedOutput()
	if err != nil {
		return "", err
	}
	return maxRSS(string(out))
}

func maxRSS(out string) (string, error) {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); strings.HasPrefix(l, "Maximum resident set size (kbytes):") {
			var kb int
			fmt.Sscan(strings.TrimPrefix(l, "Maximum resident set size (kbytes):"), &kb)
			return fmt.Sprintf("%.1f MiB", float64(kb)/1024), nil
		}
	}
	return "", fmt.Errorf("no RSS in /usr/bin/time output")
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func fmtD(d time.Duration) string { return fmt.Sprintf("%.3f s", d.Seconds()) }
