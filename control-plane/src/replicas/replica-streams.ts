// logs / exec / stats of any connected node through this replica: the
// node's agent stream when this replica holds it, else the replica that does
// (named by the node's presence key) over the peer transport
// (peer-streams.ts). What the HTTP routes use as their AgentStreams.
import type { Logger } from "pino";
import { GroveError } from "@grove/api";
import type { ContainerStats__Output } from "@grove/proto";
import { statsOver, type SubStream, type SubStreamHandlers, type SubStreamRequest } from "../grpc/sub-streams";
import type { AgentStreams } from "../http/logs-exec-stats-routes";
import { openPeerStream, type LocalStreams } from "./peer-streams";
import type { PeerTransport } from "./peer-transport";

/** What this needs of the agent gateway. */
export interface StreamHolder extends LocalStreams {
  holds(node: string): boolean;
  holderOf(node: string): Promise<string | undefined>;
}

export class ReplicaStreams implements AgentStreams {
  constructor(
    private readonly local: StreamHolder,
    private readonly transport: PeerTransport,
    private readonly logger: Logger,
  ) {}

  async openStream(node: string, req: SubStreamRequest, handlers: SubStreamHandlers): Promise<SubStream> {
    if (this.local.holds(node)) return this.local.openStream(node, req, handlers);
    let holder: string | undefined;
    try {
      holder = await this.local.holderOf(node);
    } catch (err) {
      throw new GroveError(
        "NodeUnavailable",
        `the agent of node ${node} is not connected to this replica, and which one holds it cannot be read: ` +
          (err instanceof Error ? err.message : String(err)),
      );
    }
    // The stream may have come here meanwhile; else the local answer (not connected) stands.
    if (!holder) return this.local.openStream(node, req, handlers);
    this.logger.debug({ node, holder, kind: req.kind }, "sub-stream through the replica holding the node's stream");
    return openPeerStream(this.transport, holder, node, req, handlers);
  }

  stats(node: string, uid: string): Promise<ContainerStats__Output[]> {
    return statsOver((n, r, h) => this.openStream(n, r, h), node, uid);
  }
}
