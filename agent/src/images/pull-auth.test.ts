import { pullIdentity, pulledBy } from "./pull-auth";

describe("pullIdentity", () => {
  const creds = { username: "tenant", password: "s3cret-pass" };
  it("is anonymous without credentials, and then anyone may start the image", () => {
    expect(pullIdentity("r.example:5000", undefined, undefined)).toBe("anonymous");
    expect(pulledBy("anonymous")).toEqual({ anyone: true, identities: [] });
  });
  it("is a hash naming neither the secret's value nor the user, and differs per registry and pull secret", () => {
    const a = pullIdentity("r.example:5000", "team-a", creds);
    expect(a).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(a).not.toContain("s3cret");
    expect(pullIdentity("r.example:5000", "team-b", creds)).not.toBe(a);
    expect(pullIdentity("other.example", "team-a", creds)).not.toBe(a);
    expect(pullIdentity("r.example:5000", undefined, creds)).not.toBe(a);
    expect(pullIdentity("r.example:5000", "team-a", { ...creds })).toBe(a);
    expect(pulledBy(a)).toEqual({ identities: [a] });
  });
});
