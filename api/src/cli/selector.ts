// `-l` label selectors: the parser is ../label-selector.ts (shared with the
// server's ?labelSelector=); here a requirement it cannot read is a usage
// error naming -l and the whole selector. The selector is sent to the server
// and also applied here, so a server that ignores the parameter still gives
// the right answer.
import {
  formatLabelSelector,
  LabelSelectorError,
  matchesLabels,
  parseLabelSelector,
  type LabelRequirement,
} from "../label-selector";
import { UsageError } from "./kinds";

export type Requirement = LabelRequirement;

export function parseSelector(text: string): Requirement[] {
  try {
    const reqs = parseLabelSelector(text);
    if (reqs.length === 0) throw new LabelSelectorError(text, "empty selector");
    return reqs;
  } catch (err) {
    if (!(err instanceof LabelSelectorError)) throw err;
    throw new UsageError(`-l: "${err.part}" in selector "${text}": ${err.why}`);
  }
}

export function matchesSelector(labels: Readonly<Record<string, string>> | undefined, reqs: readonly Requirement[]) {
  return matchesLabels(reqs, labels);
}

/** The canonical text sent as ?labelSelector=. */
export const formatSelector = formatLabelSelector;
