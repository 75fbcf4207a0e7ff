package edge

import (
	"crypto/subtle"
	"net"
	"net/http"
	"strings"
)

// handleMetrics serves the Prometheus exposition. Access: loopback clients,
// --dev, or a bearer token equal to Config.MetricsToken.
func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	if !s.metricsAllowed(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="parley-metrics"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "metrics need a loopback client or the metrics token"})
		return
	}
	s.deps.Metrics.ServeHTTP(w, r)
}

func (s *Server) metricsAllowed(r *http.Request) bool {
	if s.cfg.Dev {
		return true
	}
	if tok := s.cfg.MetricsToken; tok != "" {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if ok && subtle.ConstantTimeCompare([]byte(got), []byte(tok)) == 1 {
			return true
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback() && r.Header.Get("X-Forwarded-For") == ""
}
