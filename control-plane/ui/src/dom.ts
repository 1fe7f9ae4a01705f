// Building the page with text nodes only (never innerHTML), so nothing the
// cluster says (names, log lines, messages) can become markup.

type Child = Node | string | number | undefined | null | false;

export function h(tag: string, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    el.append(typeof c === "string" || typeof c === "number" ? String(c) : c);
  }
  return el;
}

export function table(headers: string[], rows: Child[][], attrs: Record<string, string> = {}): HTMLElement {
  return h(
    "table",
    attrs,
    h("thead", {}, h("tr", {}, ...headers.map((x) => h("th", {}, x)))),
    h("tbody", {}, ...rows.map((r) => h("tr", {}, ...r.map((c) => h("td", {}, c))))),
  );
}

/** An allocation bar: used of total, with the figures as text beside it. */
export function bar(used: number, total: number, label: string): HTMLElement {
  const pct = total > 0 ? Math.min(100, Math.round((used / total) * 100)) : 0;
  const fill = h("span", { class: `fill${pct >= 90 ? " high" : ""}` });
  // A class per 5% step instead of an inline style: the Content-Security-Policy allows no inline styles.
  fill.classList.add(`w${Math.round(pct / 5) * 5}`);
  return h("div", { class: "bar", title: `${label}: ${pct}%` }, fill, h("span", { class: "bar-label" }, label));
}

export function mib(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)}Gi` : `${Math.round(bytes / 2 ** 20)}Mi`;
}
export function cpu(millis: number): string {
  return millis % 1000 === 0 ? String(millis / 1000) : `${millis}m`;
}
