// The agent's part of a trace (docs/observability.md): a new instance's start
// runs in a span under the desired set that brought it (grpc/client.ts made
// that set's span active when the reconciler remembered the uid); its prepare
// steps are child spans (reconcile/prepare-steps.ts).
import { traceLinks, withSpan } from "@grove/common";
import type { InstanceSpec__Output } from "@grove/proto";

export function startInTrace(spec: InstanceSpec__Output, start: () => Promise<void>): Promise<void> {
  const parent = traceLinks.take(spec.uid);
  if (!parent) return start();
  return withSpan("agent start instance", start, {
    parent,
    attributes: { "grove.instance": `${spec.namespace}/${spec.name}`, "grove.uid": spec.uid, "grove.app": spec.app },
  });
}
