// Which metric keys to chart: the summary keys with a number (or a per-metric summary map,
// from define_metric) in any of the runs. Keys starting with "_" are trackd's own; system
// metrics ("system/...") have their own section, on a time axis.
import type { Json, Run } from "../api";

function chartable(v: Json): boolean {
  if (typeof v === "number" || typeof v === "boolean") return true;
  if (v === "NaN" || v === "Infinity" || v === "-Infinity") return true;
  return (
    v !== null &&
    typeof v === "object" &&
    !Array.isArray(v) &&
    !("_type" in v) && // an image, histogram or table: a media panel shows it
    Object.values(v).some((x) => typeof x === "number")
  );
}

export function metricKeys(runs: Run[]): string[] {
  const keys = new Set<string>();
  for (const run of runs) {
    for (const [key, v] of Object.entries(run.summary))
      if (!key.startsWith("_") && !key.startsWith("system/") && chartable(v)) keys.add(key);
  }
  return [...keys].sort();
}
