package node

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics builds the node's Prometheus registry: Go runtime and process
// collectors, build info, and the node's own gauges and counters read at
// scrape time (nothing on the media path updates a metric).
func (n *Node) metrics() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&nodeCollector{n: n},
		webhookCollector{n: n},
	)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("parley_"+name, help, labels, nil)
}

var (
	descInfo          = desc("build_info", "Build and node identity; always 1.", "version", "node_id")
	descRooms         = desc("rooms", "Rooms hosted on this node.")
	descParticipants  = desc("participants", "Participants in rooms on this node.")
	descTracks        = desc("tracks", "Published tracks on this node.")
	descSubscriptions = desc("subscriptions", "Track subscriptions on this node.")
	descPacketsIn     = desc("media_packets_received_total", "RTP packets received from publishers.")
	descBytesIn       = desc("media_bytes_received_total", "RTP bytes received from publishers.")
	descPacketsOut    = desc("media_packets_forwarded_total", "RTP packets forwarded to subscribers.")
	descNacks         = desc("media_nack_retransmissions_total", "Packets retransmitted from the cache on NACK.")
	descPLI           = desc("media_keyframe_requests_total", "Keyframe requests (PLI) sent to publishers.")
	descPaused        = desc("media_paused_drops_total", "Packets not sent to congested (paused) subscribers.")
	descSessions      = desc("signal_sessions", "Signaling sessions, attached or awaiting resume.")
	descDetached      = desc("signal_sessions_detached", "Signaling sessions within their resume grace period.")
	descConns         = desc("signal_connections", "Open signaling connections.")
)

// nodeCollector reads the node's counts at scrape time.
type nodeCollector struct{ n *Node }

// Describe implements prometheus.Collector.
func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInfo, descRooms, descParticipants, descTracks, descSubscriptions,
		descPacketsIn, descBytesIn, descPacketsOut, descNacks, descPLI, descPaused, descSessions, descDetached, descConns} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge(descInfo, 1, Version, c.n.id)
	rs := c.n.rooms.Stats()
	gauge(descRooms, float64(rs.Rooms))
	gauge(descParticipants, float64(rs.Participants))
	gauge(descTracks, float64(rs.Tracks))
	gauge(descSubscriptions, float64(rs.Subscriptions))
	counter(descPacketsIn, rs.PacketsIn)
	counter(descBytesIn, rs.BytesIn)
	counter(descPacketsOut, rs.PacketsOut)
	counter(descNacks, rs.NacksServed)
	counter(descPLI, rs.KeyframeRequests)
	counter(descPaused, rs.PausedDrops)
	ss := c.n.signal.Stats()
	gauge(descSessions, float64(ss.Sessions))
	gauge(descDetached, float64(ss.Detached))
	gauge(descConns, float64(ss.Connections))
}
