// Endpoints of an App, for PaaS routers: the ready instances with their
// addresses and published ports (GET /v1/namespaces/{ns}/apps/{name}/endpoints,
// and ?watch=1 for a stream of the whole list whenever it changes).
import { Type, type Static } from "@sinclair/typebox";
import { API_VERSION, type Instance } from "./schemas";
import { isReady } from "./instance-rules";

export const EndpointPort = Type.Object({
  name: Type.String(),
  protocol: Type.String(),
  containerPort: Type.Integer(),
  hostPort: Type.Integer(),
  hostIP: Type.Optional(Type.String()),
  /** "hostIP:hostPort", what a router dials. */
  address: Type.Optional(Type.String()),
});
export type EndpointPort = Static<typeof EndpointPort>;

export const Endpoint = Type.Object({
  instance: Type.String(),
  uid: Type.Optional(Type.String()),
  nodeName: Type.Optional(Type.String()),
  ip: Type.Optional(Type.String()),
  ports: Type.Array(EndpointPort),
});
export type Endpoint = Static<typeof Endpoint>;

export const Endpoints = Type.Object(
  {
    apiVersion: Type.Literal(API_VERSION),
    kind: Type.Literal("Endpoints"),
    metadata: Type.Object({
      name: Type.String(),
      namespace: Type.String(),
      resourceVersion: Type.Optional(Type.String()),
    }),
    endpoints: Type.Array(Endpoint),
  },
  { $id: "Endpoints" },
);
export type Endpoints = Static<typeof Endpoints>;

/** The endpoints of App `app` in `namespace`: its ready instances (isReady), by name. */
export function endpointsOf(
  app: string,
  namespace: string,
  instances: Iterable<Instance>,
  resourceVersion?: string,
): Endpoints {
  const endpoints: Endpoint[] = [];
  for (const inst of instances) {
    if (inst.spec.app !== app || inst.spec.task !== undefined || (inst.metadata.namespace ?? "default") !== namespace)
      continue;
    // Running and not reported unready by its readiness check.
    if (!isReady(inst) || !inst.status) continue;
    const st = inst.status;
    endpoints.push({
      instance: inst.metadata.name,
      ...(inst.metadata.uid ? { uid: inst.metadata.uid } : {}),
      ...(st.nodeName ? { nodeName: st.nodeName } : {}),
      ...(st.ip ? { ip: st.ip } : {}),
      ports: (st.ports ?? []).map((p) => ({
        ...p,
        ...(p.hostIP && p.hostPort ? { address: `${p.hostIP}:${p.hostPort}` } : {}),
      })),
    });
  }
  endpoints.sort((a, b) => a.instance.localeCompare(b.instance));
  return {
    apiVersion: API_VERSION,
    kind: "Endpoints",
    metadata: { name: app, namespace, ...(resourceVersion ? { resourceVersion } : {}) },
    endpoints,
  };
}
