package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/argoproj/argo-workflows/v3/pkg/apis/workflow"
	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned"
	"github.com/argoproj/argo-workflows/v3/workflow/common"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
)

// NodeName is the node the harness binds the pods it plays to (no Node
// object: nothing here checks one exists, as nothing here runs on one).
const NodeName = "controlplane-harness"

// PodRun is how a workflow pod's main container ran, for PlayPod.
type PodRun struct {
	// ExitCode is the main container's.
	ExitCode int32
	// Files are what the main container wrote, by absolute path inside it:
	// the executor reads the template's output parameters (valueFrom.path)
	// from them.
	Files map[string]string
}

// WaitPod waits until the controller has created the pod of node nodeID of
// workflow, and returns it as the apiserver holds it.
func (a *Argo) WaitPod(t testing.TB, workflow, nodeID string, timeout time.Duration) *corev1.Pod {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	sel := labels.SelectorFromSet(labels.Set{common.LabelKeyWorkflow: workflow}).String()
	var found *corev1.Pod
	err := until[*corev1.Pod, *corev1.PodList](ctx, a.Kube.CoreV1().Pods(a.Namespace), &corev1.Pod{},
		func(o *metav1.ListOptions) { o.LabelSelector = sel },
		func(pod *corev1.Pod) bool {
			if pod.Annotations[common.AnnotationKeyNodeID] == nodeID {
				found = pod
			}
			return found != nil
		})
	if err != nil {
		t.Fatalf("the pod of node %s of workflow %s: %v", nodeID, workflow, err)
	}
	return found
}

// PlayPod does to a workflow pod what the cluster would, where nothing runs
// pods: each write is one that its owner makes in a cluster, through the
// same API, and nothing writes the controller's own objects (the Workflow's
// status stays the controller's to write).
//
//  1. the scheduler binds the pod to a node (pods/binding);
//  2. the kubelet reports it Running, its init containers done (pods/status),
//     after checking that the Secrets and ConfigMaps it mounts exist, as the
//     kubelet would before starting it; the controller then marks the node
//     Running, which PlayPod waits for;
//  3. the executor in its wait container, as the pod's ServiceAccount,
//     reports the outputs in a WorkflowTaskResult named after the node:
//     created empty, then patched with the template's outputs, each output
//     parameter read from run.Files at its valueFrom.path (else its
//     default), then labelled complete, as `argoexec wait` does;
//  4. the kubelet reports the main container terminated with run.ExitCode,
//     the wait container with 0, and the pod Succeeded or Failed.
func (a *Argo) PlayPod(t testing.TB, pod *corev1.Pod, run PodRun) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := a.playPod(ctx, t, pod, run); err != nil {
		t.Fatalf("play pod %s: %v", pod.Name, err)
	}
}

func (a *Argo) playPod(ctx context.Context, t testing.TB, pod *corev1.Pod, run PodRun) error {
	wfName, nodeID := pod.Labels[common.LabelKeyWorkflow], pod.Annotations[common.AnnotationKeyNodeID]
	var wfUID types.UID
	for _, o := range pod.OwnerReferences {
		if o.Kind == workflow.WorkflowKind && o.Name == wfName {
			wfUID = o.UID
		}
	}
	if wfName == "" || nodeID == "" || wfUID == "" {
		return errors.New("not a workflow pod: no workflow label, node-id annotation or Workflow owner")
	}
	tmpl, err := podTemplate(pod)
	if err != nil {
		return err
	}
	outputs, err := executorOutputs(tmpl, run.Files)
	if err != nil {
		return err
	}
	if err := a.checkVolumeSources(ctx, pod); err != nil {
		return fmt.Errorf("the kubelet would not start it: %w", err)
	}

	pods := a.Kube.CoreV1().Pods(a.Namespace)
	if err := pods.Bind(ctx, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: NodeName},
	}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("bind (the scheduler's part): %w", err)
	}
	started := metav1.Now()
	if err := a.updatePodStatus(ctx, pod.Name, func(p *corev1.Pod) { kubeletRunning(p, started) }); err != nil {
		return fmt.Errorf("report Running (the kubelet's part): %w", err)
	}
	// The controller sees the pod run before it ends, as it would (the wait
	// container reports only once the main container is done).
	a.WaitWorkflow(t, wfName, time.Minute, func(wf *wfv1.Workflow) bool {
		n, ok := wf.Status.Nodes[nodeID]
		return ok && (n.Phase == wfv1.NodeRunning || n.Phase.Completed())
	})

	executor, err := a.podServiceAccountClient(ctx, pod)
	if err != nil {
		return err
	}
	if err := reportTaskResult(ctx, executor.ArgoprojV1alpha1().WorkflowTaskResults(a.Namespace), wfName, wfUID, nodeID, outputs); err != nil {
		return fmt.Errorf("report outputs (the executor's part, as ServiceAccount %s): %w", pod.Spec.ServiceAccountName, err)
	}
	finished := metav1.Now()
	if err := a.updatePodStatus(ctx, pod.Name, func(p *corev1.Pod) { kubeletTerminated(p, run.ExitCode, finished) }); err != nil {
		return fmt.Errorf("report the end (the kubelet's part): %w", err)
	}
	return nil
}

// podTemplate is the template the controller handed the pod's executor (its
// init container's ARGO_TEMPLATE, which `argoexec init` passes on).
func podTemplate(pod *corev1.Pod) (*wfv1.Template, error) {
	for _, c := range pod.Spec.InitContainers {
		if c.Name != common.InitContainerName {
			continue
		}
		for _, e := range c.Env {
			if e.Name == common.EnvVarTemplate {
				var tmpl wfv1.Template
				if err := json.Unmarshal([]byte(e.Value), &tmpl); err != nil {
					return nil, fmt.Errorf("%s: %w", common.EnvVarTemplate, err)
				}
				return &tmpl, nil
			}
		}
	}
	return nil, fmt.Errorf("no %s in its %s container (a template too large is put in a ConfigMap, which the harness does not read)",
		common.EnvVarTemplate, common.InitContainerName)
}

// executorOutputs are the outputs `argoexec wait` reports: the template's,
// each path parameter set from the file the main container wrote there (one
// trailing newline trimmed), else from its default; a missing file without a
// default fails the executor, and so PlayPod.
func executorOutputs(tmpl *wfv1.Template, files map[string]string) (*wfv1.Outputs, error) {
	out := tmpl.Outputs.DeepCopy()
	if len(out.Artifacts) > 0 || out.Result != nil {
		return nil, errors.New("output artifacts and results are not played by the harness")
	}
	for i, p := range out.Parameters {
		if p.ValueFrom == nil || p.ValueFrom.Path == "" {
			continue
		}
		v, ok := files[p.ValueFrom.Path]
		switch {
		case ok:
			out.Parameters[i].Value = wfv1.AnyStringPtr(strings.TrimSuffix(v, "\n"))
		case p.ValueFrom.Default != nil:
			out.Parameters[i].Value = wfv1.AnyStringPtr(strings.TrimSuffix(p.ValueFrom.Default.String(), "\n"))
		default:
			return nil, fmt.Errorf("output parameter %s: the main container wrote no %s, and it has no default", p.Name, p.ValueFrom.Path)
		}
	}
	return out, nil
}

// checkVolumeSources refuses a pod whose Secret or ConfigMap volumes (not
// optional) do not exist or lack an item's key: the kubelet would leave it
// ContainerCreating.
func (a *Argo) checkVolumeSources(ctx context.Context, pod *corev1.Pod) error {
	for _, v := range pod.Spec.Volumes {
		var keys map[string]bool
		var items []corev1.KeyToPath
		var what string
		switch {
		case v.Secret != nil:
			what, items = "Secret "+v.Secret.SecretName, v.Secret.Items
			s, err := a.Kube.CoreV1().Secrets(a.Namespace).Get(ctx, v.Secret.SecretName, metav1.GetOptions{})
			if apierrors.IsNotFound(err) && v.Secret.Optional != nil && *v.Secret.Optional {
				continue
			}
			if err != nil {
				return fmt.Errorf("volume %s: %s: %w", v.Name, what, err)
			}
			keys = map[string]bool{}
			for k := range s.Data {
				keys[k] = true
			}
		case v.ConfigMap != nil:
			what, items = "ConfigMap "+v.ConfigMap.Name, v.ConfigMap.Items
			cm, err := a.Kube.CoreV1().ConfigMaps(a.Namespace).Get(ctx, v.ConfigMap.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) && v.ConfigMap.Optional != nil && *v.ConfigMap.Optional {
				continue
			}
			if err != nil {
				return fmt.Errorf("volume %s: %s: %w", v.Name, what, err)
			}
			keys = map[string]bool{}
			for k := range cm.Data {
				keys[k] = true
			}
			for k := range cm.BinaryData {
				keys[k] = true
			}
		default:
			continue
		}
		for _, it := range items {
			if !keys[it.Key] {
				return fmt.Errorf("volume %s: %s has no key %s", v.Name, what, it.Key)
			}
		}
	}
	return nil
}

func (a *Argo) updatePodStatus(ctx context.Context, name string, mutate func(*corev1.Pod)) error {
	pods := a.Kube.CoreV1().Pods(a.Namespace)
	// The controller labels and annotates the pod meanwhile: retry on conflict.
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p, err := pods.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		mutate(p)
		_, err = pods.UpdateStatus(ctx, p, metav1.UpdateOptions{})
		return err
	})
}

// kubeletRunning is the status the kubelet reports once the init
// containers are done and the containers started.
func kubeletRunning(p *corev1.Pod, at metav1.Time) {
	p.Status.Phase = corev1.PodRunning
	p.Status.StartTime = &at
	p.Status.Conditions = upsertCondition(p.Status.Conditions,
		corev1.PodCondition{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: at},
		corev1.PodCondition{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: at},
		corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: at})
	p.Status.InitContainerStatuses = nil
	for _, c := range p.Spec.InitContainers {
		p.Status.InitContainerStatuses = append(p.Status.InitContainerStatuses, containerStatus(c, corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", StartedAt: at, FinishedAt: at},
		}))
	}
	p.Status.ContainerStatuses = nil
	for _, c := range p.Spec.Containers {
		s := containerStatus(c, corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: at}})
		s.Ready, s.Started = true, ptrTo(true)
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, s)
	}
}

// kubeletTerminated is the status the kubelet reports once every container
// ended: the main one with exit, the others (the wait container) with 0.
func kubeletTerminated(p *corev1.Pod, exit int32, at metav1.Time) {
	p.Status.Phase = corev1.PodSucceeded
	if exit != 0 {
		p.Status.Phase = corev1.PodFailed
	}
	p.Status.Conditions = upsertCondition(p.Status.Conditions,
		corev1.PodCondition{Type: corev1.ContainersReady, Status: corev1.ConditionFalse, Reason: "PodCompleted", LastTransitionTime: at},
		corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "PodCompleted", LastTransitionTime: at})
	for i, s := range p.Status.ContainerStatuses {
		code, reason := int32(0), "Completed"
		if s.Name == common.MainContainerName && exit != 0 {
			code, reason = exit, "Error"
		}
		startedAt := at
		if s.State.Running != nil {
			startedAt = s.State.Running.StartedAt
		}
		s.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: code, Reason: reason, StartedAt: startedAt, FinishedAt: at,
		}}
		s.Ready, s.Started = false, ptrTo(false)
		p.Status.ContainerStatuses[i] = s
	}
}

func containerStatus(c corev1.Container, state corev1.ContainerState) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.Image, State: state,
		ContainerID: "harness://" + c.Name}
}

func upsertCondition(conds []corev1.PodCondition, add ...corev1.PodCondition) []corev1.PodCondition {
	for _, c := range add {
		replaced := false
		for i := range conds {
			if conds[i].Type == c.Type {
				conds[i], replaced = c, true
			}
		}
		if !replaced {
			conds = append(conds, c)
		}
	}
	return conds
}

func ptrTo[T any](v T) *T { return &v }

// podServiceAccountClient is an Argo client with the token the kubelet
// would mount into pod: its ServiceAccount's, bound to the pod.
func (a *Argo) podServiceAccountClient(ctx context.Context, pod *corev1.Pod) (versioned.Interface, error) {
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	expiry := int64(time.Hour / time.Second)
	tr, err := a.Kube.CoreV1().ServiceAccounts(a.Namespace).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			ExpirationSeconds: &expiry,
			BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("token of ServiceAccount %s for pod %s: %w", sa, pod.Name, err)
	}
	cfg := &rest.Config{Host: a.Config.Host, BearerToken: tr.Status.Token,
		TLSClientConfig: rest.TLSClientConfig{CAData: a.CAData}}
	return versioned.NewForConfig(cfg)
}

type taskResults interface {
	Create(ctx context.Context, r *wfv1.WorkflowTaskResult, opts metav1.CreateOptions) (*wfv1.WorkflowTaskResult, error)
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (*wfv1.WorkflowTaskResult, error)
}

// reportTaskResult makes the calls `argoexec wait` makes
// (workflow/executor/taskresult.go): InitializeOutput creates the result,
// empty and labelled incomplete, owned by the workflow; ReportOutputs
// merge-patches the outputs in; FinalizeOutput labels it complete.
func reportTaskResult(ctx context.Context, c taskResults, wfName string, wfUID types.UID, nodeID string, outputs *wfv1.Outputs) error {
	_, err := c.Create(ctx, &wfv1.WorkflowTaskResult{
		TypeMeta: metav1.TypeMeta{APIVersion: workflow.APIVersion, Kind: workflow.WorkflowTaskResultKind},
		ObjectMeta: metav1.ObjectMeta{
			Name:   nodeID,
			Labels: map[string]string{common.LabelKeyWorkflow: wfName, common.LabelKeyReportOutputsCompleted: "false"},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: workflow.APIVersion, Kind: workflow.WorkflowKind, Name: wfName, UID: wfUID,
			}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create WorkflowTaskResult %s: %w", nodeID, err)
	}
	for _, patch := range []wfv1.WorkflowTaskResult{
		{NodeResult: wfv1.NodeResult{Outputs: outputs}},
		{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{common.LabelKeyReportOutputsCompleted: "true"}}},
	} {
		data, err := json.Marshal(&patch)
		if err != nil {
			return err
		}
		if _, err := c.Patch(ctx, nodeID, types.MergePatchType, data, metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("patch WorkflowTaskResult %s: %w", nodeID, err)
		}
	}
	return nil
}

// TaskSetExists reports whether the controller made a WorkflowTaskSet for
// workflow (it makes one, named after the workflow, once a plugin step
// runs: the agent's work list).
func (a *Argo) TaskSetExists(t testing.TB, workflow string) bool {
	t.Helper()
	_, err := a.Argo.ArgoprojV1alpha1().WorkflowTaskSets(a.Namespace).Get(context.Background(), workflow, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false
	}
	if err != nil {
		t.Fatalf("get WorkflowTaskSet %s: %v", workflow, err)
	}
	return true
}
