// Package controlplane runs a real Kubernetes control plane and Argo
// Workflows for end-to-end tests, on loopback, with no container runtime:
// etcd and kube-apiserver (token auth, RBAC, a certificate made here),
// Argo's CRDs, its workflow-controller, and its agent (`argoexec agent
// main`) run as a local process for every agent pod the controller creates,
// the way that pod would run it. The binaries come from hack/controlplane.sh
// (built once into the user's cache; run here if missing).
//
// Nothing else runs pods: any other pod the controller creates stays
// Pending, and a test can read it back from the apiserver, then play its
// node with PlayPod: the writes the scheduler, the kubelet and Argo's
// executor in the pod would make, through the same API.
package controlplane

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	argoconfig "github.com/argoproj/argo-workflows/v3/config"
	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"sigs.k8s.io/yaml"

	"github.com/slipway-deploy/slipway/internal/testsupport/serverproc"
)

// ArgoVersion is the Argo Workflows the project pins (go.mod, hack/controlplane.sh).
const ArgoVersion = "v3.7.9"

// Options shape Start.
type Options struct {
	// Namespace holds the controller, its ConfigMap, the executor plugins
	// and the workflows ("argo" if empty).
	Namespace string
	// ServiceAccounts are created besides "default", each with its token
	// Secret (as Kubernetes' token controller would fill it in).
	ServiceAccounts []string
	// Manifests are YAML files applied in order after the CRDs: ConfigMaps,
	// Secrets, ServiceAccounts, Roles, RoleBindings, WorkflowTemplates,
	// CronWorkflows.
	Manifests []string
	// RequeueTime is the controller's DEFAULT_REQUEUE_TIME, which is also
	// the agent's patch rate (1s if zero; Argo's default is 10s).
	RequeueTime time.Duration
}

// Argo is a cluster running Argo's controller and agents.
type Argo struct {
	*Cluster
	// Argo is a client of Argo's API with the admin token.
	Argo      versioned.Interface
	Namespace string
	agents    *agents
}

// Start runs the control plane, installs Argo and our manifests, and starts
// the controller and the agent runner; everything is stopped when t ends.
// It skips t where agents cannot run here (they need a private mount
// namespace: root and unshare).
func Start(t testing.TB, o Options) *Argo {
	t.Helper()
	canRunAgents(t)
	if o.Namespace == "" {
		o.Namespace = "argo"
	}
	if o.RequeueTime == 0 {
		o.RequeueTime = time.Second
	}
	a := &Argo{Cluster: StartCluster(t), Namespace: o.Namespace}
	var err error
	if a.Argo, err = versioned.NewForConfig(a.Config); err != nil {
		t.Fatalf("argo client: %v", err)
	}
	a.CreateNamespace(t, a.Namespace)
	a.installCRDs(t)
	a.createControllerConfig(t)
	for _, sa := range append([]string{"default"}, o.ServiceAccounts...) {
		a.CreateServiceAccount(t, sa)
	}
	a.Apply(t, o.Manifests...)
	a.agents = startAgents(t, a)
	a.startController(t, o.RequeueTime)
	return a
}

// canRunAgents skips t unless a private mount namespace can be made; in
// CI (CI=true, as root) it fails instead, so CI never passes without them.
func canRunAgents(t testing.TB) {
	t.Helper()
	const why = "Argo's agent reads its plugin tokens from /var/run/argo, so the harness runs it in a private mount namespace"
	skip := t.Skipf
	if os.Getenv("CI") == "true" && os.Geteuid() == 0 {
		skip = t.Fatalf
	}
	if runtime.GOOS != "linux" {
		skip("skipped: %s, which needs Linux (this is %s)", why, runtime.GOOS)
	}
	if os.Geteuid() != 0 {
		skip("skipped: %s, which needs root", why)
	}
	for _, tool := range []string{"unshare", "mount", "sh"} {
		if _, err := exec.LookPath(tool); err != nil {
			skip("skipped: %s, made with unshare, mount and sh: %v", why, err)
		}
	}
	if out, err := exec.Command("unshare", "-m", "--propagation", "private", "true").CombinedOutput(); err != nil {
		skip("skipped: %s, and unshare -m fails here: %v: %s", why, err, strings.TrimSpace(string(out)))
	}
}

// argoModuleDir is where the Go module cache holds Argo's module.
func argoModuleDir(t testing.TB) string {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/argoproj/argo-workflows/v3")
	cmd.Dir = root
	out, err := cmd.Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		t.Fatalf("locate Argo's module (go list -m): %v", err)
	}
	return dir
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// installCRDs creates Argo's CRDs from its module (the minimal ones, as
// Argo's own install does) and waits until each is established.
func (a *Argo) installCRDs(t testing.TB) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(argoModuleDir(t), "manifests", "base", "crds", "minimal", "argoproj.io_*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("Argo's CRDs not found in its module: %v", err)
	}
	dyn, err := dynamic.NewForConfig(a.Config)
	if err != nil {
		t.Fatalf("dynamic client: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	var names []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var crd unstructured.Unstructured
		if err := yaml.Unmarshal(b, &crd.Object); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if _, err := dyn.Resource(crdGVR).Create(ctx, &crd, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create CRD %s: %v", crd.GetName(), err)
		}
		names = append(names, crd.GetName())
	}
	for _, name := range names {
		if err := waitEstablished(ctx, dyn, name); err != nil {
			t.Fatal(err)
		}
	}
}

func waitEstablished(ctx context.Context, dyn dynamic.Interface, name string) error {
	lw := &cache.ListWatch{
		ListFunc: func(o metav1.ListOptions) (k8sruntime.Object, error) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
			return dyn.Resource(crdGVR).List(ctx, o)
		},
		WatchFunc: func(o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
			return dyn.Resource(crdGVR).Watch(ctx, o)
		},
	}
	_, err := watchtools.UntilWithSync(ctx, lw, &unstructured.Unstructured{}, nil, func(ev watch.Event) (bool, error) {
		u, ok := ev.Object.(*unstructured.Unstructured)
		if !ok {
			return false, nil
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m["type"] == "Established" && m["status"] == "True" {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("CRD %s not established: %w", name, err)
	}
	return nil
}

// createControllerConfig writes the controller's ConfigMap, which it needs
// to start: metrics off, since the controller panics when their port (9090)
// is taken. Each key holds a YAML document, as Argo reads it.
func (a *Argo) createControllerConfig(t testing.TB) {
	t.Helper()
	off := false
	metrics, err := yaml.Marshal(argoconfig.MetricsConfig{Enabled: &off})
	if err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "workflow-controller-configmap", Namespace: a.Namespace},
		Data:       map[string]string{"metricsConfig": string(metrics), "telemetryConfig": string(metrics)},
	}
	if _, err := a.Kube.CoreV1().ConfigMaps(a.Namespace).Create(context.Background(), cm, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create the controller's ConfigMap: %v", err)
	}
}

// CreateServiceAccount creates a ServiceAccount and the token Secret that
// Argo mounts into its agent pod (<name>.service-account-token), filled in
// with a token the apiserver issued, as Kubernetes' token controller (not
// running here) would fill it in.
func (a *Argo) CreateServiceAccount(t testing.TB, name string) {
	t.Helper()
	ctx := context.Background()
	sas := a.Kube.CoreV1().ServiceAccounts(a.Namespace)
	sa, err := sas.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create ServiceAccount %s: %v", name, err)
	}
	expiry := int64(24 * time.Hour / time.Second)
	tr, err := sas.CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for ServiceAccount %s: %v", name, err)
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: name + ".service-account-token",
			Annotations: map[string]string{
				corev1.ServiceAccountNameKey: name,
				corev1.ServiceAccountUIDKey:  string(sa.UID),
			},
		},
		Type: corev1.SecretTypeServiceAccountToken,
		Data: map[string][]byte{
			corev1.ServiceAccountTokenKey:     []byte(tr.Status.Token),
			corev1.ServiceAccountRootCAKey:    a.CAData,
			corev1.ServiceAccountNamespaceKey: []byte(a.Namespace),
		},
	}
	if _, err := a.Kube.CoreV1().Secrets(a.Namespace).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create the token Secret of ServiceAccount %s: %v", name, err)
	}
}

// startController runs Argo's workflow-controller with leader election off
// and executor plugins on.
func (a *Argo) startController(t testing.TB, requeue time.Duration) {
	t.Helper()
	env := append(os.Environ(),
		"LEADER_ELECTION_DISABLE=true",
		"DEFAULT_REQUEUE_TIME="+requeue.String(),
		"ARGO_EXECUTOR_PLUGINS=true",
	)
	serverproc.Start(t, serverproc.Spec{
		Name: "workflow-controller", Path: filepath.Join(a.bin, "workflow-controller"), Env: env, LogDir: a.dir,
		Args: []string{
			"--kubeconfig=" + a.Kubeconfig, "--namespace=" + a.Namespace,
			"--executor-plugins", "--executor-image=quay.io/argoproj/argoexec:" + ArgoVersion,
			"--loglevel=info",
		},
	})
}

// WaitWorkflow watches the workflow until done says so, and returns it as
// last seen; it fails t when timeout passes first, or at once when the
// workflow's agent fails.
func (a *Argo) WaitWorkflow(t testing.TB, name string, timeout time.Duration, done func(*wfv1.Workflow) bool) *wfv1.Workflow {
	t.Helper()
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	defer a.agents.notifyFailure(name, cancel)()
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	defer cancelTimeout()
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	var last *wfv1.Workflow
	err := until[*wfv1.Workflow, *wfv1.WorkflowList](ctx, a.Argo.ArgoprojV1alpha1().Workflows(a.Namespace), &wfv1.Workflow{},
		func(o *metav1.ListOptions) { o.FieldSelector = sel },
		func(wf *wfv1.Workflow) bool { last = wf; return done(wf) })
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			err = cause
		}
		if last != nil {
			t.Fatalf("workflow %s: %v; last seen: phase %q, message %q, nodes:\n%s", name, err, last.Status.Phase, last.Status.Message, describeNodes(last))
		}
		t.Fatalf("workflow %s: %v; never seen", name, err)
	}
	return last
}

func describeNodes(wf *wfv1.Workflow) string {
	var b strings.Builder
	for _, n := range wf.Status.Nodes {
		fmt.Fprintf(&b, "  %s (%s) %s: %s\n", n.DisplayName, n.Type, n.Phase, n.Message)
	}
	return b.String()
}
