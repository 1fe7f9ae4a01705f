// Compiled by test/src/ui-frontend.test.ts next to schema.d.ts, which
// openapi-typescript generates from a running grove-server's /openapi.json.
// Every request and answer below is typed by that file alone; the
// ts-expect-error directives prove the types are strict (too loose a schema makes
// them unused, which tsc reports). Then it lists, creates and watches Apps
// against the server and prints what it saw as one JSON line.
import type { components, paths } from "./schema";

type App = components["schemas"]["App"];
type ListApps = paths["/v1/namespaces/{namespace}/apps"]["get"];
type CreateApp = paths["/v1/namespaces/{namespace}/apps"]["post"];
type GetVersion = paths["/version"]["get"];

type JsonOf<R> = R extends { content: { "application/json": infer T } } ? T : never;
type Ok<Op> = Op extends { responses: { 200: infer R } }
  ? JsonOf<R>
  : Op extends { responses: { 201: infer R } }
    ? JsonOf<R>
    : never;
type Body<Op> = Op extends { requestBody: { content: { "application/json": infer B } } } ? B : never;
type Query<Op> = Op extends { parameters: { query?: infer Q } } ? NonNullable<Q> : never;

const server = process.env.GROVE_SERVER!;
const headers = { authorization: `Bearer ${process.env.GROVE_TOKEN!}`, "content-type": "application/json" };

async function send<Op>(method: string, path: string, body?: Body<Op>, query?: Query<Op>): Promise<Ok<Op>> {
  const q = query ? `?${new URLSearchParams(query as Record<string, string>).toString()}` : "";
  const res = await fetch(server + path + q, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as Ok<Op>;
}

function app(name: string): Body<CreateApp> {
  return {
    apiVersion: "grove/v1",
    kind: "App",
    metadata: { name, labels: { client: "openapi" } },
    spec: { rootfs: "busybox", command: ["sleep", "1000"], instances: 0 },
  };
}

// @ts-expect-error spec.instances is an integer, not a string
const notAnApp: Body<CreateApp> = { ...app("x"), spec: { rootfs: "busybox", instances: "two" } };
void notAnApp;
// @ts-expect-error watch takes "1", "true", "0" or "false"
const badQuery: Query<ListApps> = { watch: "yes" };
void badQuery;

async function main(): Promise<void> {
  const version = await send<GetVersion>("GET", "/version");
  const apiVersion: "grove/v1" = version.apiVersion;
  // @ts-expect-error a list answers items, not apps
  void ((l: Ok<ListApps>) => l.apps);

  // Watch first, with a label selector, so the create below arrives as ADDED.
  const watchQuery: Query<ListApps> = { watch: "1", labelSelector: "client=openapi" };
  const abort = new AbortController();
  const watch = await fetch(
    `${server}/v1/namespaces/default/apps?${new URLSearchParams(watchQuery as Record<string, string>).toString()}`,
    { headers, signal: abort.signal },
  );
  const created: App = await send<CreateApp>("POST", "/v1/namespaces/default/apps", app("openapi-made"));
  const list = await send<ListApps>("GET", "/v1/namespaces/default/apps", undefined, {
    labelSelector: "client=openapi",
  });
  const names: string[] = list.items.map((a: App) => a.metadata.name);

  const reader = watch.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  let seen: { type: string; object: App } | undefined;
  while (!seen) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    for (const line of buf.split("\n").slice(0, -1)) {
      const ev = JSON.parse(line) as { type: string; object: App };
      if (ev.object.metadata.name === "openapi-made") seen ??= ev; // the first one: ADDED
    }
    buf = buf.slice(buf.lastIndexOf("\n") + 1);
  }
  abort.abort();
  console.log(
    JSON.stringify({
      apiVersion,
      createdUid: created.metadata.uid,
      listed: names,
      watched: seen ? `${seen.type} ${seen.object.metadata.name}` : undefined,
    }),
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
