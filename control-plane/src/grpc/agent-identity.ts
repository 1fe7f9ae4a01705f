// Node identity on the agents' gRPC endpoint (Kubernetes' NodeRestriction):
// with TLS, every agent presents a node certificate the cluster CA signed at
// join; its Common Name is the only node the stream may act for.

import { timingSafeEqual } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { AGENT_TOKEN_METADATA } from "@grove/proto";
import { NODE_ORGANIZATION } from "../pki/ca";
import type { NodeRegistrationInfo } from "../nodes/registration";

export interface AgentTls {
  /** The cluster CA (PEM): the only issuer of client certificates accepted. */
  caPem: string;
  /** grove-server's serving certificate and key (PEM). */
  certPem: string;
  keyPem: string;
  /**
   * Whether a node certificate is still valid for its node: false once the
   * node was deleted (its certificate revoked) or a newer one was issued.
   */
  certificateCurrent?(node: string, serial: string): Promise<boolean>;
  /** Signs a renewal for the node whose certificate `serial` the stream presented (pki/join.ts renew). */
  renew?(node: string, serial: string, csrPem: string): Promise<string>;
}

/** A refusal with its gRPC status (PERMISSION_DENIED or INVALID_ARGUMENT). */
export class AgentRefused extends Error {
  constructor(
    readonly grpcCode: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

/** The gRPC status of a refusal; undefined for other errors. */
export function refusalCode(err: unknown): grpc.status | undefined {
  return err instanceof AgentRefused ? err.grpcCode : undefined;
}

export const alreadyRegistered = () =>
  new AgentRefused(grpc.status.FAILED_PRECONDITION, "this stream is already registered");

export interface AgentIdentity {
  node: string;
  /** Lower-case hex serial of the node certificate (the newest one issued over the stream after a renewal). */
  serial: string;
  /** When that certificate expires (wall clock, ms since the epoch): the stream ends then unless renewed. */
  notAfterMs?: number;
}

function field(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** The node a stream's client certificate names, or undefined when it is no node certificate. */
export function peerIdentity(
  call: Pick<grpc.ServerDuplexStream<unknown, unknown>, "getAuthContext">,
): AgentIdentity | undefined {
  const cert = call.getAuthContext().sslPeerCertificate;
  if (!cert?.subject) return undefined;
  const name = field(cert.subject.CN);
  if (!name || field(cert.subject.O) !== NODE_ORGANIZATION) return undefined;
  return { node: name, serial: cert.serialNumber.toLowerCase(), notAfterMs: Date.parse(cert.valid_to) };
}

/**
 * Label prefixes only Grove and operators set: a node may not claim them (a
 * workload's nodeSelector on them would otherwise follow whichever node says so).
 */
export const RESERVED_LABEL_PREFIXES = ["grove.io/", "node-role.grove.io/", "node.grove.io/"];

/** Upper bounds no real node reaches; a report beyond them is a lie or a bug. */
const LIMITS = { cpuMillis: 100_000_000, memoryBytes: 2 ** 50, pids: 2 ** 32 } as const;

function tokenMatches(given: string, want: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(want);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Who a new stream is. With TLS: the node its client certificate names (the
 * handshake already checked the CA). Without (unit tests): anyone holding the token.
 */
export function authenticateStream(
  call: Pick<grpc.ServerDuplexStream<unknown, unknown>, "metadata" | "getAuthContext">,
  tls: AgentTls | undefined,
  token: string,
): { identity?: AgentIdentity } | { refused: string } {
  if (tls) {
    const identity = peerIdentity(call);
    return identity ? { identity } : { refused: "the client certificate is no node certificate" };
  }
  const given = call.metadata.get(AGENT_TOKEN_METADATA)[0];
  return typeof given === "string" && tokenMatches(given, token) ? {} : { refused: "invalid or missing agent token" };
}

/**
 * Refuses a registration that names another node, uses a revoked
 * certificate, claims reserved labels or impossible capacity.
 */
export async function checkRegistration(
  identity: AgentIdentity | undefined,
  info: NodeRegistrationInfo,
  tls: AgentTls | undefined,
): Promise<void> {
  if (identity && info.name !== identity.node) {
    throw new AgentRefused(
      grpc.status.PERMISSION_DENIED,
      `this agent's certificate is for node ${identity.node}; it may not register as ${info.name}`,
    );
  }
  if (identity && tls?.certificateCurrent && !(await tls.certificateCurrent(identity.node, identity.serial))) {
    throw new AgentRefused(
      grpc.status.UNAUTHENTICATED,
      `the certificate of node ${identity.node} was revoked (the node was deleted or joined again): join again`,
    );
  }
  for (const key of Object.keys(info.labels)) {
    const prefix = RESERVED_LABEL_PREFIXES.find((p) => key.startsWith(p));
    if (prefix)
      throw new AgentRefused(grpc.status.PERMISSION_DENIED, `node.labels.${key}: labels under ${prefix} are reserved`);
  }
  for (const kind of ["capacity", "allocatable"] as const) {
    for (const [k, max] of Object.entries(LIMITS) as [keyof typeof LIMITS, number][]) {
      const v = info[kind][k];
      if (!Number.isSafeInteger(v) || v < 0 || v > max) {
        throw new AgentRefused(
          grpc.status.INVALID_ARGUMENT,
          `node.${kind}.${k}: ${v} is not a count between 0 and ${max}`,
        );
      }
    }
  }
  for (const k of Object.keys(LIMITS) as (keyof typeof LIMITS)[]) {
    if (info.allocatable[k] > info.capacity[k]) {
      throw new AgentRefused(
        grpc.status.INVALID_ARGUMENT,
        `node.allocatable.${k}: ${info.allocatable[k]} exceeds capacity ${info.capacity[k]}`,
      );
    }
  }
}
