package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// faultProxy is a loopback reverse proxy in front of the S3 server. It fails
// a share of requests (500, 503 SlowDown, connection reset, slow response),
// always fails requests matching failAlways, and logs every request's start
// and end in order.
type faultProxy struct {
	URL        string
	rp         *httputil.ReverseProxy
	rate       float64
	failAlways func(r *http.Request) bool

	mu     sync.Mutex
	rng    *rand.Rand
	events []proxyEvent
	faults map[string]int
}

type proxyEvent struct {
	start  bool
	method string
	path   string
	query  string
	status int    // end events: the status the client got (0: connection reset)
	code   string // injected S3 error code
}

func newFaultProxy(t *testing.T, target string, rate float64, seed uint64) *faultProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{rp: httputil.NewSingleHostReverseProxy(u), rate: rate,
		rng: rand.New(rand.NewPCG(seed, 42)), faults: map[string]int{}}
	p.rp.ErrorLog = nil
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

func (p *faultProxy) record(e proxyEvent) {
	p.mu.Lock()
	p.events = append(p.events, e)
	p.mu.Unlock()
}

func (p *faultProxy) pick(r *http.Request) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failAlways != nil && p.failAlways(r) {
		p.faults["always500"]++
		return "always500"
	}
	if p.rng.Float64() >= p.rate {
		return ""
	}
	kind := []string{"500", "503", "reset", "slow"}[p.rng.IntN(4)]
	p.faults[kind]++
	return kind
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ev := proxyEvent{method: r.Method, path: r.URL.Path, query: r.URL.RawQuery}
	start := ev
	start.start = true
	p.record(start)
	fault := p.pick(r)
	switch fault {
	case "500", "503", "always500":
		io.Copy(io.Discard, r.Body)
		ev.status, ev.code = http.StatusInternalServerError, "InternalError"
		if fault == "503" {
			ev.status, ev.code = http.StatusServiceUnavailable, "SlowDown"
		}
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(ev.status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>injected fault</Message></Error>`, ev.code)
		p.record(ev)
		return
	case "reset":
		io.Copy(io.Discard, r.Body)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			if tc, ok := conn.(*net.TCPConn); ok {
				tc.SetLinger(0) // RST, not FIN
			}
			conn.Close()
		}
		p.record(ev)
		return
	case "slow":
		time.Sleep(time.Duration(200+rand.IntN(400)) * time.Millisecond)
	}
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	p.rp.ServeHTTP(sw, r)
	ev.status = sw.status
	p.record(ev)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (p *faultProxy) snapshot() ([]proxyEvent, map[string]int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	faults := map[string]int{}
	for k, v := range p.faults {
		faults[k] = v
	}
	return append([]proxyEvent(nil), p.events...), faults
}

// puts counts object-writing requests (PutObject, UploadPart, multipart
// create/complete) that reached the proxy.
func (p *faultProxy) puts() int {
	events, _ := p.snapshot()
	n := 0
	for _, e := range events {
		if e.start && (e.method == http.MethodPut || e.method == http.MethodPost) {
			n++
		}
	}
	return n
}

// objectKey is the key of a path-style request path below bucket.
func objectKey(path, bucket string) string {
	return strings.TrimPrefix(path, "/"+bucket+"/")
}
