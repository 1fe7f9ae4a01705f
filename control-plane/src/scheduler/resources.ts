// Resource arithmetic for the scheduler library: @grove/common's, on the
// API's Resources (the same fields; disk only when either side has it).
export { addResources, subtractResources, zeroResources } from "@grove/common";
