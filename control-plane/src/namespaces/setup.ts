// Wires Namespace objects into the HTTP server: their routes, and the
// admission every App and Task write goes through (one call in http/server.ts).
import type { FastifyInstance } from "fastify";
import type { Repository } from "../resources/repository";
import type { Store } from "../store/store";
import { NamespaceAdmission, type Admission } from "./admission";
import { NamespaceService } from "./namespace-service";
import { registerNamespaceRoutes } from "./routes";
import type { WorkloadCaches } from "./workload-source";

export function installNamespaces(
  app: FastifyInstance,
  store: Store,
  repo: Repository,
  caches?: WorkloadCaches,
): Admission {
  const namespaces = new NamespaceService(store, repo);
  registerNamespaceRoutes(app, namespaces, repo);
  return new NamespaceAdmission(repo, namespaces, caches);
}
