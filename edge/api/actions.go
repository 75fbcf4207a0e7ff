package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"sync"
	"time"

	"github.com/parleyhq/parley/core"
)

// ActionRequest is one action of a POST /v1/actions batch.
type ActionRequest struct {
	// ID is the caller's request id, echoed in the result line; required
	// and unique within the batch.
	ID     string          `json:"id"`
	Action string          `json:"action"`
	Params json.RawMessage `json:"params,omitempty"`
}

// ActionResult is one line of the NDJSON answer.
type ActionResult struct {
	ID string `json:"id"`
	// Line is the action's 1-based line (NDJSON) or position (JSON
	// array) in the request; set on errors, so malformed lines without a
	// readable id can be matched.
	Line   int          `json:"line,omitempty"`
	OK     bool         `json:"ok"`
	Result any          `json:"result,omitempty"`
	Error  *ErrorDetail `json:"error,omitempty"`
}

// batchItem is one parsed action, or why it could not be parsed.
type batchItem struct {
	line int
	req  ActionRequest
	prm  params
	err  error
}

// parseBatch splits body (NDJSON or a JSON array, by Content-Type, else by
// its first byte) into actions. A body that is not a batch at all is an
// error; a malformed action is an item with err set.
func parseBatch(body []byte, contentType string) ([]batchItem, error) {
	mt := ""
	if contentType != "" {
		var err error
		if mt, _, err = mime.ParseMediaType(contentType); err != nil {
			return nil, core.Errorf(core.CodeBadRequest, "bad Content-Type %q", contentType)
		}
	}
	trimmed := bytes.TrimSpace(body)
	switch mt {
	case "application/x-ndjson", "application/jsonl", "application/ndjson":
		return parseNDJSON(body), nil
	case "application/json":
		return parseArray(trimmed)
	case "":
		if len(trimmed) > 0 && trimmed[0] == '[' {
			return parseArray(trimmed)
		}
		return parseNDJSON(body), nil
	}
	return nil, core.Errorf(core.CodeBadRequest, "Content-Type must be application/x-ndjson or application/json, not %q", mt)
}

func parseNDJSON(body []byte) []batchItem {
	var items []batchItem
	for i, line := range bytes.Split(body, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		items = append(items, parseAction(i+1, line))
	}
	return items
}

func parseArray(body []byte) ([]batchItem, error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		return nil, core.Errorf(core.CodeBadRequest, "body is not a JSON array of actions: %s", jsonErr(err))
	}
	items := make([]batchItem, len(raws))
	for i, raw := range raws {
		items[i] = parseAction(i+1, raw)
	}
	return items, nil
}

// parseAction decodes and validates one action.
func parseAction(line int, raw []byte) batchItem {
	it := batchItem{line: line}
	if err := decodeStrict(raw, &it.req); err != nil {
		var loose struct {
			ID any `json:"id"`
		}
		if json.Unmarshal(raw, &loose) == nil {
			if id, ok := loose.ID.(string); ok && len(id) <= 128 {
				it.req.ID = id
			}
		}
		it.err = core.Errorf(core.CodeMalformed, "line %d: %v", line, detail(err).Message)
		return it
	}
	if err := checkName("id", it.req.ID); err != nil {
		it.err = core.Errorf(core.CodeBadRequest, "line %d: %s", line, detail(err).Message)
		return it
	}
	prm, err := decodeParams(it.req.Action, it.req.Params)
	if err != nil {
		it.err = err
		return it
	}
	it.prm = prm
	return it
}

// handleActions runs a batch: every action concurrently (up to
// Config.Concurrency), streaming each result line as it completes.
func handleActions(c *call) {
	s := c.s
	items, err := parseBatch(c.body, c.r.Header.Get("Content-Type"))
	switch {
	case err != nil:
		c.fail(err)
		return
	case len(items) == 0:
		c.fail(core.Errorf(core.CodeBadRequest, "the batch holds no actions"))
		return
	case len(items) > s.cfg.MaxActions:
		c.fail(core.Errorf(core.CodeMessageTooLarge, "the batch holds %d actions; at most %d are allowed", len(items), s.cfg.MaxActions))
		return
	}
	seen := make(map[string]bool, len(items))
	for i := range items {
		if it := &items[i]; it.err == nil {
			if seen[it.req.ID] {
				it.err = core.Errorf(core.CodeBadRequest, "line %d: id %q repeats an earlier action's", it.line, it.req.ID)
			}
			seen[it.req.ID] = true
		}
	}
	// Actions outlive a client that goes away (up to the request
	// timeout), so that a retry with the same Idempotency-Key finds them
	// done.
	ctx, cancel := context.WithDeadlineCause(context.WithoutCancel(c.r.Context()), c.start.Add(s.cfg.RequestTimeout),
		core.Errorf(core.CodeTimeout, "request timeout (%s) reached", s.cfg.RequestTimeout))
	defer cancel()
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)

	results := make(chan ActionResult, len(items))
	var wg sync.WaitGroup
	wg.Go(func() { s.dispatch(ctx, c.p, items, results) })
	defer wg.Wait()

	c.w.Header().Set("Content-Type", "application/x-ndjson")
	c.w.Header().Set("Cache-Control", "no-store")
	c.w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(c.w)
	_ = rc.Flush()
	idle := time.NewTimer(s.cfg.IdleTimeout)
	defer idle.Stop()
	for range items {
		var res ActionResult
		select {
		case res = <-results:
		case <-idle.C:
			stop(core.Errorf(core.CodeTimeout, "idle timeout: no action completed for %s", s.cfg.IdleTimeout))
			res = <-results
		}
		idle.Reset(s.cfg.IdleTimeout)
		line, err := json.Marshal(res)
		if err != nil {
			line, _ = json.Marshal(ActionResult{ID: res.ID, Line: res.Line, Error: &ErrorDetail{Code: core.CodeInternal, Message: "encode result"}})
		}
		_, _ = c.w.Write(append(line, '\n'))
		_ = rc.Flush()
	}
}

// dispatch runs items, at most Config.Concurrency at once, and sends one
// result per item to results (buffered for all of them). It returns when
// every action has finished.
func (s *Server) dispatch(ctx context.Context, p principal, items []batchItem, results chan<- ActionResult) {
	sem := make(chan struct{}, s.cfg.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, it := range items {
		if it.err != nil {
			results <- failed(it, it.err)
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			results <- failed(it, timeoutCause(ctx, "the action did not start"))
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			results <- s.runAction(ctx, p, it)
		})
	}
}

// runAction runs one action within Config.ActionTimeout.
func (s *Server) runAction(ctx context.Context, p principal, it batchItem) (res ActionResult) {
	actx, cancel := context.WithTimeoutCause(ctx, s.cfg.ActionTimeout,
		core.Errorf(core.CodeTimeout, "action timeout (%s) reached", s.cfg.ActionTimeout))
	defer cancel()
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("server API action panicked", "action", it.req.Action, "panic", v)
			res = failed(it, core.Errorf(core.CodeInternal, "action failed"))
		}
	}()
	out, err := s.exec(actx, p, it.req.Action, it.prm)
	if err != nil {
		if actx.Err() != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || core.CodeOf(err) == core.CodeInternal) {
			err = timeoutCause(actx, "the action did not complete")
		}
		return failed(it, err)
	}
	return ActionResult{ID: it.req.ID, OK: true, Result: out}
}

// timeoutCause is the timeout that ended ctx, as a core error.
func timeoutCause(ctx context.Context, what string) error {
	var ce *core.Error
	if errors.As(context.Cause(ctx), &ce) {
		return core.Errorf(core.CodeTimeout, "%s: %s", what, ce.Message)
	}
	return core.Errorf(core.CodeTimeout, "%s in time", what)
}

func failed(it batchItem, err error) ActionResult {
	d := detail(err)
	return ActionResult{ID: it.req.ID, Line: it.line, Error: &d}
}
