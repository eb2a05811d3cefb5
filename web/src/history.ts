// All history fetching goes through this module, so moving to the server's bulk history
// endpoint (issue 9) is a change to `fetchRun` alone.
//
// Panels ask for one key of one run at a time; requests made in the same task for the same
// run and range are sent as one request naming all their keys.
import { get } from "./api";

export interface RunRef {
  entity: string;
  project: string;
  id: string;
}

export interface Range {
  minStep?: number;
  maxStep?: number;
  samples: number; // about this many points per key (the server keeps each bucket's min and max)
}

/** One key's points, ascending by step; values are numbers (NaN and infinities kept) or null. */
export interface Series {
  step: number[];
  value: (number | null)[];
  time: number[];
}

type Raw = { keys: Record<string, { step: number[]; value: unknown[]; time: number[] }> };

function toNumber(v: unknown): number | null {
  if (typeof v === "number") return v;
  if (typeof v === "boolean") return v ? 1 : 0;
  if (v === "NaN") return NaN; // strict JSON spells the non-finite floats as strings
  if (v === "Infinity") return Infinity;
  if (v === "-Infinity") return -Infinity;
  return null;
}

/** One request: ``keys`` of one run in ``range``. The one place that knows the endpoint. */
async function fetchRun(run: RunRef, keys: string[], range: Range): Promise<Map<string, Series>> {
  const path = `/runs/${encodeURIComponent(run.entity)}/${encodeURIComponent(run.project)}/${encodeURIComponent(run.id)}/history`;
  const raw = await get<Raw>(path, {
    keys: keys.join(","),
    min_step: range.minStep,
    max_step: range.maxStep,
    samples: range.samples,
  });
  const out = new Map<string, Series>();
  for (const key of keys) {
    const s = raw.keys[key];
    out.set(
      key,
      s ? { step: s.step, time: s.time, value: s.value.map(toNumber) } : { step: [], value: [], time: [] },
    );
  }
  return out;
}

interface Pending {
  run: RunRef;
  range: Range;
  keys: Set<string>;
  answer: Promise<Map<string, Series>>;
}

const pending = new Map<string, Pending>();

/** ``key`` of ``run`` in ``range``; joined with the other asks of this task into one request. */
export function fetchSeries(run: RunRef, key: string, range: Range): Promise<Series> {
  const id = JSON.stringify([run.entity, run.project, run.id, range.minStep, range.maxStep, range.samples]);
  let batch = pending.get(id);
  if (!batch) {
    const keys = new Set<string>();
    const answer = new Promise<void>((resolve) => setTimeout(resolve, 0)).then(() => {
      pending.delete(id);
      return fetchRun(run, [...keys], range);
    });
    batch = { run, range, keys, answer };
    pending.set(id, batch);
  }
  batch.keys.add(key);
  return batch.answer.then((found) => found.get(key) ?? { step: [], value: [], time: [] });
}
