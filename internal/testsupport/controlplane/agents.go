package controlplane

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/argoproj/argo-workflows/v3/workflow/common"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/slipway-deploy/slipway/internal/testsupport/serverproc"
)

// varRun is where a pod's volumes are mounted (Argo mounts the agent's under
// /var/run): the agent's private mount namespace gets a folder of its own
// bind-mounted over it.
const varRun = "/var/run"

// agentGrace is how long an agent gets after SIGTERM. Argo's agent ignores
// SIGTERM (argoexec turns it into a context that `agent main` does not
// use), so it is killed after this, as the kubelet would after the pod's
// grace period; it normally exits on its own once its workflow is done.
const agentGrace = 2 * time.Second

// AgentRun is one agent pod that the harness ran as a local process.
type AgentRun struct {
	Pod string
	UID types.UID
	// Spec is the pod as the controller created it (it deletes the pod
	// once the workflow is done).
	Spec *corev1.Pod
	// Env is the environment the controller gave the pod's main container.
	Env map[string]string
	// Process is the agent; nil if it could not be started (Err says why).
	Process *serverproc.Process
	Err     error
}

// agents runs an agent process for every agent pod the controller creates,
// and stops it when the pod is deleted (the controller deletes it once the
// workflow is done) or the test ends.
type agents struct {
	a      *Argo
	dir    string
	mu     sync.Mutex
	runs   map[types.UID]*AgentRun
	order  []types.UID
	tokens map[string]string // plugin name -> token file
	// failed holds, by workflow name, why its agent could not start or
	// exited on its own with an error; waiting lists who to tell.
	failed  map[string]error
	waiting map[string][]context.CancelCauseFunc
	stop    chan struct{}
	closed  bool
}

func startAgents(t testing.TB, a *Argo) *agents {
	t.Helper()
	g := &agents{a: a, dir: filepath.Join(a.dir, "agents"), runs: map[types.UID]*AgentRun{},
		tokens: map[string]string{}, failed: map[string]error{}, waiting: map[string][]context.CancelCauseFunc{},
		stop: make(chan struct{})}
	if err := os.MkdirAll(g.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	factory := informers.NewSharedInformerFactoryWithOptions(a.Kube, 0, informers.WithNamespace(a.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.LabelSelector = common.LabelKeyComponent + "=agent"
		}))
	pods := factory.Core().V1().Pods().Informer()
	if _, err := pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if pod, ok := obj.(*corev1.Pod); ok {
				g.run(pod)
			}
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if pod, ok := obj.(*corev1.Pod); ok {
				g.stopRun(pod.UID)
			}
		},
	}); err != nil {
		t.Fatalf("watch agent pods: %v", err)
	}
	factory.Start(g.stop)
	t.Cleanup(func() {
		g.mu.Lock()
		g.closed = true
		g.mu.Unlock()
		close(g.stop)
		factory.Shutdown()
		for _, r := range g.Runs() {
			if r.Process == nil {
				continue
			}
			_, _ = r.Process.Stop() // killed after agentGrace: expected, see there
			if t.Failed() {
				t.Logf("last lines of the agent of pod %s:\n%s", r.Pod, r.Process.Tail(40))
			}
		}
	})
	if !cache.WaitForCacheSync(g.stop, pods.HasSynced) {
		t.Fatal("agent pod watch never synced")
	}
	return g
}

// Runs lists the agent pods run so far, in the order they appeared.
func (g *agents) Runs() []AgentRun {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]AgentRun, 0, len(g.order))
	for _, uid := range g.order {
		out = append(out, *g.runs[uid])
	}
	return out
}

// AgentRuns lists the agent pods the harness ran, in the order they appeared.
func (a *Argo) AgentRuns() []AgentRun { return a.agents.Runs() }

// PluginTokenFile is the token the agent sends to executor plugin name: the
// file it reads as /var/run/argo/<name>/token (the harness writes it, as
// the agent pod's `agent init` would). A plugin served for the test reads
// its token from this path.
func (a *Argo) PluginTokenFile(t testing.TB, name string) string {
	t.Helper()
	path, err := a.agents.token(name)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// token returns plugin name's token file, creating it on first use as
// `argoexec agent init` does: 32 random characters, no newline, mode 0440.
func (g *agents) token(name string) (string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if p, ok := g.tokens[name]; ok {
		return p, nil
	}
	if name == "" || strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return "", fmt.Errorf("plugin name %q: not a file name", name)
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	dir := filepath.Join(g.dir, "plugin-tokens", name)
	if err := os.MkdirAll(dir, 0o770); err != nil {
		return "", err
	}
	p := filepath.Join(dir, "token")
	if err := os.WriteFile(p, fmt.Appendf(nil, "%x", b), 0o440); err != nil {
		return "", fmt.Errorf("write the %s plugin's token: %w", name, err)
	}
	g.tokens[name] = p
	return p, nil
}

func (g *agents) run(pod *corev1.Pod) {
	g.mu.Lock()
	if g.closed || g.runs[pod.UID] != nil {
		g.mu.Unlock()
		return
	}
	r := &AgentRun{Pod: pod.Name, UID: pod.UID, Spec: pod.DeepCopy()}
	g.runs[pod.UID] = r
	g.order = append(g.order, pod.UID)
	g.mu.Unlock()

	p, env, err := g.start(pod)
	g.mu.Lock()
	r.Env, r.Process, r.Err = env, p, err
	closed := g.closed
	g.mu.Unlock()
	switch {
	case err != nil:
		g.fail(pod.Labels[common.LabelKeyWorkflow], fmt.Errorf("start the agent of pod %s: %w", pod.Name, err))
	case closed: // the test ended while it started
		_, _ = p.Stop()
	default:
		go g.watchExit(r, pod.Labels[common.LabelKeyWorkflow])
	}
}

// watchExit reports an agent that exits with an error on its own. (A pod's
// kubelet would restart it; a test had better stop and say why.)
func (g *agents) watchExit(r *AgentRun, workflow string) {
	p := r.Process
	<-p.Done()
	if p.Err() == nil || p.Stopping() {
		return
	}
	err := fmt.Errorf("the agent of pod %s: %w", r.Pod, p.Exited())
	g.mu.Lock()
	r.Err = err
	g.mu.Unlock()
	g.fail(workflow, err)
}

// fail records why workflow's agent failed and tells whoever waits for it.
func (g *agents) fail(workflow string, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.failed[workflow] = err
	for _, cancel := range g.waiting[workflow] {
		cancel(err)
	}
}

// notifyFailure cancels ctx with the error of workflow's agent as soon as it
// fails (at once if it already has); the returned func stops that.
func (g *agents) notifyFailure(workflow string, cancel context.CancelCauseFunc) (stop func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.failed[workflow]; err != nil {
		cancel(err)
	}
	i := len(g.waiting[workflow])
	g.waiting[workflow] = append(g.waiting[workflow], cancel)
	return func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.waiting[workflow][i] = func(error) {}
	}
}

func (g *agents) stopRun(uid types.UID) {
	g.mu.Lock()
	r := g.runs[uid]
	g.mu.Unlock()
	if r != nil && r.Process != nil {
		_, _ = r.Process.Stop()
	}
}

// start plays the kubelet's part for the agent pod's main container: its
// volumes are made under a folder that a private mount namespace binds over
// /var/run (emptyDir: a folder; Secret: its keys as files), the plugin
// tokens are written where `agent init` would write them, and its command
// runs with its environment plus what the kubelet adds (the apiserver's
// address), so that the agent finds its ServiceAccount token and namespace
// in-cluster, as in the pod.
func (g *agents) start(pod *corev1.Pod) (*serverproc.Process, map[string]string, error) {
	main, err := mainContainer(pod)
	if err != nil {
		return nil, nil, err
	}
	env := map[string]string{}
	for _, e := range main.Env {
		if e.ValueFrom != nil {
			return nil, nil, fmt.Errorf("pod %s: env %s comes from %v, which the harness does not resolve", pod.Name, e.Name, e.ValueFrom)
		}
		env[e.Name] = e.Value
	}
	base := filepath.Join(g.dir, pod.Name+"-"+string(pod.UID)[:8])
	root := filepath.Join(base, "run")
	if err := g.mountVolumes(pod, main, root); err != nil {
		return nil, env, err
	}
	if err := g.writePluginTokens(env[common.EnvVarPluginNames], root); err != nil {
		return nil, env, fmt.Errorf("pod %s: %w", pod.Name, err)
	}
	if len(main.Command) != 1 || main.Command[0] != "argoexec" {
		return nil, env, fmt.Errorf("pod %s: main container runs %q, not argoexec", pod.Name, main.Command)
	}
	home := filepath.Join(base, "home") // no ~/.kube/config: the agent uses its in-cluster config
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, env, err
	}
	procEnv := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home,
		"KUBERNETES_SERVICE_HOST=" + g.a.Host, "KUBERNETES_SERVICE_PORT=" + strconv.Itoa(g.a.Port)}
	for k, v := range env {
		procEnv = append(procEnv, k+"="+v)
	}
	mountPoint, err := filepath.EvalSymlinks(varRun) // /var/run is often a link to /run
	if err != nil {
		return nil, env, err
	}
	// unshare(1) makes the mount namespace (private propagation: nothing
	// leaks to the host's /run), sh binds the pod's folder over /var/run and
	// execs the agent in place, so the process stopped is the agent itself.
	args := append([]string{"-m", "--propagation", "private", "sh", "-c", `mount --bind "$0" "$1" && shift && exec "$@"`,
		root, mountPoint, filepath.Join(g.a.bin, "argoexec")}, main.Args...)
	p, err := serverproc.Run(serverproc.Spec{Name: "agent-" + pod.Name, Path: "unshare", Args: args, Env: procEnv, LogDir: base,
		Grace: agentGrace})
	return p, env, err
}

func mainContainer(pod *corev1.Pod) (*corev1.Container, error) {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == common.MainContainerName {
			return &pod.Spec.Containers[i], nil
		}
	}
	return nil, fmt.Errorf("pod %s has no %s container", pod.Name, common.MainContainerName)
}

// mountVolumes makes the main container's volume mounts under root, which
// stands for /var/run.
func (g *agents) mountVolumes(pod *corev1.Pod, c *corev1.Container, root string) error {
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		volumes[v.Name] = v
	}
	for _, m := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(filepath.Clean(m.MountPath), varRun+"/")
		if !ok || m.SubPath != "" {
			return fmt.Errorf("pod %s: volume %s mounted at %s (subPath %q): the harness mounts whole volumes under %s only",
				pod.Name, m.Name, m.MountPath, m.SubPath, varRun)
		}
		dst := filepath.Join(root, rel)
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
		v, ok := volumes[m.Name]
		switch {
		case !ok:
			return fmt.Errorf("pod %s: no volume %s", pod.Name, m.Name)
		case v.EmptyDir != nil:
		case v.Secret != nil:
			if err := g.writeSecret(v.Secret, dst); err != nil {
				return fmt.Errorf("pod %s: volume %s: %w", pod.Name, m.Name, err)
			}
		default:
			return fmt.Errorf("pod %s: volume %s is neither an emptyDir nor a Secret", pod.Name, m.Name)
		}
	}
	return nil
}

func (g *agents) writeSecret(v *corev1.SecretVolumeSource, dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := g.a.Kube.CoreV1().Secrets(g.a.Namespace).Get(ctx, v.SecretName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("read Secret %s: %w", v.SecretName, err)
	}
	if len(v.Items) > 0 {
		return errors.New("secret volumes with items are not supported by the harness")
	}
	for k, b := range s.Data {
		if err := os.WriteFile(filepath.Join(dir, k), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// writePluginTokens gives the agent each plugin's token at
// argo/<name>/token under root (/var/run/argo/<name>/token inside), a hard
// link to PluginTokenFile's, so that the agent and the plugin served for the
// test read the same file.
func (g *agents) writePluginTokens(namesJSON, root string) error {
	var names []string
	if err := json.Unmarshal([]byte(namesJSON), &names); err != nil {
		return fmt.Errorf("%s %q: %w", common.EnvVarPluginNames, namesJSON, err)
	}
	for _, name := range names {
		src, err := g.token(name)
		if err != nil {
			return err
		}
		dir := filepath.Join(root, "argo", name)
		if err := os.MkdirAll(dir, 0o770); err != nil {
			return err
		}
		if err := os.Link(src, filepath.Join(dir, "token")); err != nil {
			return fmt.Errorf("the %s plugin's token: %w", name, err)
		}
	}
	return nil
}
