package localargo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/plugins/executor"
	"github.com/argoproj/argo-workflows/v3/util/expr/env"
	"github.com/argoproj/argo-workflows/v3/util/template"
	"github.com/argoproj/argo-workflows/v3/workflow/common"
	"github.com/expr-lang/expr"
)

// Cluster is one environment's Argo Workflows, on this machine.
type Cluster struct {
	Name      string
	Pipeline  *Pipeline
	Namespace string
	// Dir holds a folder per pod: its volumes and its containers' logs.
	Dir string
	// Images says where the files of an image reference are.
	Images func(ref string) (Image, error)
	// Secrets and ConfigMaps of the namespace: name -> key -> value.
	Secrets, ConfigMaps map[string]map[string]string
	// Plugins are the executor plugins by name (template.plugin's key).
	Plugins map[string]Plugin
	// ExtraArgs, by template name, are added to its container's arguments
	// (before "--" when there is one): what this machine needs that a
	// cluster would not, said where it is set.
	ExtraArgs map[string][]string
	// Env is added to every container's environment (PATH: where sh is).
	Env []string
	// OnNode is told of every step as it ends (skipped ones too);
	// OnReply of every reply of a plugin that asks to be asked again.
	OnNode  func(Node)
	OnReply func(Node, executor.ExecuteTemplateReply)

	pods atomic.Int64
}

// Plugin is where an executor plugin listens and the agent's token for it.
type Plugin struct {
	URL   string
	Token string
}

// Node is one step of a workflow as it ended.
type Node struct {
	Workflow string // the workflow's name
	Name     string // the step's name (the template's for the entrypoint)
	Template string
	Phase    wfv1.NodePhase
	ExitCode int
	Message  string
	Outputs  map[string]string
	// Pod is the pod's folder, Log its main container's log and Args the
	// command line it ran (containers).
	Pod, Log          string
	Args              []string
	Started, Finished time.Time
}

// Run is a submitted workflow as it ended.
type Run struct {
	Name, UID string
	// Params are the workflow's parameters, defaults included.
	Params map[string]string
	Status wfv1.WorkflowPhase
	// Nodes are the containers, plugin calls and skipped steps, in order.
	Nodes []Node
}

// Node returns the run's node of that step name.
func (r *Run) Node(name string) (Node, bool) {
	for _, n := range r.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return Node{}, false
}

// walk is one workflow being run: its global parameters (shared with every
// step: global outputs land there) and its failed nodes.
type walk struct {
	c        *Cluster
	wf       *Run
	mu       sync.Mutex
	globals  common.Parameters
	failures []failure
}

// failure is one entry of {{workflow.failures}}, as the controller lists a
// failed node.
type failure struct {
	DisplayName  string `json:"displayName"`
	Message      string `json:"message"`
	TemplateName string `json:"templateName"`
	Phase        string `json:"phase"`
	PodName      string `json:"podName"`
	FinishedAt   string `json:"finishedAt"`
}

// Submit runs a Workflow that names a WorkflowTemplate, as the controller
// would: the template's parameters with the Workflow's over them, the
// entrypoint, then the exit handler with the workflow's status. The error
// is this machine's (a context ended, a file it could not write); a step
// that failed is a Failed run.
func (c *Cluster) Submit(ctx context.Context, wf *wfv1.Workflow) (*Run, error) {
	if wf.Spec.WorkflowTemplateRef == nil {
		return nil, fmt.Errorf("workflow %s names no WorkflowTemplate", wf.GenerateName)
	}
	wt, ok := c.Pipeline.Templates[wf.Spec.WorkflowTemplateRef.Name]
	if !ok {
		return nil, fmt.Errorf("no WorkflowTemplate %s", wf.Spec.WorkflowTemplateRef.Name)
	}
	run := &Run{Name: wf.GenerateName + randomHex(3), UID: randomHex(16), Params: map[string]string{}}
	w := &walk{c: c, wf: run, globals: common.Parameters{
		"workflow.name": run.Name, "workflow.namespace": c.Namespace, "workflow.uid": run.UID}}
	args, err := w.arguments(wt, wf)
	if err != nil {
		return nil, err
	}
	entry, err := lookup(wt, wt.Spec.Entrypoint)
	if err != nil {
		return run, err
	}
	node, err := w.run(ctx, wt, entry, args, wt.Spec.Entrypoint)
	if err != nil {
		return run, err
	}
	run.Status = wfv1.WorkflowSucceeded
	if node.Phase != wfv1.NodeSucceeded {
		run.Status = wfv1.WorkflowFailed
	}
	if wt.Spec.OnExit == "" {
		return run, nil
	}
	exit, err := lookup(wt, wt.Spec.OnExit)
	if err != nil {
		return run, err
	}
	f, err := json.Marshal(append([]failure{}, w.failures...))
	if err != nil {
		return run, err
	}
	// The controller hands the failures over JSON-quoted.
	w.globals["workflow.status"], w.globals["workflow.failures"] = string(run.Status), strconv.Quote(string(f))
	node, err = w.run(ctx, wt, exit, &wfv1.Arguments{}, wt.Spec.OnExit)
	if err != nil {
		return run, err
	}
	if node.Phase != wfv1.NodeSucceeded {
		run.Status = wfv1.WorkflowFailed
	}
	return run, nil
}

// arguments are the template's parameters with the Workflow's over them;
// they become the global workflow.parameters.*.
func (w *walk) arguments(wt *wfv1.WorkflowTemplate, wf *wfv1.Workflow) (*wfv1.Arguments, error) {
	args := wt.Spec.Arguments.DeepCopy()
	for _, p := range wf.Spec.Arguments.Parameters {
		i := slices.IndexFunc(args.Parameters, func(a wfv1.Parameter) bool { return a.Name == p.Name })
		if i < 0 {
			return nil, fmt.Errorf("%s takes no parameter %s", wt.Name, p.Name)
		}
		args.Parameters[i].Value = p.Value
	}
	for _, p := range args.Parameters {
		if p.Value == nil {
			return nil, fmt.Errorf("%s: parameter %s is required", wt.Name, p.Name)
		}
		w.globals["workflow.parameters."+p.Name] = p.Value.String()
		w.wf.Params[p.Name] = p.Value.String()
	}
	b, err := json.Marshal(args.Parameters)
	if err != nil {
		return nil, err
	}
	w.globals["workflow.parameters"], w.globals["workflow.parameters.json"] = string(b), string(b)
	return args, nil
}

// run processes a template's arguments as the controller does
// (common.ProcessArgs: inputs, then every parameter and expression it can
// resolve now) and runs it.
func (w *walk) run(ctx context.Context, wt *wfv1.WorkflowTemplate, tmpl *wfv1.Template, args *wfv1.Arguments, name string) (Node, error) {
	w.mu.Lock()
	globals := maps.Clone(w.globals)
	w.mu.Unlock()
	t, err := common.ProcessArgs(tmpl, args, globals, common.Parameters{}, false, w.c.Namespace, nil)
	if err != nil {
		return Node{}, fmt.Errorf("%s/%s: %w", wt.Name, tmpl.Name, err)
	}
	var n Node
	switch {
	case t.Container != nil:
		n, err = w.pod(ctx, wt, t, name)
	case t.Plugin != nil:
		n, err = w.plugin(ctx, t, name)
	case t.Steps != nil:
		return w.steps(ctx, wt, t, name)
	case t.Suspend != nil:
		return Node{}, fmt.Errorf("%s/%s: a suspend step waits for `argo resume`, and nobody resumes here", wt.Name, tmpl.Name)
	default:
		return Node{}, fmt.Errorf("%s/%s: a kind of template this machine does not run", wt.Name, tmpl.Name)
	}
	if err != nil {
		return n, err
	}
	w.ended(n)
	return n, nil
}

// ended records a leaf node: in the run, in the failures, to the observer.
func (w *walk) ended(n Node) {
	w.mu.Lock()
	w.wf.Nodes = append(w.wf.Nodes, n)
	if n.Phase == wfv1.NodeFailed || n.Phase == wfv1.NodeError {
		w.fail(n)
	}
	w.mu.Unlock()
	if w.c.OnNode != nil {
		w.c.OnNode(n)
	}
}

// fail lists a failed node in {{workflow.failures}} (w.mu held).
func (w *walk) fail(n Node) {
	w.failures = append(w.failures, failure{DisplayName: n.Name, Message: n.Message, TemplateName: n.Template,
		Phase: string(n.Phase), FinishedAt: n.Finished.UTC().Format(time.RFC3339)})
}

// setGlobal makes an output a global output (globalName), as the
// controller does once the step ended.
func (w *walk) setGlobal(p wfv1.Parameter, value string) {
	if p.GlobalName == "" {
		return
	}
	w.mu.Lock()
	w.globals["workflow.outputs.parameters."+p.GlobalName] = value
	w.mu.Unlock()
}

// steps runs a steps template one step after another: each step's
// references resolved when its group starts, its `when` decided, the
// template it names run; then the template's outputs (expressions over the
// steps' results).
func (w *walk) steps(ctx context.Context, wt *wfv1.WorkflowTemplate, t *wfv1.Template, name string) (Node, error) {
	node := Node{Workflow: w.wf.Name, Name: name, Template: t.Name, Phase: wfv1.NodeSucceeded, Started: time.Now(), Outputs: map[string]string{}}
	scope := common.Parameters{}
	for _, in := range t.Inputs.Parameters {
		if in.Value != nil {
			scope["inputs.parameters."+in.Name] = in.Value.String()
		}
	}
	for _, group := range t.Steps {
		for _, s := range group.Steps {
			child, err := w.step(ctx, wt, s, scope)
			if err != nil {
				return node, err
			}
			if child.Phase != wfv1.NodeSucceeded && child.Phase != wfv1.NodeSkipped {
				node.Phase, node.Message, node.Finished = wfv1.NodeFailed, fmt.Sprintf("child '%s' failed", child.Name), time.Now()
				w.mu.Lock()
				w.fail(node)
				w.mu.Unlock()
				return node, nil
			}
		}
	}
	vars := map[string]any{}
	for k, v := range scope {
		vars[k] = v
	}
	for _, p := range t.Outputs.Parameters {
		if p.ValueFrom == nil || p.ValueFrom.Expression == "" {
			return node, fmt.Errorf("%s/%s: output %s: a steps template's outputs must be expressions here", wt.Name, t.Name, p.Name)
		}
		e := env.GetFuncMap(vars)
		program, err := expr.Compile(p.ValueFrom.Expression, expr.Env(e))
		if err != nil {
			return node, fmt.Errorf("%s/%s: output %s: %w", wt.Name, t.Name, p.Name, err)
		}
		v, err := expr.Run(program, e)
		if err != nil {
			return node, fmt.Errorf("%s/%s: output %s: %w", wt.Name, t.Name, p.Name, err)
		}
		node.Outputs[p.Name] = fmt.Sprint(v)
		w.setGlobal(p, node.Outputs[p.Name])
	}
	node.Finished = time.Now()
	return node, nil
}

// step runs one step of a steps template and records its result in scope
// (steps.NAME.status, .exitCode, .startedAt, .finishedAt, .outputs).
func (w *walk) step(ctx context.Context, wt *wfv1.WorkflowTemplate, s wfv1.WorkflowStep, scope common.Parameters) (Node, error) {
	w.mu.Lock()
	params := w.globals.Merge(scope)
	w.mu.Unlock()
	step, err := resolveStep(s, params)
	if err != nil {
		return Node{}, fmt.Errorf("%s step %s: %w", wt.Name, s.Name, err)
	}
	prefix := "steps." + s.Name + "."
	switch step.When {
	case "", "true":
	case "false":
		n := Node{Workflow: w.wf.Name, Name: s.Name, Template: step.Template, Phase: wfv1.NodeSkipped, Started: time.Now(), Finished: time.Now()}
		scope[prefix+"status"] = string(wfv1.NodeSkipped)
		w.ended(n)
		return n, nil
	default:
		return Node{}, fmt.Errorf("%s step %s: when %q: this machine decides only true or false", wt.Name, s.Name, step.When)
	}
	owner, tmplName := wt, step.Template
	if ref := step.TemplateRef; ref != nil {
		if owner = w.c.Pipeline.Templates[ref.Name]; owner == nil {
			return Node{}, fmt.Errorf("%s step %s: no WorkflowTemplate %s", wt.Name, s.Name, ref.Name)
		}
		tmplName = ref.Template
	}
	tmpl, err := lookup(owner, tmplName)
	if err != nil {
		return Node{}, err
	}
	n, err := w.run(ctx, owner, tmpl, &step.Arguments, s.Name)
	if err != nil {
		return n, err
	}
	scope[prefix+"status"] = string(n.Phase)
	scope[prefix+"exitCode"] = strconv.Itoa(n.ExitCode)
	scope[prefix+"startedAt"] = n.Started.UTC().Format(time.RFC3339)
	scope[prefix+"finishedAt"] = n.Finished.UTC().Format(time.RFC3339)
	for k, v := range n.Outputs {
		scope[prefix+"outputs.parameters."+k] = v
	}
	return n, nil
}

// resolveStep resolves a step's references as the controller does when its
// step group starts (unresolved names left alone).
func resolveStep(s wfv1.WorkflowStep, params common.Parameters) (wfv1.WorkflowStep, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return s, err
	}
	out, err := template.Replace(string(b), params, true)
	if err != nil {
		return s, err
	}
	var step wfv1.WorkflowStep
	err = json.Unmarshal([]byte(out), &step)
	return step, err
}

func lookup(wt *wfv1.WorkflowTemplate, name string) (*wfv1.Template, error) {
	for i := range wt.Spec.Templates {
		if wt.Spec.Templates[i].Name == name {
			return &wt.Spec.Templates[i], nil
		}
	}
	return nil, fmt.Errorf("WorkflowTemplate %s has no template %s", wt.Name, name)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
