// `-l` label selectors (kubectl's equality-based form): comma-separated requirements, all of
// which must hold: key=value (or key==value), key!=value, key (present), !key (absent).
// The selector is sent to the server as ?labelSelector= and also applied here, so a server
// that ignores the parameter still gives the right answer.
import { UsageError } from "./kinds";

export type Requirement =
  | { op: "="; key: string; value: string }
  | { op: "!="; key: string; value: string }
  | { op: "exists"; key: string }
  | { op: "!exists"; key: string };

// Label keys: an optional DNS prefix and a name; values: empty or a name (as in Kubernetes).
const KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

export function parseSelector(text: string): Requirement[] {
  const bad = (part: string, why: string): never => {
    throw new UsageError(`-l: "${part}" in selector "${text}": ${why}`);
  };
  const out: Requirement[] = [];
  for (const raw of text.split(",")) {
    const part = raw.trim();
    if (part === "") bad(raw, "empty requirement (write key=value, key!=value, key or !key)");
    const m = /^([^=!\s]+)\s*(==|=|!=)\s*(.*)$/.exec(part);
    if (m) {
      const [, key, op, value] = m as unknown as [string, string, string, string];
      if (!KEY.test(key)) bad(part, `"${key}" is not a label key`);
      if (!VALUE.test(value)) bad(part, `"${value}" is not a label value`);
      out.push(op === "!=" ? { op: "!=", key, value } : { op: "=", key, value });
    } else if (part.startsWith("!")) {
      const key = part.slice(1).trim();
      if (!KEY.test(key)) bad(part, `"${key}" is not a label key`);
      out.push({ op: "!exists", key });
    } else {
      if (!KEY.test(part)) bad(part, "expected key=value, key!=value, key or !key (set-based forms are not supported)");
      out.push({ op: "exists", key: part });
    }
  }
  return out;
}

export function matchesSelector(labels: Readonly<Record<string, string>> | undefined, reqs: readonly Requirement[]) {
  const l = labels ?? {};
  return reqs.every((r) => {
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

/** The canonical text sent as ?labelSelector=. */
export function formatSelector(reqs: readonly Requirement[]): string {
  return reqs
    .map((r) => {
      if (r.op === "exists" || r.op === "!exists") return `${r.op === "exists" ? "" : "!"}${r.key}`;
      return `${r.key}${r.op}${r.value}`;
    })
    .join(",");
}
