import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { resolveConfig } from "./config";
import { parseConfigDocument } from "./config-contexts";

describe("config contexts", () => {
  let dir: string;
  let file: string;
  const writeConfig = (content: unknown) => fs.writeFileSync(file, JSON.stringify(content));
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "grove-cli-contexts-"));
    file = path.join(dir, "config.json");
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("reads a single-server file as one context named default", () => {
    expect(parseConfigDocument({ server: "http://a:1", token: "t", ca: "ca.crt" }, file)).toEqual({
      currentContext: "default",
      contexts: { default: { server: "http://a:1", token: "t", ca: "ca.crt" } },
      migrated: true,
    });
  });

  it("uses the current context, --context over GROVE_CONTEXT over it, and flags over the context", () => {
    fs.writeFileSync(path.join(dir, "prod.token"), "prod-token\n");
    writeConfig({
      "current-context": "dev",
      contexts: {
        dev: { server: "http://dev:1", token: "dev-token", namespace: "team-dev" },
        prod: { server: "http://prod:1", tokenFile: "prod.token" },
      },
    });
    const env = { GROVE_CONFIG: file };
    expect(resolveConfig({}, env, dir)).toMatchObject({
      server: "http://dev:1",
      token: "dev-token",
      namespace: "team-dev",
      context: "dev",
    });
    // The token file is relative to the config file and read at each use.
    expect(resolveConfig({}, { ...env, GROVE_CONTEXT: "prod" }, dir)).toMatchObject({
      server: "http://prod:1",
      token: "prod-token",
      namespace: "default",
      context: "prod",
    });
    expect(resolveConfig({ context: "dev" }, { ...env, GROVE_CONTEXT: "prod" }, dir).server).toBe("http://dev:1");
    expect(resolveConfig({ context: "prod", token: "flag" }, env, dir).token).toBe("flag");
  });

  it("names the known contexts for an unknown one, and refuses a file with both shapes", () => {
    writeConfig({ "current-context": "dev", contexts: { dev: { server: "http://dev:1", token: "t" } } });
    expect(() => resolveConfig({ context: "qa" }, { GROVE_CONFIG: file }, dir)).toThrow(
      `no context "qa" in ${file} (known: dev)`,
    );
    writeConfig({ server: "http://x:1", contexts: {} });
    expect(() => resolveConfig({}, { GROVE_CONFIG: file }, dir)).toThrow(/has both "contexts" and top-level "server"/);
    writeConfig({ "current-context": "gone", contexts: {} });
    expect(() => resolveConfig({}, { GROVE_CONFIG: file }, dir)).toThrow(/names "gone", which is not in "contexts"/);
    writeConfig({ contexts: { a: { server: "http://a:1", tokn: "t" } } });
    expect(() => resolveConfig({}, { GROVE_CONFIG: file }, dir)).toThrow(/contexts\.a: unknown field "tokn"/);
  });

  it("says which token file it cannot read", () => {
    writeConfig({ "current-context": "p", contexts: { p: { server: "http://p:1", tokenFile: "missing.token" } } });
    expect(() => resolveConfig({}, { GROVE_CONFIG: file }, dir)).toThrow(
      `cannot read the token file ${path.join(dir, "missing.token")}`,
    );
  });
});
