// Property tests for continue tokens: every position round-trips for its own
// list, a token is refused for any other list, and no string at all makes
// decodeContinue fail with anything but a BadRequest naming /continue.
import fc from "fast-check";
import { GroveError } from "@grove/api";
import { decodeContinue, encodeContinue } from "./continue-token";

const prefix = fc.string({ minLength: 1, maxLength: 40 }).map((s) => `/grove/${s}/`);
const revision = fc.bigInt({ min: 1n, max: 2n ** 63n - 1n }).map(String);

describe("continue tokens (properties)", () => {
  it("decode(encode(position)) is the position, for its own list only", () => {
    fc.assert(
      fc.property(prefix, prefix, fc.string({ minLength: 1, maxLength: 80 }), revision, (p, other, rest, rv) => {
        const token = encodeContinue(p, { revision: rv, startKey: p + rest });
        expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
        expect(decodeContinue(p, token)).toEqual({ revision: rv, startKey: p + rest });
        if (other !== p) expect(() => decodeContinue(other, token)).toThrow(/issued for a different list/);
      }),
    );
  });

  it("any other string is a BadRequest naming /continue, never another error", () => {
    const tokens = fc.oneof(
      fc.string(),
      fc.base64String().map((s) => s.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")),
      fc.json().map((j) => Buffer.from(j, "utf8").toString("base64url")),
      fc
        .record({ v: fc.anything(), rv: fc.anything(), start: fc.anything(), c: fc.anything() }, { requiredKeys: [] })
        .map((o) => Buffer.from(JSON.stringify(o) ?? "null", "utf8").toString("base64url")),
    );
    fc.assert(
      fc.property(prefix, tokens, (p, t) => {
        try {
          const pos = decodeContinue(p, t);
          // Accepted: then it really is a position in this list.
          expect(pos.startKey.startsWith(p)).toBe(true);
          expect(pos.revision).toMatch(/^[1-9][0-9]*$/);
        } catch (err) {
          expect(err).toBeInstanceOf(GroveError);
          expect((err as GroveError).code).toBe("BadRequest");
          expect(JSON.stringify((err as GroveError).details)).toContain("/continue");
        }
      }),
      { numRuns: 2000 },
    );
  });
});
