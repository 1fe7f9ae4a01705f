// /v1/namespaces/{ns}/apps and /v1/apps: users create, apply and delete Apps.
import type { FastifyInstance } from "fastify";
import {
  appNetworkProblems,
  appCheckProblems,
  appSourceProblems,
  updateProblems,
  GroveError,
  parseBytes,
  parseCpuMillis,
  validateDocument,
  type FieldError,
  type HostPortPolicy,
} from "@grove/api";
import { registerResourceRoutes, type RouteContext } from "./resource-routes";

export function registerAppRoutes(app: FastifyInstance, ctx: RouteContext): void {
  registerResourceRoutes(app, ctx, {
    kind: "App",
    create: true,
    apply: true,
    check: (body) => checkAppQuantities(body, ctx.hostPorts),
  });
}

/**
 * The schema's patterns admit the shape of a quantity; this checks its value
 * with the same parsers the control plane uses, so what is accepted can be
 * scheduled. Values of the wrong type are left to the schema. Fixed host
 * ports are checked against the server's policy when it has one.
 */
export function checkAppQuantities(body: Record<string, unknown>, hostPorts?: HostPortPolicy): void {
  const spec = body.spec as { resources?: Record<string, unknown> } | undefined;
  const source = [
    ...appSourceProblems(spec),
    ...appNetworkProblems(spec, hostPorts),
    ...appCheckProblems(spec),
    ...updateProblems(spec),
  ].map((p) => ({
    path: p.pointer,
    message: p.message,
  }));
  if (source.length > 0) {
    // This runs before the schema validation: report the schema's problems too.
    const all = [...source];
    for (const p of validateDocument(body, ["App"])) {
      if (!all.some((d) => d.path === p.pointer && d.message === p.message))
        all.push({ path: p.pointer, message: p.message });
    }
    throw new GroveError("ValidationFailed", all.map((d) => `${d.path}: ${d.message}`).join("; "), all);
  }
  const res = spec?.resources;
  if (typeof res !== "object" || res === null) return;
  const details: FieldError[] = [];
  const check = (field: "cpu" | "memory", parse: (q: string | number) => number) => {
    const q = res[field];
    if (typeof q !== "string" && typeof q !== "number") return;
    try {
      if (parse(q) <= 0)
        details.push({ path: `/spec/resources/${field}`, message: `must be more than zero, got ${JSON.stringify(q)}` });
    } catch (err) {
      details.push({ path: `/spec/resources/${field}`, message: (err as Error).message });
    }
  };
  check("cpu", parseCpuMillis);
  check("memory", parseBytes);
  if (details.length > 0) {
    throw new GroveError("ValidationFailed", details.map((d) => `${d.path}: ${d.message}`).join("; "), details);
  }
}
