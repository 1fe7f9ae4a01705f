import { GroveError } from "@grove/api";
import { decodeContinue, encodeContinue } from "./continue-token";

const prefix = "/grove/instances/";

function errorOf(fn: () => unknown): GroveError {
  try {
    fn();
  } catch (err) {
    if (err instanceof GroveError) return err;
    throw err;
  }
  throw new Error("did not throw");
}

describe("continue tokens", () => {
  test("round-trip the revision and the start key, and are URL-safe", () => {
    const token = encodeContinue(prefix, { revision: "12345", startKey: `${prefix}default/web-7\u0000` });
    expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeContinue(prefix, token)).toEqual({ revision: "12345", startKey: `${prefix}default/web-7\u0000` });
  });

  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
  test.each([
    ["not base64url", "a+b/c=", /not base64url/],
    ["not JSON", Buffer.from("{nope").toString("base64url"), /does not decode/],
    ["not an object", b64(7), /does not decode/],
    ["an unknown version", b64({ v: 2, rv: "5", start: "a", c: prefix }), /unknown version/],
    ["a bad revision", b64({ v: 1, rv: "0x5", start: "a", c: prefix }), /revision/],
    ["no start key", b64({ v: 1, rv: "5", start: "", c: prefix }), /start key/],
    ["another list's token", b64({ v: 1, rv: "5", start: "a", c: "/grove/apps/" }), /different list/],
  ])("%s -> BadRequest (400) naming continue", (_name, token, why) => {
    const err = errorOf(() => decodeContinue(prefix, token));
    expect(err.code).toBe("BadRequest");
    expect(err.status).toBe(400);
    expect(err.message).toMatch(/^invalid continue token: /);
    expect(err.message).toMatch(why);
    expect(err.details).toEqual([{ path: "/continue", message: expect.stringMatching(why) as string }]);
  });
});
