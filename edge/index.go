package edge

import (
	"html/template"
	"net/http"
)

var indexPage = template.Must(template.New("index").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Parley</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:44rem;margin:3rem auto;padding:0 1rem}code{background:#f3f3f3;padding:.1rem .3rem}</style>
</head><body>
<h1>Parley is running</h1>
<p>Node <code>{{.NodeID}}</code>, version <code>{{.Version}}</code>.</p>
<ul>
<li>Signaling (WebSocket): <code>{{.SignalURL}}</code></li>
<li>Media: UDP port <code>{{.MediaPort}}</code></li>
<li><a href="/v1/info">/v1/info</a> &middot; <a href="/healthz">/healthz</a></li>
</ul>
<p>Mint a client token with <code>parley token --room demo --identity alice</code>.
The protocol is described in <code>docs/protocol.md</code>.</p>
</body></html>
`))

func (s *Server) handleIndex(w http.ResponseWriter, _ *http.Request) {
	info := s.deps.Info()
	info.SignalURL = s.SignalURL()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = indexPage.Execute(w, info)
}
