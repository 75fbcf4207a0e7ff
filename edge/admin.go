package edge

import (
	"context"
	"crypto/subtle"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/parleyhq/parley/core"
)

// PluginAdmin is what the admin API needs from the node's plugin host.
// Methods are called from HTTP handlers, concurrently.
type PluginAdmin interface {
	// PluginList describes the loaded plugins.
	PluginList() any
	// PluginLoad loads or replaces the plugin called name from module and
	// its manifest (JSON, as beside a .wasm in the plugin directory).
	PluginLoad(ctx context.Context, name string, module, manifest []byte) (any, error)
	// PluginUnload unloads the plugin called name.
	PluginUnload(ctx context.Context, name string) error
	// PluginReload makes the loaded set match the plugin directory.
	PluginReload(ctx context.Context) (any, error)
}

// maxPluginUpload bounds a plugin upload (module plus manifest).
const maxPluginUpload = 64 << 20

func (s *Server) adminRoutes(mux *http.ServeMux) {
	if s.deps.Plugins == nil {
		return
	}
	mux.HandleFunc("GET /v1/admin/plugins", s.admin(s.handlePluginList))
	mux.HandleFunc("PUT /v1/admin/plugins/{name}", s.admin(s.handlePluginLoad))
	mux.HandleFunc("DELETE /v1/admin/plugins/{name}", s.admin(s.handlePluginUnload))
	mux.HandleFunc("POST /v1/admin/plugins/reload", s.admin(s.handlePluginReload))
}

// admin wraps h with bearer-token authentication against Config.AdminToken,
// compared in constant time. Without a configured token the admin API is
// closed.
func (s *Server) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		want := s.cfg.AdminToken
		if !ok || want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="parley-admin"`)
			writeError(w, http.StatusUnauthorized, core.ErrUnauthenticated)
			return
		}
		h(w, r)
	}
}

func (s *Server) handlePluginList(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.deps.Plugins.PluginList())
}

// handlePluginLoad takes multipart/form-data with a "module" file part and
// an optional "manifest" part.
func (s *Server) handlePluginLoad(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxPluginUpload)
	if err := r.ParseMultipartForm(8 << 20); err != nil {
		writeError(w, http.StatusBadRequest, core.Errorf(core.CodeBadRequest, "want multipart/form-data with a module part: %v", err))
		return
	}
	f, _, err := r.FormFile("module")
	if err != nil {
		writeError(w, http.StatusBadRequest, core.Errorf(core.CodeBadRequest, "missing module part: %v", err))
		return
	}
	defer f.Close()
	module, err := io.ReadAll(f)
	if err != nil {
		writeError(w, http.StatusBadRequest, core.Errorf(core.CodeBadRequest, "read module: %v", err))
		return
	}
	res, err := s.deps.Plugins.PluginLoad(r.Context(), r.PathValue("name"), module, []byte(r.FormValue("manifest")))
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) handlePluginUnload(w http.ResponseWriter, r *http.Request) {
	if err := s.deps.Plugins.PluginUnload(r.Context(), r.PathValue("name")); err != nil {
		status := http.StatusUnprocessableEntity
		if errors.Is(err, core.ErrNotFound) {
			status = http.StatusNotFound
		}
		writeError(w, status, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"unloaded": r.PathValue("name")})
}

func (s *Server) handlePluginReload(w http.ResponseWriter, r *http.Request) {
	res, err := s.deps.Plugins.PluginReload(r.Context())
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// writeError answers with {"error": {"code", "message"}}.
func writeError(w http.ResponseWriter, status int, err error) {
	msg := err.Error()
	var ce *core.Error
	if errors.As(err, &ce) {
		msg = ce.Message
		if ce.Err != nil {
			msg += ": " + ce.Err.Error()
		}
	}
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": string(core.CodeOf(err)), "message": msg}})
}
