import { parseImageConfig } from "./config";
import { parseChallenge } from "./registry";

describe("parseImageConfig", () => {
  it("reads registries and pull secrets", () => {
    expect(
      parseImageConfig({
        registries: {
          "r.example": { mirrors: ["m:5000"], insecure: false, local: true, auth: { username: "u", password: "p" } },
        },
        pullSecrets: { team: { "r.example": { username: "t", password: "q" } } },
      }),
    ).toEqual({
      registries: {
        "r.example": { mirrors: ["m:5000"], insecure: false, local: true, auth: { username: "u", password: "p" } },
      },
      pullSecrets: { team: { "r.example": { username: "t", password: "q" } } },
    });
  });

  it.each([
    [[], /\(top level\): must be an object/],
    [{ registry: {} }, /registry: unknown field/],
    [{ registries: { h: { insecure: "yes" } } }, /registries\.h\.insecure: must be true or false/],
    [{ registries: { h: { mirrors: [""] } } }, /registries\.h\.mirrors: must be a list/],
    [{ registries: { h: { local: 1 } } }, /registries\.h\.local: must be true or false/],
    [
      { registries: { h: { auth: { username: "", password: "x" } } } },
      /registries\.h\.auth\.username: must be a non-empty string/,
    ],
    [{ pullSecrets: { s: { h: { username: "u" } } } }, /pullSecrets\.s\.h\.password: must be a string/],
  ])("names the field of %j", (raw, why) => {
    expect(() => parseImageConfig(raw, "cfg.json")).toThrow(why);
  });
});

describe("parseChallenge", () => {
  it("reads a Bearer challenge", () => {
    expect(
      parseChallenge(
        'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"',
      ),
    ).toEqual({
      scheme: "bearer",
      params: { realm: "https://auth.example/token", service: "registry.example", scope: "repository:a/b:pull" },
    });
  });
  it("reads Basic and ignores other schemes", () => {
    expect(parseChallenge('Basic realm="grove"')).toEqual({ scheme: "basic", params: { realm: "grove" } });
    expect(parseChallenge("Negotiate")).toBeUndefined();
  });
});
