// Parley signaling transports for browsers: WebSocket (one JSON message per
// text frame) and WebTransport (one bidirectional control stream per
// session, one JSON message per \n-terminated line). Both expose the same
// small interface:
//
//   await t.open()          resolves once messages can be sent
//   t.send(text)            queues one message
//   t.onmessage = (text) => ...
//   t.onclose = ({code, reason, clean}) => ...   called once
//   t.close(reason)
//
// See docs/protocol.md for the framing.

/** @returns {boolean} whether this browser has WebTransport. */
export function webTransportSupported() {
  return typeof globalThis.WebTransport === "function";
}

/** Signaling over a WebSocket. */
export class WebSocketTransport {
  /** @param {string} url ws:// or wss:// URL of /v1/signal */
  constructor(url) {
    this.kind = "websocket";
    this.url = url;
    this.onmessage = null;
    this.onclose = null;
    this._ws = null;
    this._closed = false;
  }

  open() {
    return new Promise((resolve, reject) => {
      let ws;
      try {
        ws = new WebSocket(this.url);
      } catch (err) {
        reject(err);
        return;
      }
      this._ws = ws;
      let opened = false;
      ws.onopen = () => {
        opened = true;
        resolve();
      };
      ws.onmessage = (ev) => {
        if (typeof ev.data === "string" && this.onmessage) this.onmessage(ev.data);
      };
      ws.onerror = () => {
        if (!opened) reject(new Error(`websocket ${this.url}: connection failed`));
      };
      ws.onclose = (ev) => {
        if (!opened) reject(new Error(`websocket ${this.url}: closed before opening (${ev.code})`));
        this._finish({ code: ev.code, reason: ev.reason, clean: ev.wasClean });
      };
    });
  }

  send(text) {
    if (!this._ws || this._ws.readyState !== WebSocket.OPEN) throw new Error("websocket is not open");
    this._ws.send(text);
  }

  close(reason = "") {
    if (this._ws && this._ws.readyState <= WebSocket.OPEN) this._ws.close(1000, reason.slice(0, 120));
    this._finish({ code: 1000, reason, clean: true });
  }

  _finish(info) {
    if (this._closed) return;
    this._closed = true;
    if (this.onclose) this.onclose(info);
  }
}

/** Decodes standard base64 to bytes. */
function base64Bytes(b64) {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Signaling over WebTransport (HTTP/3). */
export class WebTransportTransport {
  /**
   * @param {string} url https:// URL of /v1/signal on the WebTransport port
   * @param {Array<{base64: string}>} [certHashes] pinned certificate hashes
   *   (from GET /v1/cert-hash) for a self-signed development certificate
   */
  constructor(url, certHashes = []) {
    this.kind = "webtransport";
    this.url = url;
    this.certHashes = certHashes;
    this.onmessage = null;
    this.onclose = null;
    this._wt = null;
    this._writer = null;
    this._closed = false;
    this._encoder = new TextEncoder();
  }

  async open() {
    if (!webTransportSupported()) throw new Error("webtransport is not supported by this browser");
    const opts = {};
    if (this.certHashes.length) {
      opts.serverCertificateHashes = this.certHashes.map((h) => ({ algorithm: "sha-256", value: base64Bytes(h.base64) }));
    }
    const wt = new WebTransport(this.url, opts);
    this._wt = wt;
    wt.closed.then(
      (info) => this._finish({ code: info?.closeCode ?? 0, reason: info?.reason ?? "", clean: true }),
      (err) => this._finish({ code: -1, reason: String(err?.message || err), clean: false }),
    );
    try {
      await wt.ready;
      const stream = await wt.createBidirectionalStream();
      this._writer = stream.writable.getWriter();
      this._readLoop(stream.readable);
    } catch (err) {
      try { wt.close(); } catch { /* already failed */ }
      throw new Error(`webtransport ${this.url}: ${err?.message || err}`);
    }
  }

  async _readLoop(readable) {
    const reader = readable.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl).replace(/\r$/, "");
          buf = buf.slice(nl + 1);
          if (line && this.onmessage) this.onmessage(line);
        }
      }
    } catch {
      // the session closed; wt.closed reports why
    }
    // The server ended the control stream: the session is over.
    this.close("control stream ended");
  }

  send(text) {
    if (!this._writer || this._closed) throw new Error("webtransport is not open");
    this._writer.write(this._encoder.encode(text + "\n")).catch(() => {});
  }

  close(reason = "") {
    if (this._wt && !this._closed) {
      try {
        this._wt.close({ closeCode: 0, reason: reason.slice(0, 120) });
      } catch { /* already closed */ }
    }
    this._finish({ code: 0, reason, clean: true });
  }

  _finish(info) {
    if (this._closed) return;
    this._closed = true;
    if (this.onclose) this.onclose(info);
  }
}
