package edge

import (
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"

	parleyjs "github.com/parleyhq/parley/sdk/js"
)

// webFiles are the demo page's assets, served under /web/.
//
//go:embed web
var webFiles embed.FS

// assetTypes are set explicitly: module scripts must be served as
// JavaScript whatever the host's mime database says.
var assetTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".ts":   "text/plain; charset=utf-8",
}

// registerWeb adds the demo page's assets and the browser SDK to mux.
func registerWeb(mux *http.ServeMux) {
	mux.HandleFunc("GET /web/{file}", func(w http.ResponseWriter, r *http.Request) {
		serveWebFile(w, r, "web/"+r.PathValue("file"))
	})
	mux.HandleFunc("GET /sdk/{file}", func(w http.ResponseWriter, r *http.Request) {
		serveFrom(w, r, parleyjs.Files, r.PathValue("file"))
	})
}

func serveWebFile(w http.ResponseWriter, r *http.Request, name string) {
	serveFrom(w, r, webFiles, name)
}

// serveFrom serves one embedded file with its content type, a short cache
// lifetime and no sniffing.
func serveFrom(w http.ResponseWriter, r *http.Request, fsys fs.FS, name string) {
	if strings.Contains(name, "..") {
		http.NotFound(w, r)
		return
	}
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	ext := path.Ext(name)
	ct, ok := assetTypes[ext]
	if !ok {
		ct = mime.TypeByExtension(ext)
	}
	if ct == "" {
		ct = "application/octet-stream"
	}
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(b)
}
