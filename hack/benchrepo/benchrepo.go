// Package benchrepo builds the synthetic charts repo the benchmarks share
// (300 apps x 3 environments with 20,000 commits of history by default;
// the release-control benchmark takes 1,000 apps and 5,000 commits), and
// serves it over HTTP, with added latency where a benchmark asks.
package benchrepo

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/slipway-deploy/slipway/internal/testsupport/gitserver"
)

// Envs are the environments of the synthetic repo.
var Envs = []string{"integration", "staging", "production"}

var envs = Envs

// Git runs git in dir with a fixed identity.
func Git(dir string, args ...string) error {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=CLI", "GIT_AUTHOR_EMAIL=cli@localhost",
		"GIT_COMMITTER_NAME=CLI", "GIT_COMMITTER_EMAIL=cli@localhost", "GIT_TERMINAL_PROMPT=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("git %s: %v: %s", args[0], err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Generate builds the synthetic repo once with git fast-import: one commit
// adding every tag file, then commits that each bump one file.
func Generate(repo string, apps, commits int) error {
	marker := filepath.Join(repo, fmt.Sprintf("slipway-bench-%d-%d", apps, commits))
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	os.RemoveAll(repo)
	if err := Git("", "init", "-q", "--bare", "--initial-branch=main", repo); err != nil {
		return err
	}
	if err := Git(repo, "config", "http.receivepack", "true"); err != nil {
		return err
	}
	cmd := exec.CommandContext(context.Background(), "git", "fast-import", "--quiet")
	cmd.Dir = repo
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	w := bufio.NewWriterSize(stdin, 1<<20)
	data := func(s string) { fmt.Fprintf(w, "data %d\n%s\n", len(s), s) }
	ts := int64(1700000000)
	for c := 1; c <= commits; c++ {
		fmt.Fprintf(w, "commit refs/heads/main\nmark :%d\ncommitter Seeder <seed@localhost> %d +0000\n", c, ts+int64(c)*60)
		data(fmt.Sprintf("commit %d", c))
		if c > 1 {
			fmt.Fprintf(w, "from :%d\n", c-1)
		}
		if c == 1 {
			for a := 0; a < apps; a++ {
				for _, e := range envs {
					fmt.Fprintf(w, "M 100644 inline charts/app-config/image-tags/%s/app-%03d\n", e, a)
					data(fmt.Sprintf("image_tag: v1\nautomatic_deploys_enabled: true\npromote_deployment: true\n"))
				}
			}
		} else {
			a, e := c%apps, envs[c%len(envs)]
			fmt.Fprintf(w, "M 100644 inline charts/app-config/image-tags/%s/app-%03d\n", e, a)
			data(fmt.Sprintf("image_tag: v%d\nautomatic_deploys_enabled: true\npromote_deployment: true\n", c))
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("git fast-import: %w", err)
	}
	if err := Git(repo, "gc", "-q"); err != nil {
		return err
	}
	return os.WriteFile(marker, nil, 0o644)
}

// Serve generates (once, cached under cache) the repo and serves it with
// git http-backend on loopback, demanding user and pass. It returns the
// repo's URL and the listener's address.
func Serve(cache string, apps, commits int, user, pass string) (url, addr string, err error) {
	root, err := filepath.Abs(cache)
	if err != nil {
		return "", "", err
	}
	if err := Generate(filepath.Join(root, "charts.git"), apps, commits); err != nil {
		return "", "", err
	}
	srv, err := gitserver.New(root, user, pass)
	if err != nil {
		return "", "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", err
	}
	go http.Serve(ln, srv)
	return "http://" + ln.Addr().String() + "/charts.git", ln.Addr().String(), nil
}

// Latency delays every request by d before handing it on: a stand-in for
// a remote git host's round trip, on loopback.
func Latency(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
		h.ServeHTTP(w, r)
	})
}

// ServeRoot serves the bare repositories under root with git http-backend
// on loopback, demanding user and pass, every request delayed by latency.
// It returns the base URL (http://addr) and a stop function.
func ServeRoot(root, user, pass string, latency time.Duration) (base string, stop func(), err error) {
	srv, err := gitserver.New(root, user, pass)
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	hs := &http.Server{Handler: Latency(srv, latency)}
	go hs.Serve(ln)
	return "http://" + ln.Addr().String(), func() { hs.Close() }, nil
}

// Copy makes a copy of the bare repository src at dst (hard links where it
// can: the objects are never written in place), so that a benchmark's
// writes leave the generated repo as it was.
func Copy(src, dst string) error {
	os.RemoveAll(dst)
	if err := Git("", "clone", "-q", "--bare", "--local", src, dst); err != nil {
		return err
	}
	return Git(dst, "config", "http.receivepack", "true")
}
