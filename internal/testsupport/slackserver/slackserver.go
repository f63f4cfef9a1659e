// Package slackserver is a loopback HTTP server standing in for a Slack
// incoming webhook: it answers posts from a script of replies and records
// every post, and the order of events (posts, replies, log lines), so a
// test can assert what happened in which order rather than how long it
// took.
package slackserver

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Reply is one scripted answer.
type Reply struct {
	Status int // 0: 200
	Body   string
	Header map[string]string // e.g. Retry-After, Location
}

// OK is Slack's reply to a post it took.
var OK = Reply{Status: http.StatusOK, Body: "ok"}

// Post is one request the server received.
type Post struct {
	Path        string
	ContentType string
	Body        []byte
	// At is when it arrived; RepliedAt is taken before its reply is
	// written, so the client cannot have read the reply earlier.
	At, RepliedAt time.Time
	Reply         Reply
}

// Server is the stand-in. Its zero script answers every post with OK; a
// script's last reply repeats.
type Server struct {
	URL string // http://127.0.0.1:PORT

	mu     sync.Mutex
	script []Reply
	posts  []Post
	events []string
}

// Start starts a server answering with script, closed when t ends.
func Start(t testing.TB, script ...Reply) *Server {
	t.Helper()
	s := &Server{script: script}
	ts := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(ts.Close)
	s.URL = ts.URL
	return s
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	p := Post{Path: r.URL.RequestURI(), ContentType: r.Header.Get("Content-Type"), Body: body, At: time.Now()}
	p.Reply = OK
	if n := len(s.posts); n < len(s.script) {
		p.Reply = s.script[n]
	} else if len(s.script) > 0 {
		p.Reply = s.script[len(s.script)-1]
	}
	if p.Reply.Status == 0 {
		p.Reply.Status = http.StatusOK
	}
	s.events = append(s.events, fmt.Sprintf("post %d", len(s.posts)+1))
	s.events = append(s.events, fmt.Sprintf("reply %d", p.Reply.Status))
	p.RepliedAt = time.Now()
	s.posts = append(s.posts, p)
	s.mu.Unlock()
	for k, v := range p.Reply.Header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(p.Reply.Status)
	_, _ = io.WriteString(w, p.Reply.Body)
}

// Posts returns the posts received so far.
func (s *Server) Posts() []Post {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Post(nil), s.posts...)
}

// Events returns what happened, in order: "post N", "reply STATUS", and
// "log: LINE" for each line written to LogWriter.
func (s *Server) Events() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.events...)
}

// LogWriter is a writer whose lines join the events (give it to the
// client's logger).
func (s *Server) LogWriter() io.Writer { return logWriter{s} }

type logWriter struct{ s *Server }

func (w logWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.s.events = append(w.s.events, "log: "+line)
	}
	return len(p), nil
}
