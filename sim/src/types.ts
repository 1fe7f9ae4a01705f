// The workload types every generator and the CSV trace reader produce.
import type { Resources } from "@grove/api";

/** One instance of a workload: it arrives at `time`, runs for `duration` (forever when absent). */
export interface WorkItem {
  time: number;
  id: string;
  app: string;
  resources: Resources;
  duration?: number;
  priority: number;
}

/** An explicit departure (CSV traces may list them instead of durations). */
export interface Departure {
  time: number;
  id: string;
}

export interface Workload {
  name: string;
  items: WorkItem[];
  departures: Departure[];
}
