package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"
)

// SearchStep is one run of a search.
type SearchStep struct {
	Subscribers int     `json:"subscribers_per_room"`
	Pass        bool    `json:"pass"`
	Why         string  `json:"why,omitempty"`
	Report      *Report `json:"report"`
}

// SearchResult is the outcome of --search.
type SearchResult struct {
	// Best is the largest subscriber count per room that passed, 0 if none.
	Best       int           `json:"best_subscribers_per_room"`
	MaxLossPct float64       `json:"max_loss_pct"`
	MaxP99MS   float64       `json:"max_p99_ms"`
	Steps      []*SearchStep `json:"steps"`
}

// pass reports whether r meets the search criteria, and why not.
func pass(cfg *config, r *Report) (bool, string) {
	p99 := time.Duration(r.Latency.P99 * float64(time.Millisecond))
	switch {
	case r.FailedClients > 0:
		return false, fmt.Sprintf("%d clients failed", r.FailedClients)
	case r.Packets.Expected == 0:
		return false, "no packets expected"
	case r.Packets.LossPct >= cfg.MaxLossPct:
		return false, fmt.Sprintf("loss %.3f %% >= %.3f %%", r.Packets.LossPct, cfg.MaxLossPct)
	case p99 >= cfg.MaxP99:
		return false, fmt.Sprintf("p99 %.3f ms >= %s", r.Latency.P99, cfg.MaxP99)
	}
	return true, ""
}

// search doubles the subscriber count from --search-min until a run fails or
// --maxClients is reached, then bisects between the last pass and the first
// failure to within 5 %.
func search(ctx context.Context, cfg *config, probe *serverProbe, log *slog.Logger, progress io.Writer) (*SearchResult, error) {
	res := &SearchResult{MaxLossPct: cfg.MaxLossPct, MaxP99MS: float64(cfg.MaxP99) / float64(time.Millisecond)}
	try := func(n int) (bool, error) {
		rep, err := runOnce(ctx, cfg, n, fmt.Sprintf("s%d", len(res.Steps)), probe, log)
		if err != nil {
			return false, err
		}
		ok, why := pass(cfg, rep)
		res.Steps = append(res.Steps, &SearchStep{Subscribers: n, Pass: ok, Why: why, Report: rep})
		fmt.Fprintf(progress, "search: %d subscribers/room: loss %.3f %%, p99 %.3f ms: pass=%v %s\n",
			n, rep.Packets.LossPct, rep.Latency.P99, ok, why)
		if ok && n > res.Best {
			res.Best = n
		}
		return ok, nil
	}
	lo, hi := 0, cfg.Subscribers+1 // lo passed (0: none yet), hi failed
	for n := cfg.SearchMin; ; n = min(2*n, cfg.Subscribers) {
		ok, err := try(n)
		if err != nil {
			return nil, err
		}
		if !ok {
			hi = n
			break
		}
		lo = n
		if n == cfg.Subscribers {
			return res, nil
		}
	}
	for hi-lo > max(1, lo/20) {
		mid := lo + (hi-lo)/2
		if mid <= 0 {
			break
		}
		ok, err := try(mid)
		if err != nil {
			return nil, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	return res, nil
}

// writeTable prints the search steps and the answer.
func (s *SearchResult) writeTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "subs/room\tloss %\tp50 ms\tp99 ms\tserver CPU s\tpkts/CPU-s\tpass\t")
	for _, st := range s.Steps {
		r := st.Report
		fmt.Fprintf(tw, "%d\t%.3f\t%.3f\t%.3f\t%.2f\t%.0f\t%v\t\n", st.Subscribers, r.Packets.LossPct,
			r.Latency.P50, r.Latency.P99, r.Server.CPUSeconds, r.Server.PacketsPerCPUSecond, st.Pass)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "largest subscriber count per room with loss < %.2f %% and p99 < %.0f ms: %d\n",
		s.MaxLossPct, s.MaxP99MS, s.Best)
	return err
}
