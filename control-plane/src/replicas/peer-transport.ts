// How one grove-server replica reaches another: the only place that knows
// the transport between replicas. Today that is the peer's advertised HTTP
// URL (its --advertise-url, recorded in the presence keys of the nodes whose
// streams it holds: https:) with the cluster's admin token as the bearer, the
// token every replica of the cluster shares, over TLS checked against the
// cluster CA (client certificates between replicas would go here too).
import { WebSocket } from "ws";

/** The header a replica marks its requests to a peer with (logs, loop checks). */
export const PEER_HEADER = "x-grove-peer";

export interface PeerTransportOptions {
  /** The bearer token peers accept (the cluster's admin token). */
  token: string;
  /** This replica's advertised URL, sent in PEER_HEADER. */
  self: string;
  /** The cluster CA (PEM) peers' serving certificates are checked against; the system's CAs without it. */
  caPem?: string;
  /** How long opening a connection to a peer may take. */
  connectTimeoutMs?: number;
}

export class PeerTransport {
  constructor(private readonly options: PeerTransportOptions) {}

  /** This replica's advertised URL, once the listener is bound. */
  setSelf(self: string): void {
    this.options.self = self;
  }

  /** The URL of a path on a peer, for people and logs. */
  urlOf(peer: string, path: string): URL {
    return new URL(path, peer.endsWith("/") ? peer : `${peer}/`);
  }

  /** Opens a WebSocket to `path` on the peer whose advertised URL is `peer`. */
  openWebSocket(peer: string, path: string): WebSocket {
    const url = this.urlOf(peer, path.replace(/^\//, ""));
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new Error(`peer URL ${peer} is neither http: nor https:`);
    }
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    return new WebSocket(url, {
      headers: { authorization: `Bearer ${this.options.token}`, [PEER_HEADER]: this.options.self },
      handshakeTimeout: this.options.connectTimeoutMs ?? 5_000,
      maxPayload: 4 * 1024 * 1024,
      ...(this.options.caPem ? { ca: this.options.caPem } : {}),
    });
  }
}
