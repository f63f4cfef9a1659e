package promoterserver

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/slipway-deploy/slipway/internal/oneline"
	"github.com/slipway-deploy/slipway/internal/outcome"
	"github.com/slipway-deploy/slipway/internal/promoter"
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
type jobKey = promoter.Request

type job struct {
	done     chan struct{} // closed when res is set
	res      promoter.Result
	finished time.Time
}

// jobs are the promotions running or finished but not yet collected.
type jobs struct {
	mu sync.Mutex
	m  map[jobKey]*job
	wg sync.WaitGroup
}

// start returns the job for key, starting run detached when there is none.
func (js *jobs) start(key jobKey, run func() promoter.Result) (j *job, started bool) {
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
		res := run()
		js.mu.Lock()
		j.res, j.finished = res, time.Now()
		js.mu.Unlock()
		close(j.done)
	}()
	return j, true
}

// collect hands out a finished job's result and forgets the job: the next
// call for the same key decides afresh (a Running decision is asked again,
// a failure is retried).
func (js *jobs) collect(key jobKey, j *job) promoter.Result {
	js.mu.Lock()
	defer js.mu.Unlock()
	if js.m[key] == j {
		delete(js.m, key)
	}
	return j.res
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

// promote runs one promotion detached from ctx, with its own deadline
// (Config.Timeout), and waits for it at most Config.ReplyBudget: past that
// the result is InProgress, asked again after a short requeue. A repeated
// call for the same workflow, app, environment and tag joins the work
// still running or collects its result.
func (s *Server) promote(ctx context.Context, req promoter.Request) promoter.Result {
	log := s.log.With("app", req.App.String(), "from", req.From.String(), "tag", req.Tag.String(), "workflow", req.Workflow)
	j, started := s.jobs.start(req, func() promoter.Result {
		// Detached: the agent hanging up must not cut a push in half.
		jctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.Timeout)
		defer cancel()
		return s.run(jctx, log, req)
	})
	if !started {
		log.Info("joining the promotion already running")
	}
	budget := time.NewTimer(s.cfg.ReplyBudget)
	defer budget.Stop()
	select {
	case <-j.done:
		return s.jobs.collect(req, j)
	case <-budget.C:
	case <-ctx.Done():
	}
	log.Info("promotion still running; asking the agent to call again", "requeue", progressRequeue.String())
	return promoter.Result{Outcome: outcome.InProgress, Reason: "promotion in progress", Requeue: progressRequeue}
}

// Drain waits for the promotions still running (after the HTTP server
// stopped taking requests) until ctx is done.
func (s *Server) Drain(ctx context.Context) error { return s.jobs.wait(ctx) }

// run performs one promotion, counts it and logs it. A failure's reason is
// its error on one line, secrets masked.
func (s *Server) run(ctx context.Context, log *slog.Logger, req promoter.Request) promoter.Result {
	started := time.Now()
	log.Debug("promotion started")
	res, err := s.promoter.Promote(ctx, req)
	if err != nil {
		res.Outcome, res.Reason, res.Commit = outcome.Failed, s.redactor.String(oneline.Fold(err.Error())), ""
	}
	s.metrics.observe(res.Outcome, time.Since(started))
	rep := res.Report()
	attrs := append([]any{"phase", string(res.Outcome.Phase())}, rep.Attrs...)
	if rep.Requeue > 0 {
		attrs = append(attrs, "requeue", rep.Requeue.String())
	}
	if err != nil {
		log.Error("promotion failed", attrs...)
	} else {
		log.Info("promotion decided", attrs...)
	}
	return res
}
