package journey

import (
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
)

// webApp is one environment's web server, standing in for its cluster's
// Deployments: each app serves the release it was last rolled to. A
// rollout (roll) re-reads the app's tag file from the charts repo, as Argo
// CD renders the chart at the synced commit, and swaps the running
// release. Pages link their fingerprinted assets, which the environment's
// asset bucket (a folder precompile-assets publishes to) serves, and
// /APP/healthcheck/ready says whether every asset of the running release is
// there.
type webApp struct {
	env    string
	url    string
	assets string // the environment's bucket: APP/<files>
	images *images
	tag    func(app string) (string, error) // the tag file's tag at the head

	mu      sync.Mutex
	running map[string]string // app -> tag
}

// handler serves /APP/, /APP/healthcheck/ready and /assets/.
func (a *webApp) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServer(http.Dir(a.assets))))
	for _, app := range apps {
		mux.HandleFunc("GET /"+app+"/{$}", func(w http.ResponseWriter, r *http.Request) { a.page(w, r, app) })
		mux.HandleFunc("GET /"+app+"/healthcheck/ready", func(w http.ResponseWriter, r *http.Request) { a.ready(w, r, app) })
	}
	return mux
}

// roll is the app's rollout: it runs the release its tag file names now.
func (a *webApp) roll(app string) (string, error) {
	tag, err := a.tag(app)
	if err != nil {
		return "", fmt.Errorf("roll %s in %s: %w", app, a.env, err)
	}
	if _, err := a.images.ensure(app, tag); err != nil {
		return "", err
	}
	a.mu.Lock()
	a.running[app] = tag
	a.mu.Unlock()
	return tag, nil
}

// release is what app runs, and its asset manifest.
func (a *webApp) release(app string) (string, manifest, bool) {
	a.mu.Lock()
	tag, ok := a.running[app]
	a.mu.Unlock()
	if !ok {
		return "", manifest{}, false
	}
	m, err := readManifest(filepath.Join(a.images.dir, app, tag, "public", "assets", app))
	return tag, m, err == nil
}

func (a *webApp) page(w http.ResponseWriter, r *http.Request, app string) {
	tag, m, ok := a.release(app)
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, `<!doctype html>
<title>%[1]s %[2]s (%[3]s)</title>
<link rel="stylesheet" href="/assets/%[1]s/%[4]s">
<h1>%[1]s</h1>
<p>Release <strong>%[2]s</strong>, in %[3]s.</p>
<script src="/assets/%[1]s/%[5]s"></script>
`, html.EscapeString(app), html.EscapeString(tag), a.env, m.Assets["application.css"], m.Assets["application.js"])
}

// ready answers 200 when every asset of the running release is published,
// 503 naming the missing ones otherwise.
func (a *webApp) ready(w http.ResponseWriter, r *http.Request, app string) {
	tag, m, ok := a.release(app)
	if !ok {
		http.NotFound(w, r)
		return
	}
	var missing []string
	for _, f := range m.Assets {
		if _, err := os.Stat(filepath.Join(a.assets, app, f)); err != nil {
			missing = append(missing, f)
		}
	}
	sort.Strings(missing)
	status, code := "ok", http.StatusOK
	if len(missing) > 0 {
		status, code = "assets missing", http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"status": status, "release": tag, "missing": missing})
}

// smokeSpec is app's smoke checks (ConfigMap APP-smoke-test, key
// smoke.yaml): its page, with a link to its script, and its readiness,
// which fails while the release's assets are not published.
func smokeSpec(app string) string {
	return fmt.Sprintf(`# %[1]s's smoke checks, run by post-sync after every sync
checks:
  - name: home page
    path: /
    expect:
      status: 200
      body_contains: ["<h1>%[1]s</h1>"]
      body_regex: '<script src="/assets/%[1]s/application-[0-9a-f]{16}\.js">'
  - name: ready, its assets published
    path: /healthcheck/ready
    expect:
      status: 200
      json:
        status: ok
`, app)
}

// serving asks the app, over HTTP, which release it serves.
func (a *webApp) serving(app string) (string, error) {
	resp, err := http.Get(a.url + "/" + app + "/healthcheck/ready")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var ready struct{ Release string }
	if err := json.NewDecoder(resp.Body).Decode(&ready); err != nil {
		return "", fmt.Errorf("%s in %s: readiness: %w", app, a.env, err)
	}
	return ready.Release, nil
}
