// Label selectors, Kubernetes' equality-based form: comma-separated
// requirements that must all hold:
//   app=web   app==web   tier!=db   canary (the label is set)   !canary (it is not)
// One parser for both ends: the server filters lists and watches by
// ?labelSelector=, and the CLI's -l sends it and filters again (a server that
// ignores the parameter still gives the right answer). Each end words the
// error its own way (a 400 naming labelSelector, a usage error naming -l).

export type LabelRequirement =
  | { key: string; op: "="; value: string }
  | { key: string; op: "!="; value: string }
  | { key: string; op: "exists" }
  | { key: string; op: "!exists" };

export type LabelSelector = readonly LabelRequirement[];

// Keys and values as Kubernetes allows them: an optional DNS prefix, then a
// name of up to 63 characters; a value is empty or such a name.
const KEY = /^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

/** A requirement that cannot be read: `part` is its text, `why` says what is wrong with it. */
export class LabelSelectorError extends Error {
  constructor(
    readonly part: string,
    readonly why: string,
  ) {
    super(`"${part}": ${why}`);
    this.name = "LabelSelectorError";
  }
}

/** Parses "k=v,k2!=v2,k3,!k4"; an empty text selects everything. Throws LabelSelectorError. */
export function parseLabelSelector(text: string): LabelRequirement[] {
  const out: LabelRequirement[] = [];
  if (text.trim() === "") return out;
  for (const raw of text.split(",")) {
    const part = raw.trim();
    if (part === "") throw new LabelSelectorError(part, "empty requirement (write key=value, key!=value, key or !key)");
    const m = /^([^=!\s]+)\s*(==|=|!=)\s*(.*)$/.exec(part);
    if (m) {
      const [, key, op, value] = m as unknown as [string, string, string, string];
      if (!KEY.test(key)) throw new LabelSelectorError(part, `"${key}" is not a label key`);
      if (!VALUE.test(value)) throw new LabelSelectorError(part, `"${value}" is not a label value`);
      out.push(op === "!=" ? { key, op: "!=", value } : { key, op: "=", value });
    } else if (part.startsWith("!")) {
      const key = part.slice(1).trim();
      if (!KEY.test(key)) throw new LabelSelectorError(part, `"${key}" is not a label key`);
      out.push({ key, op: "!exists" });
    } else {
      if (!KEY.test(part)) {
        throw new LabelSelectorError(
          part,
          "expected key=value, key!=value, key or !key (set-based forms are not supported)",
        );
      }
      out.push({ key: part, op: "exists" });
    }
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

/** The canonical text of a selector (what the CLI sends as ?labelSelector=). */
export function formatLabelSelector(selector: LabelSelector): string {
  return selector
    .map((r) => {
      if (r.op === "exists") return r.key;
      if (r.op === "!exists") return `!${r.key}`;
      return `${r.key}${r.op}${r.value}`;
    })
    .join(",");
}
