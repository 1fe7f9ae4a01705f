// The rolling update's decisions (planRollout): pure, so checked over every
// shape fast-check finds, with a model of instances that become available
// in their own time.
import fc from "fast-check";
import { updateProblems } from "@grove/api";
import { planRollout, rolledOut, type RolloutSlot } from "./rollout";

const oldSlots = (n: number): RolloutSlot[] =>
  Array.from({ length: n }, (_, index) => ({ index, old: { available: true } }));

describe("planRollout", () => {
  it("surges one at a time with the defaults (maxSurge 1, maxUnavailable 0) and stops nothing yet", () => {
    expect(planRollout(oldSlots(3), 3, { maxSurge: 1, maxUnavailable: 0 })).toEqual([{ kind: "surge", index: 0 }]);
  });

  it("stops an old instance only once its new one is available", () => {
    const slots: RolloutSlot[] = [
      { index: 0, old: { available: true }, new: { available: false } },
      { index: 1, old: { available: true } },
    ];
    expect(planRollout(slots, 2, { maxSurge: 1, maxUnavailable: 0 })).toEqual([]);
    slots[0]!.new!.available = true;
    expect(planRollout(slots, 2, { maxSurge: 1, maxUnavailable: 0 })).toEqual([
      { kind: "retire", index: 0 },
      { kind: "surge", index: 1 },
    ]);
  });

  it("replaces in place within maxUnavailable when it may not surge", () => {
    expect(planRollout(oldSlots(3), 3, { maxSurge: 0, maxUnavailable: 1 })).toEqual([{ kind: "replace", index: 0 }]);
  });

  it("replaces an old instance that is not available at once (stopping it costs nothing)", () => {
    const slots: RolloutSlot[] = [
      { index: 0, old: { available: false } },
      ...oldSlots(2).map((s) => ({ ...s, index: s.index + 1 })),
    ];
    expect(planRollout(slots, 3, { maxSurge: 1, maxUnavailable: 0 })).toEqual([
      { kind: "replace", index: 0 },
      { kind: "surge", index: 1 },
    ]);
  });

  it("property: available never below instances - maxUnavailable, never more than instances + maxSurge, converges to all new", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: 0, max: 3 }),
        // Per step, which pending new instances become available (bits), in their own time.
        fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 60 }),
        (replicas, maxSurge, maxUnavailable, readiness) => {
          fc.pre(maxSurge + maxUnavailable > 0);
          const p = { maxSurge, maxUnavailable };
          let slots = oldSlots(replicas);
          const count = (f: (m: { available: boolean }) => boolean) =>
            slots.reduce((n, s) => n + (s.old && f(s.old) ? 1 : 0) + (s.new && f(s.new) ? 1 : 0), 0);
          const check = () => {
            expect(count((m) => m.available)).toBeGreaterThanOrEqual(Math.min(replicas, replicas - maxUnavailable));
            expect(count(() => true)).toBeLessThanOrEqual(replicas + maxSurge);
          };
          // After the random steps, every new instance becomes available on each step.
          const steps = [...readiness, ...Array<number>(4 * replicas + 4).fill(255)];
          for (const bits of steps) {
            for (const a of planRollout(slots, replicas, p)) {
              slots = slots.map((s) => {
                if (s.index !== a.index) return s;
                if (a.kind === "surge") return { ...s, new: { available: false } };
                if (a.kind === "retire") return { index: s.index, new: s.new! };
                return { index: s.index, new: { available: false } }; // replace: the old one stops first
              });
              check();
            }
            slots = slots.map((s) =>
              s.new && !s.new.available && (bits >> s.index) & 1 ? { ...s, new: { available: true } } : s,
            );
            check();
          }
          expect(rolledOut(slots)).toBe(true);
          expect(count((m) => m.available)).toBe(replicas);
        },
      ),
    );
  });

  it("a rolling update with both maxSurge and maxUnavailable 0 is refused, naming the field", () => {
    expect(updateProblems({ update: { maxSurge: 0, maxUnavailable: 0 } })).toEqual([
      { pointer: "/spec/update/maxUnavailable", message: expect.stringContaining("cannot both be 0") },
    ]);
    expect(updateProblems({ update: { maxSurge: 0 } })).toHaveLength(1); // maxUnavailable defaults to 0
    expect(updateProblems({ update: { strategy: "Recreate", maxSurge: 0 } })).toEqual([
      { pointer: "/spec/update/maxSurge", message: "only applies to strategy Rolling" },
    ]);
    expect(updateProblems({ update: { minReadySeconds: 30, progressDeadlineSeconds: 10 } })[0]?.pointer).toBe(
      "/spec/update/progressDeadlineSeconds",
    );
    expect(updateProblems({ update: { maxSurge: 2, maxUnavailable: 1, minReadySeconds: 5 } })).toEqual([]);
  });
});
