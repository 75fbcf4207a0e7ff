package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of one run.
type Report struct {
	Mode               string  `json:"mode"`
	Transport          string  `json:"transport"`
	Rooms              int     `json:"rooms"`
	PublishersPerRoom  int     `json:"publishers_per_room"`
	SubscribersPerRoom int     `json:"subscribers_per_room"`
	Receivers          int     `json:"receivers"`
	FailedClients      int     `json:"failed_clients"`
	DurationS          float64 `json:"duration_s"`

	Join    Dist    `json:"join_time"`
	Latency Dist    `json:"forwarding_latency"`
	Packets Packets `json:"packets"`
	// ReceivedBitrate is the bitrate all receivers got together, bits/s;
	// PerReceiverBitrate the mean per receiver.
	ReceivedBitrate    float64 `json:"received_bitrate_bps"`
	PerReceiverBitrate float64 `json:"per_receiver_bitrate_bps"`

	Server Server `json:"server"`
	// ClientCPUSeconds is the benchmark process's own CPU time over the
	// measured window (the clients share the machine with the server when
	// it runs locally).
	ClientCPUSeconds float64 `json:"client_cpu_seconds"`

	Errors []string `json:"errors,omitempty"`
}

// Packets counts media packets over the measured window.
type Packets struct {
	Sent       uint64  `json:"sent"`     // by the publishers
	Expected   uint64  `json:"expected"` // sum over receivers of the packets of the tracks they should get
	Received   uint64  `json:"received"` // distinct packets of those received
	Lost       uint64  `json:"lost"`
	LossPct    float64 `json:"loss_pct"`
	Duplicates uint64  `json:"duplicates"`
	SendErrors uint64  `json:"send_errors"`
}

// Server holds the server's figures over the measured window.
type Server struct {
	// Source is where they come from: "metrics" (Prometheus /metrics),
	// "proc" (/proc/PID of --server-pid) or "none".
	Source      string `json:"source"`
	SourceError string `json:"source_error,omitempty"`
	// Note qualifies the figures (with --local the node shares the
	// benchmark's process, so its CPU and RSS include the clients').
	Note         string  `json:"note,omitempty"`
	CPUSeconds   float64 `json:"cpu_seconds"`
	CPUPercent   float64 `json:"cpu_percent"` // of one core
	RSSStartMiB  float64 `json:"rss_start_mib"`
	RSSMaxMiB    float64 `json:"rss_max_mib"`
	RSSEndMiB    float64 `json:"rss_end_mib"`
	Forwarded    uint64  `json:"forwarded_packets"`
	ForwardedSrc string  `json:"forwarded_source"` // "metrics" or "clients" (distinct packets received)
	NACKsServed  uint64  `json:"nacks_served"`
	// PacketsPerCPUSecond is forwarded packets per server CPU-second, the
	// figure to compare across servers and machines.
	PacketsPerCPUSecond float64 `json:"packets_per_cpu_second"`
	// CPUPerPacketUS is its inverse, server CPU microseconds per forwarded
	// packet.
	CPUPerPacketUS float64 `json:"cpu_us_per_packet"`
}

// measurement is what measure collected.
type measurement struct {
	elapsed        time.Duration
	s0, s1         serverSample
	rssMax         float64
	serverErr      error
	clientCPU      time.Duration
	startNS, endNS int64
}

// measure opens the window, samples the server for the duration, stops the
// publishers with stop, drains, and closes the window.
func (b *bench) measure(ctx context.Context, stop func()) measurement {
	var m measurement
	var err error
	if m.s0, err = b.probe.sample(ctx); err != nil {
		m.serverErr = err
	}
	m.rssMax = m.s0.rssBytes
	c0 := selfCPU()
	b.mu.Lock()
	for _, p := range b.pubs {
		for _, t := range p.pubs {
			t.startSeq = t.next.Load()
		}
	}
	b.mu.Unlock()
	m.startNS = b.clk.now()
	b.winStart.Store(m.startNS)
	end := time.Now().Add(b.cfg.Duration)
	for time.Until(end) > 0 && ctx.Err() == nil {
		_ = sleep(ctx, min(time.Second, time.Until(end)))
		if s, err := b.probe.sample(ctx); err == nil {
			m.rssMax = math.Max(m.rssMax, s.rssBytes)
		}
	}
	stop()
	m.endNS = b.clk.now()
	b.winEnd.Store(m.endNS)
	m.elapsed = time.Duration(m.endNS - m.startNS)
	b.mu.Lock()
	for _, p := range b.pubs {
		for _, t := range p.pubs {
			t.endSeq = t.next.Load()
		}
	}
	b.mu.Unlock()
	_ = sleep(ctx, drainTime)
	m.clientCPU = selfCPU() - c0
	if m.s1, err = b.probe.sample(ctx); err != nil && m.serverErr == nil {
		m.serverErr = err
	}
	m.rssMax = math.Max(m.rssMax, m.s1.rssBytes)
	return m
}

// report computes the report from the clients' records and m.
func (b *bench) report(m measurement) *Report {
	b.mu.Lock()
	recvs := append([]*participant(nil), b.recvs...)
	pubs := append([]*participant(nil), b.pubs...)
	r := &Report{
		Mode: b.cfg.Mode, Transport: b.cfg.Transport, Rooms: len(b.rooms),
		PublishersPerRoom: b.cfg.Publishers, SubscribersPerRoom: b.subs,
		Receivers: len(recvs), FailedClients: b.failed, Errors: b.errs,
		DurationS:        m.elapsed.Seconds(),
		ClientCPUSeconds: m.clientCPU.Seconds(),
	}
	b.mu.Unlock()
	for _, p := range pubs {
		for _, t := range p.pubs {
			r.Packets.Sent += uint64(t.endSeq - t.startSeq)
			r.Packets.SendErrors += t.sendErrors.Load()
		}
	}
	var joins, lat []int64
	var bytes uint64
	for _, p := range recvs {
		if f := p.recv.firstMediaNS.Load(); f > 0 {
			joins = append(joins, f-p.recv.joinStartNS)
		}
		got := make(map[uint32]*recvTrack)
		for _, t := range p.recv.trackList() {
			t.mu.Lock()
			if t.known {
				got[t.track] = t
			}
			lat = append(lat, t.latency...)
			bytes += t.bytes
			r.Packets.Duplicates += t.duplicates
			t.mu.Unlock()
		}
		for _, pt := range b.expectedTracks(p) {
			r.Packets.Expected += uint64(pt.endSeq - pt.startSeq)
			if t := got[pt.index]; t != nil {
				r.Packets.Received += t.receivedIn(pt.startSeq, pt.endSeq)
			}
		}
	}
	r.Join, r.Latency = summarize(joins), summarize(lat)
	r.Packets.Lost = r.Packets.Expected - min(r.Packets.Expected, r.Packets.Received)
	if r.Packets.Expected > 0 {
		r.Packets.LossPct = round3(100 * float64(r.Packets.Lost) / float64(r.Packets.Expected))
	}
	if secs := m.elapsed.Seconds(); secs > 0 {
		r.ReceivedBitrate = math.Round(float64(bytes) * 8 / secs)
		if len(recvs) > 0 {
			r.PerReceiverBitrate = math.Round(r.ReceivedBitrate / float64(len(recvs)))
		}
	}
	r.Server = b.serverFigures(m, r.Packets.Received)
	return r
}

// serverFigures turns the server samples into the report's server section.
func (b *bench) serverFigures(m measurement, received uint64) Server {
	s := Server{Source: b.probe.source, ForwardedSrc: "clients", Forwarded: received}
	if b.cfg.Local {
		s.Note = "in-process node (--local): CPU and RSS include the clients"
	}
	if b.probe.lastErr != nil && s.Source != sourceMetrics {
		s.SourceError = b.probe.lastErr.Error()
	}
	if s.Source == sourceNone || m.serverErr != nil {
		if m.serverErr != nil {
			s.SourceError = m.serverErr.Error()
		}
		return s
	}
	const mib = 1 << 20
	s.CPUSeconds = round3(m.s1.cpuSeconds - m.s0.cpuSeconds)
	if m.elapsed > 0 {
		s.CPUPercent = round3(100 * s.CPUSeconds / (m.elapsed + drainTime).Seconds())
	}
	s.RSSStartMiB, s.RSSMaxMiB, s.RSSEndMiB = round3(m.s0.rssBytes/mib), round3(m.rssMax/mib), round3(m.s1.rssBytes/mib)
	if m.s0.hasForwarded && m.s1.hasForwarded {
		s.Forwarded, s.ForwardedSrc = uint64(m.s1.forwarded-m.s0.forwarded), sourceMetrics
		s.NACKsServed = uint64(m.s1.nacks - m.s0.nacks)
	}
	if s.CPUSeconds > 0 && s.Forwarded > 0 {
		s.PacketsPerCPUSecond = math.Round(float64(s.Forwarded) / s.CPUSeconds)
		s.CPUPerPacketUS = round3(s.CPUSeconds * 1e6 / float64(s.Forwarded))
	}
	return s
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeTable prints the report as a two-column table.
func (r *Report) writeTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, a...)) }
	row("scenario", "%s over %s: %d room(s) x (%d publishers, %d subscribers), %d receivers",
		r.Mode, r.Transport, r.Rooms, r.PublishersPerRoom, r.SubscribersPerRoom, r.Receivers)
	row("measured", "%.1f s", r.DurationS)
	row("failed clients", "%d", r.FailedClients)
	row("join time (connect to first media)", "p50 %.1f ms  p99 %.1f ms  (n=%d)", r.Join.P50, r.Join.P99, r.Join.Count)
	row("forwarding latency", "p50 %.3f ms  p99 %.3f ms  max %.3f ms  (n=%d)",
		r.Latency.P50, r.Latency.P99, r.Latency.Max, r.Latency.Count)
	row("packets", "sent %d  expected %d  received %d  lost %d (%.3f %%)  duplicates %d",
		r.Packets.Sent, r.Packets.Expected, r.Packets.Received, r.Packets.Lost, r.Packets.LossPct, r.Packets.Duplicates)
	row("received bitrate", "%.2f Mbit/s total, %.1f kbit/s per receiver", r.ReceivedBitrate/1e6, r.PerReceiverBitrate/1e3)
	s := r.Server
	if s.Source == sourceNone {
		row("server", "no figures (no /metrics, no --server-pid): %s", s.SourceError)
	} else {
		row("server CPU ("+s.Source+")", "%.2f s (%.1f %% of one core)", s.CPUSeconds, s.CPUPercent)
		row("server RSS", "start %.1f MiB  max %.1f MiB  end %.1f MiB", s.RSSStartMiB, s.RSSMaxMiB, s.RSSEndMiB)
		row("forwarded packets ("+s.ForwardedSrc+")", "%d  (%d NACK retransmissions)", s.Forwarded, s.NACKsServed)
		row("packets per server CPU-second", "%.0f  (%.2f us CPU per packet)", s.PacketsPerCPUSecond, s.CPUPerPacketUS)
		if s.Note != "" {
			row("note", "%s", s.Note)
		}
	}
	row("bench client CPU", "%.2f s", r.ClientCPUSeconds)
	for _, e := range r.Errors {
		row("error", "%s", strings.ReplaceAll(e, "\n", " "))
	}
	return tw.Flush()
}
