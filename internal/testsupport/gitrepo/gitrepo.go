// Package gitrepo runs a real git server for tests: a bare repository served
// by `git http-backend` behind net/http/cgi on a loopback port, with basic
// auth enforced, and reachable over file:// too. Seeding and inspection use
// the git command line, so tests check what real git sees.
package gitrepo

import (
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/slipway-deploy/slipway/internal/testsupport/gitserver"
)

// Default credentials the server demands.
const (
	User     = "slipway-ci"
	Password = "s3cret-T0ken-value"
)

// Server is a bare charts repo served over HTTP and file://.
type Server struct {
	t      testing.TB
	Dir    string // the bare repository
	Branch string
	http   *httptest.Server
	srv    *gitserver.Server
}

// Pushes counts the pushes the server received.
func (s *Server) Pushes() int64 { return s.srv.Pushes.Load() }

// New creates a bare repository with branch "main" holding files (path ->
// content) in one commit, and serves it on loopback until the test ends.
func New(t testing.TB, files map[string]string) *Server {
	t.Helper()
	s := &Server{t: t, Dir: filepath.Join(t.TempDir(), "charts.git"), Branch: "main"}
	s.git("", "init", "--bare", "--initial-branch=main", s.Dir)
	s.Git("config", "http.receivepack", "true")
	s.Git("config", "receive.denyNonFastForwards", "true")
	if len(files) > 0 {
		s.Commit("Seed charts repo", files)
	}
	srv, err := gitserver.New(filepath.Dir(s.Dir), User, Password)
	if err != nil {
		t.Fatalf("git http server: %v", err)
	}
	s.srv = srv
	s.http = httptest.NewServer(srv)
	t.Cleanup(s.http.Close)
	return s
}

// URL is the repository's HTTP URL (credentials not included).
func (s *Server) URL() string { return s.http.URL + "/" + filepath.Base(s.Dir) }

// FileURL is the repository's file:// URL.
func (s *Server) FileURL() string { return "file://" + s.Dir }

// Git runs git in the bare repository and returns its trimmed output.
func (s *Server) Git(args ...string) string {
	s.t.Helper()
	return s.git(s.Dir, args...)
}

func (s *Server) git(dir string, args ...string) string {
	s.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=Seeder", "GIT_AUTHOR_EMAIL=seed@example.invalid",
		"GIT_COMMITTER_NAME=Seeder", "GIT_COMMITTER_EMAIL=seed@example.invalid",
		"GIT_CONFIG_NOSYSTEM=1", "HOME="+os.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		s.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Commit writes files (path -> content) onto the branch as one commit made
// by the git command line, as another writer would, and returns its hash.
func (s *Server) Commit(msg string, files map[string]string) string {
	s.t.Helper()
	work := s.t.TempDir()
	if s.Git("for-each-ref", "refs/heads/"+s.Branch) != "" {
		s.git(work, "clone", "-q", "--branch", s.Branch, s.Dir, ".")
	} else {
		s.git(work, "init", "-q", "--initial-branch="+s.Branch)
		s.git(work, "remote", "add", "origin", s.Dir)
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		full := filepath.Join(work, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			s.t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(files[p]), 0o644); err != nil {
			s.t.Fatal(err)
		}
	}
	s.git(work, "add", "-A")
	s.git(work, "commit", "-q", "-m", msg)
	s.git(work, "push", "-q", "origin", "HEAD:refs/heads/"+s.Branch)
	return s.git(work, "rev-parse", "HEAD")
}

// Read returns a file's content at the branch head, and whether it exists.
func (s *Server) Read(path string) (string, bool) {
	s.t.Helper()
	cmd := exec.Command("git", "show", s.Branch+":"+path)
	cmd.Dir = s.Dir
	out, err := cmd.Output()
	if err != nil {
		return "", false
	}
	return string(out), true
}

// Head returns the branch's commit hash.
func (s *Server) Head() string { return s.Git("rev-parse", s.Branch) }

// CommitCount counts the commits on the branch.
func (s *Server) CommitCount() int {
	var n int
	fmt.Sscan(s.Git("rev-list", "--count", s.Branch), &n)
	return n
}

// Branches lists the repository's branches.
func (s *Server) Branches() []string {
	out := s.Git("for-each-ref", "--format=%(refname:short)", "refs/heads/")
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

// EmptyCommits lists commits on the branch whose tree equals their parent's.
func (s *Server) EmptyCommits() []string {
	var empty []string
	for _, line := range strings.Split(s.Git("log", "--format=%H %T %P", s.Branch), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && s.Git("rev-parse", f[2]+"^{tree}") == f[1] {
			empty = append(empty, f[0])
		}
	}
	return empty
}

// Message returns a commit's full message.
func (s *Server) Message(rev string) string { return s.Git("log", "-1", "--format=%B", rev) }

// InstallHook writes an executable hook script (e.g. "pre-receive").
func (s *Server) InstallHook(name, script string) {
	s.t.Helper()
	p := filepath.Join(s.Dir, "hooks", name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		s.t.Fatal(err)
	}
}
