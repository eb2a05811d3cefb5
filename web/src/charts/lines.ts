// What a panel draws, from its runs' series: a line per run (raw, and smoothed beside it), or
// with runs grouped, a line per group (the mean of its runs) inside a min-max band.
import uPlot from "uplot";

import type { Series } from "../history";
import { faint } from "./colors";
import { ema } from "./smooth";

export interface Marker {
  color: string;
  x: number;
  kind: "nan" | "inf" | "-inf";
}

/** One line of the legend: where its values are in the plot's data. */
export interface Line {
  id: string; // run id, or "group:<name>"
  label: string;
  color: string;
  raw: number; // data column of the (raw or mean) line
  smooth: number | null; // data column of its smoothed line
  band: [number, number] | null; // data columns of a group's max and min
}

export interface Drawn {
  data: uPlot.AlignedData;
  series: uPlot.Series[];
  bands: uPlot.Band[];
  lines: Line[];
  markers: Marker[];
}

export interface LineSource {
  id: string;
  label: string;
  color: string;
  group: string | null; // runs with a group are drawn as their group
  xs: ArrayLike<number>;
  series: Series;
}

/** Finite values (non-finite ones become markers; with a log scale, <= 0 is dropped);
 * a value that is not a number at all is a gap. */
function values(src: LineSource, log: boolean, color: string, markers: Marker[]): (number | null)[] {
  const { value, holes } = src.series;
  const gaps = new Set(holes);
  const out: (number | null)[] = new Array(value.length);
  for (let i = 0; i < value.length; i++) {
    const v = value[i];
    if (gaps.has(i)) out[i] = null;
    else if (!Number.isFinite(v)) {
      markers.push({ color, x: src.xs[i], kind: Number.isNaN(v) ? "nan" : v > 0 ? "inf" : "-inf" });
      out[i] = null;
    } else out[i] = log && v <= 0 ? null : v;
  }
  return out;
}

/** ``[xs, ys]`` ordered by x, points without a finite x left out (uPlot needs x ascending;
 * another key on the x axis need not grow with the step). */
function ascending(xs: number[], ys: (number | null)[]): uPlot.AlignedData {
  let sorted = true;
  for (let i = 1; i < xs.length && sorted; i++) sorted = xs[i - 1] <= xs[i];
  if (sorted && xs.every(Number.isFinite)) return [xs, ys];
  const order = xs.map((_, i) => i).filter((i) => Number.isFinite(xs[i]));
  order.sort((p, q) => xs[p] - xs[q]);
  return [order.map((i) => xs[i]), order.map((i) => ys[i])];
}

function column(joined: uPlot.AlignedData, c: number): (number | null)[] {
  return Array.from(joined[c] as ArrayLike<number | null | undefined>, (v) => (v === undefined ? null : v));
}

/** Mean, min and max of ``columns`` at each x (missing values skipped). */
function aggregate(
  columns: (number | null)[][],
  length: number,
): [(number | null)[], (number | null)[], (number | null)[]] {
  const mean: (number | null)[] = new Array(length).fill(null);
  const min = mean.slice();
  const max = mean.slice();
  for (let i = 0; i < length; i++) {
    let sum = 0;
    let n = 0;
    for (const col of columns) {
      const v = col[i];
      if (v === null) continue;
      sum += v;
      n++;
      min[i] = min[i] === null || v < (min[i] as number) ? v : min[i];
      max[i] = max[i] === null || v > (max[i] as number) ? v : max[i];
    }
    mean[i] = n ? sum / n : null;
  }
  return [mean, min, max];
}

export function drawn(sources: LineSource[], smoothing: number, log: boolean): Drawn {
  const markers: Marker[] = [];
  const tables = sources.map((src) => ascending(Array.from(src.xs), values(src, log, src.color, markers)));
  const joined = tables.length === 1 ? tables[0] : uPlot.join(tables);
  const x = joined[0] as number[];
  // a line per run, or per group of runs
  const wanted: { id: string; label: string; color: string; cols: number[] }[] = [];
  sources.forEach((src, i) => {
    const id = src.group === null ? src.id : `group:${src.group}`;
    const found = wanted.find((w) => w.id === id);
    if (found) found.cols.push(i + 1);
    else
      wanted.push({ id, label: src.group === null ? src.label : src.group, color: src.color, cols: [i + 1] });
  });
  const data: (number | null)[][] = [];
  const series: uPlot.Series[] = [{}];
  const bands: uPlot.Band[] = [];
  const lines: Line[] = [];
  const at = () => data.length + 1;
  for (const w of wanted) {
    const grouped = w.id.startsWith("group:");
    const cols = w.cols.map((c) => column(joined, c));
    const [mean, min, max] = grouped ? aggregate(cols, x.length) : [cols[0], null, null];
    let band: [number, number] | null = null;
    if (min && max) {
      const top = at();
      data.push(max, min);
      series.push({
        label: `${w.label} max`,
        stroke: faint(w.color, 0.3),
        width: 0.5,
        spanGaps: true,
        points: { show: false },
      });
      series.push({
        label: `${w.label} min`,
        stroke: faint(w.color, 0.3),
        width: 0.5,
        spanGaps: true,
        points: { show: false },
      });
      bands.push({ series: [top, top + 1], fill: faint(w.color, 0.15) });
      band = [top, top + 1];
    }
    const raw = at();
    data.push(mean);
    series.push({
      label: w.label,
      stroke: smoothing > 0 ? faint(w.color, 0.25) : w.color,
      width: grouped ? 1.5 : 1,
      spanGaps: true,
    });
    let smooth: number | null = null;
    if (smoothing > 0) {
      smooth = at();
      data.push(ema(mean, smoothing));
      series.push({
        label: `${w.label} (smoothed)`,
        stroke: w.color,
        width: 1.5,
        spanGaps: true,
        points: { show: false },
      });
    }
    lines.push({ id: w.id, label: w.label, color: w.color, raw, smooth, band });
  }
  return { data: [x, ...data] as uPlot.AlignedData, series, bands, lines, markers };
}
