package promoterserver

import (
	"context"
	"sync"
	"time"

	"github.com/argoproj/argo-workflows/v3/pkg/plugins/executor"
)

// Argo's agent gives up on a plugin call after 30 seconds and calls again.
// A promotion's git work (fetch, history, push with retries) can take
// longer on a slow or loaded server, so it runs detached from the request,
// with its own deadline (Config.Timeout); the request waits for it at most
// Config.ReplyBudget and otherwise answers Running with a short requeue.
// A repeated call for the same promotion joins the work still running, or
// collects its result, instead of starting it again.

// progressRequeue is how soon the agent is asked to call again while a
// promotion's git work is still running.
const progressRequeue = 5 * time.Second

// resultTTL is how long a finished promotion's result waits for the
// repeated call that collects it.
const resultTTL = 10 * time.Minute

// jobKey identifies one promotion: the same workflow asking for the same
// release to go on from the same environment.
type jobKey struct{ workflow, app, from, tag string }

type job struct {
	done     chan struct{} // closed when reply is set
	reply    executor.ExecuteTemplateReply
	finished time.Time
}

// jobs are the promotions running or finished but not yet collected.
type jobs struct {
	mu sync.Mutex
	m  map[jobKey]*job
	wg sync.WaitGroup
}

// start returns the job for key, starting run detached when there is none.
func (js *jobs) start(key jobKey, run func() executor.ExecuteTemplateReply) (j *job, started bool) {
	js.mu.Lock()
	defer js.mu.Unlock()
	if js.m == nil {
		js.m = map[jobKey]*job{}
	}
	now := time.Now()
	for k, old := range js.m {
		if !old.finished.IsZero() && now.Sub(old.finished) > resultTTL {
			delete(js.m, k) // never collected
		}
	}
	if j := js.m[key]; j != nil {
		return j, false
	}
	j = &job{done: make(chan struct{})}
	js.m[key] = j
	js.wg.Add(1)
	go func() {
		defer js.wg.Done()
		reply := run()
		js.mu.Lock()
		j.reply, j.finished = reply, time.Now()
		js.mu.Unlock()
		close(j.done)
	}()
	return j, true
}

// collect hands out a finished job's reply and forgets the job: the next
// call for the same key decides afresh (a Running decision is asked again,
// a failure is retried).
func (js *jobs) collect(key jobKey, j *job) executor.ExecuteTemplateReply {
	js.mu.Lock()
	defer js.mu.Unlock()
	if js.m[key] == j {
		delete(js.m, key)
	}
	return j.reply
}

// wait blocks until every running job has finished or ctx is done.
func (js *jobs) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { js.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
