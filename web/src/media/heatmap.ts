// Histograms over steps as a heat map: a column per step, rows spanning the value range of
// every step's bins, each cell as dark as the share of that step's count in it.
import { h } from "../dom";
import { value as show } from "../format";
import type { Histogram, Point } from "./types";

const ROWS = 64;
const HEIGHT = 200;

export interface HeatDrawn {
  steps: number; // columns drawn
  rows: number;
  lo: number | null;
  hi: number | null;
  filled: number; // cells with a count
}

/** Counts of ``hist`` spread over ``rows`` equal rows of [lo, hi] (by bin overlap). */
function spread(hist: Histogram, lo: number, hi: number, rows: number): Float64Array {
  const out = new Float64Array(rows);
  const size = (hi - lo) / rows || 1;
  for (let b = 0; b < hist.values.length; b++) {
    const [a, z, count] = [hist.bins[b], hist.bins[b + 1], hist.values[b]];
    if (!count) continue;
    const first = Math.max(0, Math.min(rows - 1, Math.floor((a - lo) / size)));
    const last = Math.max(0, Math.min(rows - 1, Math.ceil((z - lo) / size) - 1));
    const width = z - a || 1;
    for (let r = first; r <= last; r++) {
      const overlap = Math.min(z, lo + (r + 1) * size) - Math.max(a, lo + r * size);
      out[r] += last === first ? count : (count * Math.max(0, overlap)) / width;
    }
  }
  return out;
}

/** The heat map of ``points`` (one histogram per step), the step ``at`` marked; and its figures. */
export function heatMap(points: Point<Histogram>[], at: number | null): [HTMLElement, HeatDrawn] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const p of points) {
    const bins = p.value.bins;
    if (bins.length) [lo, hi] = [Math.min(lo, bins[0]), Math.max(hi, bins[bins.length - 1])];
  }
  const drawn: HeatDrawn = { steps: points.length, rows: ROWS, lo: null, hi: null, filled: 0 };
  if (!points.length || !Number.isFinite(lo)) return [h("p", { class: "muted" }, "No histograms."), drawn];
  [drawn.lo, drawn.hi] = [lo, hi];
  const canvas = h("canvas", { class: "heat", width: points.length, height: ROWS });
  const ctx = canvas.getContext("2d") as CanvasRenderingContext2D;
  const img = ctx.createImageData(points.length, ROWS);
  const ink = getComputedStyle(document.body).color.match(/\d+/g)?.map(Number) ?? [0, 0, 0];
  points.forEach((p, col) => {
    const rows = spread(p.value, lo, hi, ROWS);
    const top = Math.max(...rows) || 1;
    rows.forEach((count, r) => {
      if (!count) return;
      drawn.filled++;
      const i = ((ROWS - 1 - r) * points.length + col) * 4; // high values at the top
      img.data.set([ink[0], ink[1], ink[2], Math.round(40 + 215 * (count / top))], i);
    });
  });
  ctx.putImageData(img, 0, 0);
  canvas.style.height = `${HEIGHT}px`;
  const atCol = at === null ? -1 : lastAtOrBefore(points, at);
  const marker = h("div", { class: "heat-at" });
  if (atCol >= 0) marker.style.left = `${((atCol + 0.5) / points.length) * 100}%`;
  else marker.hidden = true;
  const tip = h("div", { class: "heat-tip muted" }, " ");
  canvas.addEventListener("mousemove", (e) => {
    const box = canvas.getBoundingClientRect();
    const col = Math.min(points.length - 1, Math.floor(((e.clientX - box.left) / box.width) * points.length));
    const v = hi - ((e.clientY - box.top) / box.height) * (hi - lo);
    tip.textContent = `step ${points[col].step} · value ${show(v)}`;
  });
  const first = points[0].step;
  const last = points[points.length - 1].step;
  const el = h(
    "div",
    { class: "heat-box" },
    h(
      "div",
      { class: "heat-plot" },
      h("div", { class: "heat-y" }, h("span", {}, show(hi)), h("span", {}, show(lo))),
      h("div", { class: "heat-area" }, canvas, marker),
    ),
    h("div", { class: "heat-x muted" }, h("span", {}, `step ${first}`), h("span", {}, `step ${last}`)),
    tip,
  );
  return [el, drawn];
}

/** The index of the last point at or before ``step`` (-1 if none is). */
export function lastAtOrBefore<T>(points: Point<T>[], step: number): number {
  let found = -1;
  for (let i = 0; i < points.length && points[i].step <= step; i++) found = i;
  return found;
}
