package edge

import "net/http"

// handleIndex serves the demo page (edge/web/index.html): pick a room and a
// name, hold a call. With --dev it fetches tokens from /v1/dev/token;
// otherwise it asks for one.
func (s *Server) handleIndex(w http.ResponseWriter, r *http.Request) {
	serveWebFile(w, r, "web/index.html")
}
