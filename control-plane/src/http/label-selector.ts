// ?labelSelector= on lists and watches (the parser is @grove/api's, shared
// with the CLI's -l): a requirement it cannot read is a 400 naming the field.
import { GroveError, LabelSelectorError, parseLabelSelector as parse, type LabelSelector } from "@grove/api";

export { matchesLabels, type LabelRequirement, type LabelSelector } from "@grove/api";

/** Parses "k=v,k2!=v2,k3,!k4"; an empty string selects everything. Throws BadRequest naming the requirement. */
export function parseLabelSelector(text: string): LabelSelector {
  try {
    return parse(text);
  } catch (err) {
    if (!(err instanceof LabelSelectorError)) throw err;
    throw new GroveError("BadRequest", `labelSelector: ${err.message}`, [
      { path: "/labelSelector", message: err.message },
    ]);
  }
}
