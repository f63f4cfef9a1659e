// Package redact keeps secrets (tokens, passwords, webhook URLs) out of
// everything a step prints: log lines, the final error line and output files.
// A Redactor is given the secrets once and wraps every writer the step uses,
// so a secret echoed back by a remote (inside a URL, say) is still masked.
package redact

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Mask replaces every secret.
const Mask = "***"

// Redactor masks a set of secrets. The zero value masks nothing. It is safe
// for concurrent use.
type Redactor struct {
	mu      sync.RWMutex
	secrets []string
}

// Add registers secrets to mask. Empty strings and whitespace-only strings
// are ignored (masking them would mangle every line). For each secret its
// URL-escaped forms are added too, since remotes echo URLs, and its Go-quoted,
// JSON and XML forms, for text that was encoded before it reached a redacting
// writer (an error's %q, a report); masking before encoding is the rule, these
// forms are the safety net.
func (r *Redactor) Add(secrets ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range secrets {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		for _, v := range forms(s) {
			if v != "" && !contains(r.secrets, v) {
				r.secrets = append(r.secrets, v)
			}
		}
	}
	// longest first, so a secret containing another is masked whole
	sort.Slice(r.secrets, func(i, j int) bool { return len(r.secrets[i]) > len(r.secrets[j]) })
}

// forms is s as URLs, Go quoting, JSON and XML write it.
func forms(s string) []string {
	out := []string{s, url.QueryEscape(s), url.PathEscape(s), url.UserPassword("x", s).String()[2:]}
	quoted := strconv.Quote(s)
	out = append(out, quoted[1:len(quoted)-1])
	if js, err := json.Marshal(s); err == nil { // HTML-safe: & < > as \u0026 ...
		out = append(out, string(js[1:len(js)-1]))
	}
	var plain bytes.Buffer
	enc := json.NewEncoder(&plain)
	enc.SetEscapeHTML(false)
	if enc.Encode(s) == nil {
		js := bytes.TrimSpace(plain.Bytes())
		out = append(out, string(js[1:len(js)-1]))
	}
	var x strings.Builder
	if xml.EscapeText(&x, []byte(s)) == nil {
		out = append(out, x.String(), strings.ReplaceAll(x.String(), "&#xA;", "\n"))
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// String masks every secret in s.
func (r *Redactor) String(s string) string {
	if r == nil {
		return s
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, sec := range r.secrets {
		s = strings.ReplaceAll(s, sec, Mask)
	}
	return s
}

// Bytes masks every secret in b, returning b itself when there is none.
func (r *Redactor) Bytes(b []byte) []byte {
	if r == nil {
		return b
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, sec := range r.secrets {
		if bytes.Contains(b, []byte(sec)) {
			b = bytes.ReplaceAll(b, []byte(sec), []byte(Mask))
		}
	}
	return b
}

// Writer returns a writer that masks secrets in each Write before passing it
// on. Each Write is treated as a whole (slog writes one line per call).
func (r *Redactor) Writer(w io.Writer) io.Writer { return &writer{r: r, w: w} }

type writer struct {
	r *Redactor
	w io.Writer
}

func (w *writer) Write(p []byte) (int, error) {
	if _, err := w.w.Write(w.r.Bytes(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// URL returns rawURL with any password in its user info masked; an
// unparseable URL is returned masked of known secrets only.
func (r *Redactor) URL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil {
		return r.String(rawURL)
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), Mask)
	}
	return r.String(strings.Replace(u.String(), url.QueryEscape(Mask), Mask, 1))
}
