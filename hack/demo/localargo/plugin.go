package localargo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/plugins/executor"
)

// ExecutePath is where Argo's agent posts a plugin template.
const ExecutePath = "/api/v1/template.execute"

// agentTimeout is how long Argo's agent waits for a plugin's reply.
const agentTimeout = 30 * time.Second

// plugin runs a plugin template as Argo's agent does: it posts the
// template, as resolved, with the workflow's name, namespace and uid,
// bearing the agent's token; while the reply asks to be asked again
// (requeue), it asks again after that long.
func (w *walk) plugin(ctx context.Context, t *wfv1.Template, name string) (Node, error) {
	n := Node{Workflow: w.wf.Name, Name: name, Template: t.Name, Started: time.Now(), Outputs: map[string]string{}}
	var plugins map[string]json.RawMessage
	if err := json.Unmarshal(t.Plugin.Value, &plugins); err != nil || len(plugins) != 1 {
		return n, fmt.Errorf("template %s: plugin: want one plugin's arguments", t.Name)
	}
	var p Plugin
	var pluginName string
	for k := range plugins {
		var ok bool
		if p, ok = w.c.Plugins[k]; !ok {
			return n, fmt.Errorf("template %s: no executor plugin %s here", t.Name, k)
		}
		pluginName = k
	}
	body, err := json.Marshal(executor.ExecuteTemplateArgs{
		Workflow: &executor.Workflow{ObjectMeta: executor.ObjectMeta{Name: w.wf.Name, Namespace: w.c.Namespace, UID: w.wf.UID}},
		Template: t,
	})
	if err != nil {
		return n, err
	}
	for {
		reply, err := ask(ctx, p, body)
		if err != nil {
			return n, fmt.Errorf("plugin %s: %w", pluginName, err)
		}
		if reply.Node == nil {
			return n, fmt.Errorf("plugin %s did not take template %s", pluginName, t.Name)
		}
		n.Phase, n.Message = reply.Node.Phase, reply.Node.Message
		if !n.Phase.Fulfilled(nil) {
			if w.c.OnReply != nil {
				w.c.OnReply(n, reply)
			}
			select {
			case <-ctx.Done():
				return n, context.Cause(ctx)
			case <-time.After(reply.GetRequeue()):
			}
			continue
		}
		if out := reply.Node.Outputs; out != nil {
			for _, o := range out.Parameters {
				n.Outputs[o.Name] = o.Value.String()
			}
			if out.ExitCode != nil {
				if n.ExitCode, err = strconv.Atoi(*out.ExitCode); err != nil {
					return n, fmt.Errorf("plugin %s: exit code %q", pluginName, *out.ExitCode)
				}
			}
		}
		n.Finished = time.Now()
		return n, nil
	}
}

// ask posts one request and decodes the reply.
func ask(ctx context.Context, p Plugin, body []byte) (executor.ExecuteTemplateReply, error) {
	var reply executor.ExecuteTemplateReply
	ctx, cancel := context.WithTimeout(ctx, agentTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL+ExecutePath, bytes.NewReader(body))
	if err != nil {
		return reply, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+p.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return reply, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return reply, err
	}
	if resp.StatusCode != http.StatusOK {
		return reply, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(b))
	}
	if err := json.Unmarshal(b, &reply); err != nil {
		return reply, fmt.Errorf("reply: %w", err)
	}
	return reply, nil
}
