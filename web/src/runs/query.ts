// The runs table's filters and sort, as the server's `filters=` JSON and `order=` parameter,
// and the same applied in the browser while the server does not page the list itself.
import type { Json, Run } from "../api";
import { durationOf, flatten } from "../format";

export interface TableQuery {
  state: string; // "" for any
  tags: string[]; // runs with any of these tags
  group: string;
  search: string; // in the name or id (the server's search=)
  where: string; // "lr > 0.01, summary.loss < 0.5"
  order: string; // "-created_at", "+config.lr"
}

const OPS: Record<string, string> = {
  ">": "$gt",
  ">=": "$gte",
  "<": "$lt",
  "<=": "$lte",
  "=": "$eq",
  "==": "$eq",
  "!=": "$ne",
};
const CONDITION = /^\s*([^\s<>=!]+)\s*(>=|<=|!=|==|=|>|<)\s*(.+?)\s*$/;

function literal(text: string): Json {
  if (/^-?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(text)) return Number(text);
  if (text === "true" || text === "false") return text === "true";
  return text.replace(/^(["'])(.*)\1$/, "$2");
}

// the run's own fields a condition may name (``user = ana``); any other bare key is a config key
const RUN_FIELDS = new Set(["user", "host"]);

/** ``lr > 0.01, summary.loss < 0.5, user = ana`` as filter fields (a bare key other than
 * ``user`` and ``host`` is a config key). */
export function parseWhere(text: string): Record<string, Record<string, Json>> {
  const out: Record<string, Record<string, Json>> = {};
  for (const part of text.split(/,|\band\b/)) {
    if (!part.trim()) continue;
    const m = CONDITION.exec(part);
    if (!m)
      throw new Error(
        `cannot read the condition "${part.trim()}"; write e.g. lr > 0.01 or summary.loss <= 0.5`,
      );
    const field = /^(config|summary)\./.test(m[1]) || RUN_FIELDS.has(m[1]) ? m[1] : `config.${m[1]}`;
    out[field] = { ...(out[field] ?? {}), [OPS[m[2]]]: literal(m[3]) };
  }
  return out;
}

export function serverFilters(q: TableQuery): object {
  const filters: Record<string, unknown> = { ...parseWhere(q.where) };
  if (q.state) filters.state = q.state;
  if (q.group) filters.group = q.group;
  if (q.tags.length) filters.tags = { $in: q.tags };
  return filters;
}

/** A column's value for sorting and showing: base fields, "config.x", "summary.x". */
export function field(run: Run, column: string): Json | undefined {
  if (column.startsWith("config.")) return flatten(run.config)[column.slice(7)];
  if (column.startsWith("summary.")) return flatten(run.summary)[column.slice(8)];
  if (column === "duration") return durationOf(run);
  if (column === "tags") return run.tags.join(", ");
  return (run as unknown as Record<string, Json>)[column];
}

function compare(a: Json | undefined, b: Json | undefined): number {
  const missing = (v: Json | undefined) => v === undefined || v === null;
  if (missing(a) || missing(b)) return missing(a) === missing(b) ? 0 : missing(a) ? 1 : -1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b));
}

/** What the server does once it pages: search, sort (missing values last), one page. */
export function inBrowser(
  runs: Run[],
  q: TableQuery,
  offset: number,
  limit: number,
): { runs: Run[]; total: number } {
  const needle = q.search.toLowerCase();
  let found = needle
    ? runs.filter((r) => r.name.toLowerCase().includes(needle) || r.id.includes(needle))
    : runs;
  const desc = q.order.startsWith("-");
  const column = q.order.replace(/^[-+]/, "");
  found = [...found].sort((a, b) => {
    const c = compare(field(a, column), field(b, column));
    return desc && c !== 0 && field(a, column) != null && field(b, column) != null ? -c : c;
  });
  return { runs: found.slice(offset, offset + limit), total: found.length };
}
