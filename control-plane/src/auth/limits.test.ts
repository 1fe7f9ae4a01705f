import { GroveError } from "@grove/api";
import { IdentityLimits, parseIdentityLimits } from "./limits";

const alice = { name: "alice", role: "edit" as const, namespace: "team-a" };

test("sessions beyond the limit are 429 until one is released; other identities and the bootstrap admin are apart", () => {
  const l = new IdentityLimits({ watches: 2, follows: 1, execs: 1, rate: 1000 });
  const r1 = l.acquire(alice, "watches");
  l.acquire(alice, "watches");
  expect(() => l.acquire(alice, "watches")).toThrow(GroveError);
  expect(() => l.acquire(alice, "watches")).toThrow(/at most 2/);
  l.acquire({ ...alice, namespace: "team-b" }, "watches");
  for (let i = 0; i < 5; i++) l.acquire({ name: "admin", role: "cluster-admin" }, "watches");
  r1();
  r1(); // a second release changes nothing
  l.acquire(alice, "watches");
  expect(() => l.acquire(alice, "watches")).toThrow(/TooMany|at most/);
});

test("the request rate allows a burst of twice the rate, then 429", () => {
  const l = new IdentityLimits({ watches: 1, follows: 1, execs: 1, rate: 5 });
  for (let i = 0; i < 10; i++) l.take(alice);
  let err: unknown;
  try {
    l.take(alice);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(GroveError);
  expect((err as GroveError).status).toBe(429);
});

test("--identity-limits takes a subset over the defaults and names a bad part", () => {
  expect(parseIdentityLimits("watches=3")).toMatchObject({ watches: 3, follows: 16, execs: 8, rate: 100 });
  expect(() => parseIdentityLimits("watches=0")).toThrow(/"watches=0"/);
  expect(() => parseIdentityLimits("sockets=3")).toThrow(/"sockets=3"/);
});
