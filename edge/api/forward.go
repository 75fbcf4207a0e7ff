package api

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/core"
)

// ForwardHeader carries the node-to-node signature of a request one node
// of a cluster forwards to the owner of a room:
//
//	Parley-Forwarded: node=<id>,principal=<caller>,ts=<unix>,nonce=<n>,sig=<base64>
//
// sig is HMAC-SHA256 with Deps.ForwardKey (derived from the cluster
// secret) over "parley-forward-v1", the node, the principal and
// StringToSign, joined by newlines. Nodes without a forward key refuse the
// header; a bad one is 401 like any bad signature.
const ForwardHeader = "Parley-Forwarded"

func forwardString(node, principal, method, pathQuery string, ts int64, nonce string, body []byte) string {
	return "parley-forward-v1\n" + node + "\n" + principal + "\n" + StringToSign(method, pathQuery, ts, nonce, body)
}

// verifyForwarded checks a forwarded request's signature.
func (s *Server) verifyForwarded(r *http.Request, h string, body []byte, now time.Time) (principal, error) {
	if len(s.deps.ForwardKey) == 0 {
		return principal{}, ErrSignature
	}
	p, err := parseSigned(h, "node", "principal")
	if err != nil {
		return principal{}, ErrSignature
	}
	want := mac(s.deps.ForwardKey, forwardString(p.Key, p.Principal, r.Method, r.URL.RequestURI(), p.TS, p.Nonce, body))
	if !hmac.Equal(p.Sig, want) {
		return principal{}, ErrSignature
	}
	if err := s.fresh("node:"+p.Key, &p, now); err != nil {
		return principal{}, err
	}
	return principal{id: p.Principal, forwarded: true}, nil
}

// forward runs one action on the node at baseURL (the room's owner) as a
// one-action batch, and returns its result or error.
func (s *Server) forward(ctx context.Context, baseURL string, p principal, name string, prm params) (any, error) {
	raw, err := json.Marshal(prm)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(ActionRequest{ID: "forwarded", Action: name, Params: raw})
	if err != nil {
		return nil, err
	}
	body = append(body, '\n')
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(baseURL, "/")+"/v1/actions", bytes.NewReader(body))
	if err != nil {
		return nil, core.Errorf(core.CodeUnavailable, "room owner URL %q: %v", baseURL, err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	nonce, ts := core.NewSecret(12), s.now().Unix()
	sig := mac(s.deps.ForwardKey, forwardString(s.deps.NodeID, p.id, req.Method, req.URL.RequestURI(), ts, nonce, body))
	req.Header.Set(ForwardHeader, "node="+s.deps.NodeID+",principal="+p.id+",ts="+strconv.FormatInt(ts, 10)+",nonce="+nonce+",sig="+base64.StdEncoding.EncodeToString(sig))
	resp, err := s.deps.Client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, core.Errorf(core.CodeUnavailable, "the node hosting the room is unreachable: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, int64(s.cfg.MaxRecordBytes)+1))
	if err != nil {
		return nil, core.Errorf(core.CodeUnavailable, "read the answer of the node hosting the room: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		var eb ErrorBody
		if json.Unmarshal(b, &eb) == nil && eb.Error.Code != "" {
			return nil, &core.Error{Code: eb.Error.Code, Message: eb.Error.Message}
		}
		return nil, core.Errorf(core.CodeUnavailable, "the node hosting the room answered %s", resp.Status)
	}
	var res struct {
		OK     bool            `json:"ok"`
		Result json.RawMessage `json:"result"`
		Error  *ErrorDetail    `json:"error"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(b), &res); err != nil {
		return nil, core.Errorf(core.CodeUnavailable, "the node hosting the room answered badly: %v", err)
	}
	if !res.OK {
		if res.Error == nil {
			return nil, core.Errorf(core.CodeInternal, "forwarded action failed")
		}
		return nil, &core.Error{Code: res.Error.Code, Message: res.Error.Message}
	}
	return res.Result, nil
}
