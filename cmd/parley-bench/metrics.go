package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Sources of the server's figures.
const (
	sourceMetrics = "metrics"
	sourceProc    = "proc"
	sourceNone    = "none"
)

// Prometheus names the benchmark reads.
const (
	metricCPU       = "process_cpu_seconds_total"
	metricRSS       = "process_resident_memory_bytes"
	metricForwarded = "parley_media_packets_forwarded_total"
	metricReceived  = "parley_media_packets_received_total"
	metricNacks     = "parley_media_nack_retransmissions_total"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat times (100 on Linux).
const clockTicks = 100

// serverSample is the server's counters at one moment.
type serverSample struct {
	cpuSeconds   float64
	rssBytes     float64
	forwarded    float64 // packets forwarded to subscribers
	received     float64 // packets received from publishers
	nacks        float64
	hasForwarded bool
}

// serverProbe reads the server's counters from /metrics or /proc.
type serverProbe struct {
	source  string
	url     string
	token   string
	pid     int
	client  *http.Client
	lastErr error
}

// newServerProbe picks the source: /metrics if it answers with process
// metrics, else /proc/PID if pid is set, else none.
func newServerProbe(ctx context.Context, metricsURL, token string, pid int) *serverProbe {
	p := &serverProbe{url: metricsURL, token: token, pid: pid, client: &http.Client{Timeout: 5 * time.Second}}
	p.source = sourceMetrics
	if _, err := p.sample(ctx); err == nil {
		return p
	} else {
		p.lastErr = err
	}
	p.source = sourceProc
	if pid > 0 {
		if _, err := p.sample(ctx); err == nil {
			return p
		} else {
			p.lastErr = errors.Join(p.lastErr, err)
		}
	}
	p.source = sourceNone
	return p
}

// sample reads the counters now.
func (p *serverProbe) sample(ctx context.Context) (serverSample, error) {
	switch p.source {
	case sourceMetrics:
		return p.scrape(ctx)
	case sourceProc:
		return readProc(p.pid)
	}
	return serverSample{}, errors.New("no server metrics source")
}

// scrape reads the Prometheus text exposition at p.url.
func (p *serverProbe) scrape(ctx context.Context) (serverSample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return serverSample{}, err
	}
	req.Header.Set("Accept", "text/plain")
	if p.token != "" {
		req.Header.Set("Authorization", "Bearer "+p.token)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return serverSample{}, fmt.Errorf("scrape %s: %w", p.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return serverSample{}, fmt.Errorf("scrape %s: %s", p.url, resp.Status)
	}
	vals, err := parseMetrics(resp.Body)
	if err != nil {
		return serverSample{}, fmt.Errorf("scrape %s: %w", p.url, err)
	}
	cpu, ok := vals[metricCPU]
	if !ok {
		return serverSample{}, fmt.Errorf("scrape %s: no %s", p.url, metricCPU)
	}
	s := serverSample{cpuSeconds: cpu, rssBytes: vals[metricRSS], received: vals[metricReceived], nacks: vals[metricNacks]}
	s.forwarded, s.hasForwarded = vals[metricForwarded]
	return s, nil
}

// parseMetrics reads a Prometheus text exposition and sums each metric's
// samples over their labels.
func parseMetrics(r io.Reader) (map[string]float64, error) {
	out := make(map[string]float64)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		if strings.HasPrefix(rest, "{") {
			end := strings.LastIndexByte(rest, '}')
			if end < 0 {
				continue
			}
			rest = rest[end+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		out[name] += v
	}
	return out, sc.Err()
}

// readProc reads CPU time and RSS of pid from /proc.
func readProc(pid int) (serverSample, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return serverSample{}, fmt.Errorf("read /proc/%d/stat: %w", pid, err)
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return serverSample{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return serverSample{}, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseUint(f[12], 10, 64) // field 15
	if err := errors.Join(err1, err2); err != nil {
		return serverSample{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	out := serverSample{cpuSeconds: float64(utime+stime) / clockTicks}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return serverSample{}, fmt.Errorf("read /proc/%d/status: %w", pid, err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			out.rssBytes = kb * 1024
		}
	}
	return out, nil
}

// selfCPU returns the benchmark process's own CPU time (user + system).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
