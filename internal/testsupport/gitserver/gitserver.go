// Package gitserver serves git repositories over HTTP with the real
// `git http-backend` behind net/http/cgi, with basic auth enforced. Tests
// (through gitrepo), the demo and the benchmarks use it as the charts
// repo's remote.
package gitserver

import (
	"io"
	"net/http"
	"net/http/cgi"
	"os/exec"
	"strings"
	"sync/atomic"
)

// Server is an http.Handler for every repository under Root.
type Server struct {
	Root     string // folder holding bare repositories
	User     string // required basic-auth user; empty disables auth
	Password string
	// Pushes counts receive-pack POSTs; Refused counts bad credentials.
	Pushes  atomic.Int64
	Refused atomic.Int64
	backend *cgi.Handler
}

// New returns a server for the bare repositories under root.
func New(root, user, password string) (*Server, error) {
	git, err := exec.LookPath("git")
	if err != nil {
		return nil, err
	}
	return &Server{Root: root, User: user, Password: password, backend: &cgi.Handler{
		Path: git,
		Args: []string{"http-backend"},
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"},
		// "cannot lock ref" on every lost race is expected; keep it off the terminal.
		Stderr: io.Discard,
	}}, nil
}

// ServeHTTP checks credentials and hands the request to git http-backend.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.User != "" {
		u, p, ok := r.BasicAuth()
		if !ok || u != s.User || p != s.Password {
			s.Refused.Add(1)
			w.Header().Set("WWW-Authenticate", `Basic realm="charts"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
	}
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-receive-pack") {
		s.Pushes.Add(1)
	}
	s.backend.ServeHTTP(w, r)
}
