// How values, times and durations are written on the page.
import type { Json, Run } from "./api";

export function when(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return "";
  const d = new Date(seconds * 1000);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A run's duration in seconds: to its end, or to its last heartbeat while it runs. */
export function durationOf(run: Run): number {
  const end = run.finished_at ?? run.heartbeat_at;
  return Math.max(0, end - run.created_at);
}

export function duration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)}s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m}m ${Math.floor(seconds % 60)}s`;
  const hours = Math.floor(m / 60);
  return hours < 48 ? `${hours}h ${m % 60}m` : `${Math.floor(hours / 24)}d ${hours % 24}h`;
}

export function value(v: Json | undefined): string {
  if (v === undefined || v === null) return "";
  if (typeof v === "number") {
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(4) : String(Number(v.toPrecision(6)));
  }
  if (typeof v === "string" || typeof v === "boolean") return String(v);
  return rich(v) ?? JSON.stringify(v);
}

/** An image, histogram or table in a few words (the media panels show them), or null. */
export function rich(v: Json): string | null {
  if (Array.isArray(v)) {
    const kinds = v.map((x) => rich(x));
    return kinds.length && kinds.every((k) => k !== null) ? `${v.length} images` : null;
  }
  if (v === null || typeof v !== "object" || typeof v._type !== "string") return null;
  if (v._type === "image-file") return `image ${v.width}×${v.height}`;
  if (v._type === "images") return `${Array.isArray(v.items) ? v.items.length : 0} images`;
  if (v._type === "histogram") return `histogram (${Array.isArray(v.values) ? v.values.length : 0} bins)`;
  if (v._type === "table") return `table (${Array.isArray(v.data) ? v.data.length : 0} rows)`;
  return null;
}

/** Nested maps as dotted keys: {"opt": {"lr": 1}} -> {"opt.lr": 1}; typed maps (an image,
 * a histogram) stay whole. */
export function flatten(
  obj: Record<string, Json>,
  prefix = "",
  out: Record<string, Json> = {},
): Record<string, Json> {
  for (const [key, v] of Object.entries(obj)) {
    if (v !== null && typeof v === "object" && !Array.isArray(v) && !("_type" in v))
      flatten(v, prefix + key + ".", out);
    else out[prefix + key] = v;
  }
  return out;
}

/** Seconds on a chart axis: "250ms", "4.5s", "3m 20s". */
export function seconds(v: number): string {
  const a = Math.abs(v);
  if (a === 0) return "0";
  if (a < 1) return `${Number((v * 1000).toPrecision(3))}ms`;
  if (a < 60) return `${Number(v.toPrecision(3))}s`;
  return (v < 0 ? "-" : "") + duration(a);
}

/** ``n`` and ``noun``, with an s unless ``n`` is 1 ("1 run", "60 runs"). */
export function counted(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}
