// The agent imports only @grove/proto, so it keeps its own list of the
// reasons it writes (StatusReason). Every one of them must be in the API's
// catalogue (api/src/reasons.ts), where clients look reasons up.
import { StatusReason } from "@grove/agent";
import { InstanceReason } from "@grove/api";

test("every reason the agent writes is in the API's catalogue, under its own name", () => {
  const catalogue = InstanceReason as Record<string, string>;
  for (const [name, value] of Object.entries(StatusReason)) {
    expect({ name, value: catalogue[name] }).toEqual({ name, value });
  }
});

test("each catalogued reason is spelled as its name, once", () => {
  const values = Object.values(InstanceReason);
  for (const [name, value] of Object.entries(InstanceReason)) expect(value).toBe(name);
  expect(new Set(values).size).toBe(values.length);
});
