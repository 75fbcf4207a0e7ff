package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/parleyhq/parley/core"
)

// Errors clients branch on; each carries a core code.
var (
	// ErrSignature is any failed request signature or bearer token check.
	// It never says which part was wrong.
	ErrSignature = &core.Error{Code: core.CodeInvalidToken, Message: "invalid credentials"}
	// ErrStale is a signed request whose timestamp is outside the window,
	// or an expired bearer token.
	ErrStale = &core.Error{Code: core.CodeTokenExpired, Message: "credentials expired or not yet valid"}
	// ErrMissingAuth is a request without credentials.
	ErrMissingAuth = &core.Error{Code: core.CodeUnauthenticated, Message: "authenticate with an API key (Parley-HMAC-SHA256 or Bearer) or the admin token"}
	// ErrAdminOnly is a key-management request made with an API key.
	ErrAdminOnly = &core.Error{Code: core.CodeForbidden, Message: "this endpoint needs the node's admin token"}
	// ErrIdempotencyMismatch is an Idempotency-Key reused with another
	// request (HTTP 422).
	ErrIdempotencyMismatch = &core.Error{Code: core.CodeConflict, Message: "Idempotency-Key was used with a different request"}
	// ErrIdempotencyBusy is a retry while the first request with its key
	// still runs after waiting for it (HTTP 409).
	ErrIdempotencyBusy = &core.Error{Code: core.CodeConflict, Message: "a request with this Idempotency-Key is still running; retry later"}
)

// ErrorBody is the JSON body of every error answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is a core code and a human-readable message.
type ErrorDetail struct {
	Code    core.Code `json:"code"`
	Message string    `json:"message"`
}

// detail turns err into its code and client-visible message.
func detail(err error) ErrorDetail {
	var ce *core.Error
	if errors.As(err, &ce) {
		msg := ce.Message
		if ce.Err != nil && ce.Code != core.CodeInternal {
			msg += ": " + ce.Err.Error()
		}
		return ErrorDetail{Code: ce.Code, Message: msg}
	}
	return ErrorDetail{Code: core.CodeInternal, Message: "internal error"}
}

// statusOf maps a core code to the HTTP status the API answers with.
func statusOf(code core.Code) int {
	switch code {
	case core.CodeBadRequest, core.CodeMalformed, core.CodeUnknownType, core.CodeUnsupportedVersion, core.CodeInvalidSDP:
		return http.StatusBadRequest
	case core.CodeUnauthenticated, core.CodeInvalidToken, core.CodeTokenExpired, core.CodeSessionExpired:
		return http.StatusUnauthorized
	case core.CodeForbidden:
		return http.StatusForbidden
	case core.CodeNotFound:
		return http.StatusNotFound
	case core.CodeConflict, core.CodeRoomFull, core.CodeTooManyTracks:
		return http.StatusConflict
	case core.CodeMessageTooLarge:
		return http.StatusRequestEntityTooLarge
	case core.CodeRateLimited:
		return http.StatusTooManyRequests
	case core.CodeUnavailable, core.CodeRedirect:
		return http.StatusServiceUnavailable
	case core.CodeTimeout:
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// writeError answers with err's status (from its code) and ErrorBody.
func writeError(w http.ResponseWriter, err error) {
	writeErrorStatus(w, statusOf(core.CodeOf(err)), err)
}

// writeErrorStatus answers with status and ErrorBody.
func writeErrorStatus(w http.ResponseWriter, status int, err error) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Parley-HMAC-SHA256 realm="parley-api", Bearer realm="parley-api"`)
	}
	writeJSON(w, status, ErrorBody{Error: detail(err)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"encode answer"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
