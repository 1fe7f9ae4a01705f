import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ConfigError, NO_CONTROL_PLANE_MESSAGE, resolveConfig } from "./config";

describe("resolveConfig", () => {
  let home: string;
  const writeHomeConfig = (content: unknown) => {
    fs.mkdirSync(path.join(home, ".grove"), { recursive: true });
    fs.writeFileSync(path.join(home, ".grove", "config.json"), JSON.stringify(content));
  };
  beforeEach(() => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), "grove-config-"));
  });
  afterEach(() => fs.rmSync(home, { recursive: true, force: true }));

  it("explains how to configure when nothing is set", () => {
    expect(() => resolveConfig({}, {}, home)).toThrow(new ConfigError(NO_CONTROL_PLANE_MESSAGE));
  });

  it("reads ~/.grove/config.json and defaults the namespace", () => {
    writeHomeConfig({ server: "http://10.0.0.1:7443/", token: "file-token" });
    expect(resolveConfig({}, {}, home)).toEqual({
      server: "http://10.0.0.1:7443",
      token: "file-token",
      namespace: "default",
      configPath: path.join(home, ".grove", "config.json"),
    });
  });

  it("lets the environment override the file and flags override both", () => {
    writeHomeConfig({ server: "http://file:1", token: "file-token", namespace: "file-ns" });
    const env = { GROVE_SERVER: "http://env:2", GROVE_TOKEN: "env-token", GROVE_NAMESPACE: "env-ns" };
    expect(resolveConfig({}, env, home)).toMatchObject({
      server: "http://env:2",
      token: "env-token",
      namespace: "env-ns",
    });
    expect(resolveConfig({ server: "http://flag:3", namespace: "flag-ns" }, env, home)).toMatchObject({
      server: "http://flag:3",
      token: "env-token",
      namespace: "flag-ns",
    });
    expect(resolveConfig({ token: "flag-token" }, { GROVE_SERVER: "http://env:2" }, home)).toMatchObject({
      server: "http://env:2",
      token: "flag-token",
      namespace: "file-ns",
    });
  });

  it("reads the file GROVE_CONFIG names, and --config over it", () => {
    const a = path.join(home, "a.json");
    const b = path.join(home, "b.json");
    fs.writeFileSync(a, JSON.stringify({ server: "http://a:1", token: "ta" }));
    fs.writeFileSync(b, JSON.stringify({ server: "http://b:1", token: "tb" }));
    writeHomeConfig({ server: "http://home:1", token: "th" });
    expect(resolveConfig({}, { GROVE_CONFIG: a }, home).server).toBe("http://a:1");
    expect(resolveConfig({ config: b }, { GROVE_CONFIG: a }, home).server).toBe("http://b:1");
  });

  it("fails when an explicitly named config file is missing or malformed", () => {
    expect(() => resolveConfig({ config: path.join(home, "none.json") }, {}, home)).toThrow(/cannot read config file/);
    const bad = path.join(home, "bad.json");
    fs.writeFileSync(bad, "{server:");
    expect(() => resolveConfig({}, { GROVE_CONFIG: bad }, home)).toThrow(/is not valid JSON/);
    fs.writeFileSync(bad, JSON.stringify({ server: 7 }));
    expect(() => resolveConfig({}, { GROVE_CONFIG: bad }, home)).toThrow(/"server" must be a string/);
  });

  it("names what is missing when only one of server and token is set", () => {
    expect(() => resolveConfig({}, { GROVE_SERVER: "http://x:1" }, home)).toThrow(
      /no token configured for http:\/\/x:1/,
    );
    expect(() => resolveConfig({}, { GROVE_TOKEN: "t" }, home)).toThrow(/no control plane server configured/);
  });

  it("rejects servers that are not http(s) URLs", () => {
    expect(() => resolveConfig({ server: "10.0.0.1:7443", token: "t" }, {}, home)).toThrow(
      /invalid control plane server/,
    );
    expect(() => resolveConfig({ server: "ftp://x", token: "t" }, {}, home)).toThrow(/only http:\/\/ and https:\/\//);
  });
});
