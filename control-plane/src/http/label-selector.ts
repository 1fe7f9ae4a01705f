// ?labelSelector= on lists and watches: Kubernetes' equality-based selector
// syntax, comma-separated requirements that must all hold:
//   app=web   app==web   tier!=db   canary (the label is set)   !canary (it is not)
import { GroveError } from "@grove/api";

export type LabelRequirement =
  { key: string; op: "=" | "!="; value: string } | { key: string; op: "exists" | "!exists" };

export type LabelSelector = readonly LabelRequirement[];

// Label keys and values as Kubernetes allows them (an optional DNS prefix, then a name of up to 63).
const KEY = /^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

function bad(message: string): GroveError {
  return new GroveError("BadRequest", `labelSelector: ${message}`, [{ path: "/labelSelector", message }]);
}

/** Parses "k=v,k2!=v2,k3,!k4"; an empty string selects everything. Throws BadRequest naming the requirement. */
export function parseLabelSelector(text: string): LabelSelector {
  const out: LabelRequirement[] = [];
  if (text.trim() === "") return out;
  for (const raw of text.split(",")) {
    const part = raw.trim();
    const m = /^([^=!]+?)\s*(==|=|!=)\s*(.*)$/.exec(part);
    let req: LabelRequirement;
    if (m) {
      const op = m[2] === "!=" ? "!=" : "=";
      req = { key: m[1]!, op, value: m[3]! };
      if (!VALUE.test(req.value)) throw bad(`"${part}": ${JSON.stringify(req.value)} is not a valid label value`);
    } else if (part.startsWith("!")) {
      req = { key: part.slice(1).trim(), op: "!exists" };
    } else {
      req = { key: part, op: "exists" };
    }
    if (!KEY.test(req.key)) throw bad(`"${part}": ${JSON.stringify(req.key)} is not a valid label key`);
    out.push(req);
  }
  return out;
}

/** Whether labels satisfy every requirement. */
export function matchesLabels(selector: LabelSelector, labels: Readonly<Record<string, string>> | undefined): boolean {
  const l = labels ?? {};
  return selector.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(l, r.key);
    switch (r.op) {
      case "=":
        return has && l[r.key] === r.value;
      case "!=":
        return !has || l[r.key] !== r.value;
      case "exists":
        return has;
      case "!exists":
        return !has;
    }
  });
}
