// Command jwtauth is Parley's stock auth plugin: it verifies client JWTs
// signed with HS256 (shared secrets) or EdDSA (Ed25519 public keys),
// checks issuer, audience, expiry and not-before with clock skew, and
// turns the token's claims into the participant's identity, room, grants,
// metadata and role. It accepts the development tokens `parley token`
// mints when configured with the same secret.
//
// Capabilities: config, clock (log optional). Configuration (JSON):
//
//	{
//	  "hs256_secret": "the server's token secret",
//	  "hs256_secrets": ["older secret, still accepted"],
//	  "ed25519_public_keys": ["base64 of the 32-byte key, or a PEM PUBLIC KEY"],
//	  "issuer": "parley",             // "" -> "parley"; "*" accepts any
//	  "audience": "parley",           // "" -> "parley"; "*" accepts any
//	  "clock_skew": "30s",
//	  "require_expiry": true,
//	  "default_grants": {"can_subscribe": true},  // for tokens without grants
//	  "role_claim": "role",           // claim copied into the role
//	  "skip_foreign": false,          // skip (not deny) non-JWTs and other issuers
//	  "max_token_bytes": 8192
//	}
//
// Token claims: iss, aud (string or array), sub (identity), name, room,
// grants {can_publish, can_subscribe, can_publish_data}, metadata (string),
// role, exp, nbf, iat (Unix seconds).
package main

import (
	"github.com/parleyhq/parley/abi"
	"github.com/parleyhq/parley/sdk/plugin"
)

var verifier *Verifier

func init() {
	plugin.OnInit(func(abi.InitRequest) error {
		var cfg Config
		if err := plugin.DecodeConfig(&cfg); err != nil {
			return err
		}
		v, err := NewVerifier(cfg, plugin.Now)
		if err != nil {
			return err
		}
		verifier = v
		return nil
	})
	plugin.OnAuth(func(req abi.AuthRequest) abi.AuthResult {
		if req.Claims != nil {
			return abi.AuthResult{Skip: true} // an earlier plugin already accepted the token
		}
		return verifier.Verify(req.Token)
	})
}

func main() {}
