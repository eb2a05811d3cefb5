// All history fetching goes through this module, and all of it through the server's bulk
// endpoint: ``POST /api/v1/entities/{e}/projects/{p}/history``, answered in the columnar
// msgpack form (each series' arrays as little-endian binary), decoded into Float64Arrays.
//
// Panels ask for one key of one run at a time; the asks made in the same task for the same
// project, range and x axis are sent as one request naming all their runs and keys (the
// panels that come on screen together share one request).
import { decode } from "@msgpack/msgpack";

import { post } from "./api";

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

/** One key's points, ascending by step. ``value`` holds numbers (NaN and infinities kept);
 * ``holes`` lists the positions whose value is not a number at all (drawn as gaps). ``x`` is
 * the x-axis key's value at each point when the x axis is another key. */
export interface Series {
  step: Float64Array;
  value: Float64Array;
  time: Float64Array;
  x?: Float64Array;
  holes: number[];
}

export const COLUMNS = "application/vnd.trackd.columns+msgpack";
const MAX_POINTS = 10_000_000; // runs x keys x samples in one request (the server's limit)
const MAX_RUNS = 1000;
const MAX_KEYS = 1000;

export function emptySeries(withX = false): Series {
  const none = new Float64Array(0);
  return withX
    ? { step: none, value: none, time: none, x: none, holes: [] }
    : { step: none, value: none, time: none, holes: [] };
}

/** ``b``'s points after ``a``'s last step appended to ``a`` (a live run's new points). */
export function appendSeries(a: Series, b: Series): Series {
  const from = a.step.length ? a.step[a.step.length - 1] : -Infinity;
  let start = 0;
  while (start < b.step.length && b.step[start] <= from) start++;
  if (start === b.step.length) return a;
  const join = (p: Float64Array, q: Float64Array) => {
    const out = new Float64Array(p.length + q.length - start);
    out.set(p);
    out.set(q.subarray(start), p.length);
    return out;
  };
  return {
    step: join(a.step, b.step),
    value: join(a.value, b.value),
    time: join(a.time, b.time),
    x: a.x && b.x ? join(a.x, b.x) : undefined,
    holes: [...a.holes, ...b.holes.filter((i) => i >= start).map((i) => i - start + a.step.length)],
  };
}

/** Float64Array of little-endian float64 bytes (copied: msgpack's views are unaligned). */
function floats(bytes: Uint8Array): Float64Array {
  return new Float64Array(bytes.slice().buffer);
}

/** Little-endian int64s as numbers (steps: exact below 2**53), without a BigInt each. */
function int64s(bytes: Uint8Array): Float64Array {
  const words = new Uint32Array(bytes.slice().buffer);
  const out = new Float64Array(words.length / 2);
  for (let i = 0; i < out.length; i++) {
    const [lo, hi] = [words[2 * i], words[2 * i + 1]];
    out[i] = hi >= 0x80000000 ? -((~hi >>> 0) * 4294967296 + (~lo >>> 0) + 1) : hi * 4294967296 + lo;
  }
  return out;
}

/** Values float64 cannot carry (``exact``: position -> value) put back where they can be. */
function patch(values: Float64Array, exact: Record<string, unknown> | undefined, holes: number[]): void {
  for (const [at, v] of Object.entries(exact ?? {})) {
    const i = Number(at);
    if (typeof v === "number") values[i] = v;
    else if (typeof v === "bigint") values[i] = Number(v);
    else if (typeof v === "boolean") values[i] = v ? 1 : 0;
    else holes.push(i);
  }
  holes.sort((p, q) => p - q);
}

interface Packed {
  run: string;
  key: string;
  step: Uint8Array;
  time: Uint8Array;
  value: Uint8Array;
  exact?: Record<string, unknown>;
  x?: Uint8Array;
  x_exact?: Record<string, unknown>;
}

function unpack(doc: Packed): Series {
  const holes: number[] = [];
  const value = floats(doc.value);
  patch(value, doc.exact, holes);
  const series: Series = { step: int64s(doc.step), time: floats(doc.time), value, holes };
  if (doc.x) {
    series.x = floats(doc.x);
    patch(series.x, doc.x_exact, []);
  }
  return series;
}

interface Ask {
  entity: string;
  project: string;
  range: Range;
  x: string;
  runs: Set<string>;
  keys: Set<string>;
  answer: Promise<Map<string, Packed>>; // by JSON [run, key], decoded when a panel asks
}

const idOf = (run: string, key: string) => JSON.stringify([run, key]);

/** One request (or a few, when over the server's limits) for ``runs`` x ``keys``. */
async function fetchBulk(ask: Ask): Promise<Map<string, Packed>> {
  const runs = [...ask.runs];
  const keys = [...ask.keys];
  const perRequest = Math.max(
    1,
    Math.min(MAX_RUNS, Math.floor(MAX_POINTS / (keys.length * ask.range.samples))),
  );
  const out = new Map<string, Packed>();
  const path = `/entities/${encodeURIComponent(ask.entity)}/projects/${encodeURIComponent(ask.project)}/history`;
  const chunks: Promise<void>[] = [];
  for (let r = 0; r < runs.length; r += perRequest) {
    for (let k = 0; k < keys.length; k += MAX_KEYS) {
      const body = {
        runs: runs.slice(r, r + perRequest),
        keys: keys.slice(k, k + MAX_KEYS),
        min_step: ask.range.minStep,
        max_step: ask.range.maxStep,
        samples: ask.range.samples,
        x: ask.x,
      };
      chunks.push(
        (async () => {
          const asked = performance.now();
          const bytes = new Uint8Array(await (await post(path, body, COLUMNS)).arrayBuffer());
          const got = performance.now();
          const answer = decode(bytes, { useBigInt64: true }) as { series: Packed[] };
          for (const doc of answer.series) out.set(idOf(doc.run, doc.key), doc);
          // the page's own profile: the request, and decoding its msgpack (each series'
          // arrays are unpacked when a panel asks for them)
          const detail = { runs: body.runs.length, keys: body.keys.length, bytes: bytes.length };
          performance.measure("trackd:history-fetch", { start: asked, end: got, detail });
          performance.measure("trackd:history-decode", { start: got, end: performance.now(), detail });
        })(),
      );
    }
  }
  await Promise.all(chunks);
  return out;
}

const pending = new Map<string, Ask>();

/** ``key`` of ``run`` in ``range``, x axis ``x`` ("step", "time" or a logged key); joined
 * with the other asks of this task into one request. */
export function fetchSeries(run: RunRef, key: string, range: Range, x = "step"): Promise<Series> {
  const id = JSON.stringify([run.entity, run.project, range.minStep, range.maxStep, range.samples, x]);
  let ask = pending.get(id);
  if (!ask) {
    const made: Ask = {
      entity: run.entity,
      project: run.project,
      range,
      x,
      runs: new Set(),
      keys: new Set(),
      answer: new Promise<void>((resolve) => setTimeout(resolve, 0)).then(() => {
        pending.delete(id);
        return fetchBulk(made);
      }),
    };
    ask = made;
    pending.set(id, ask);
  }
  ask.runs.add(run.id);
  ask.keys.add(key);
  const withX = x !== "step" && x !== "time";
  return ask.answer.then((found) => {
    const doc = found.get(idOf(run.id, key));
    return doc ? unpack(doc) : emptySeries(withX);
  });
}
