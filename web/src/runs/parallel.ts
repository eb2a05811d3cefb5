// Parallel coordinates: an axis per config key whose value differs between the runs, and a
// last axis for a chosen summary metric; each run a line across them, coloured by the
// metric (low: blue, high: red), so what the good runs share shows at a glance.
import type { Json, Run } from "../api";
import { h } from "../dom";
import { recordParallel } from "../charts/registry";
import { flatten, value } from "../format";

const HEIGHT = 260;
const PAD = { top: 30, bottom: 16, left: 90, right: 140 };
const MAX_AXES = 10;

interface Axis {
  key: string; // "config.lr", "summary.loss"
  values: (Json | undefined)[]; // per run
  at(v: Json | undefined): number | null; // 0 (bottom) .. 1 (top), null: not on the axis
  ticks: [number, string][];
}

function numeric(values: (Json | undefined)[]): number[] | null {
  const present = values.filter((v) => v !== undefined && v !== null);
  return present.length && present.every((v) => typeof v === "number" && Number.isFinite(v))
    ? (present as number[])
    : null;
}

function axisOf(key: string, values: (Json | undefined)[]): Axis {
  const nums = numeric(values);
  if (nums) {
    const [lo, hi] = [Math.min(...nums), Math.max(...nums)];
    const log = lo > 0 && hi / lo >= 50; // learning rates and the like: spread by order of magnitude
    const f = (v: number) => (log ? Math.log10(v) : v);
    const span = f(hi) - f(lo);
    const at = (v: Json | undefined) =>
      typeof v === "number" && Number.isFinite(v) ? (span ? (f(v) - f(lo)) / span : 0.5) : null;
    const ticks: [number, string][] = span
      ? [
          [0, value(lo)],
          [1, value(hi)],
        ]
      : [[0.5, value(lo)]];
    return { key, values, at, ticks };
  }
  const names = [...new Set(values.filter((v) => v !== undefined && v !== null).map((v) => value(v)))].sort();
  const pos = (i: number) => (names.length > 1 ? i / (names.length - 1) : 0.5);
  const at = (v: Json | undefined) => {
    const i = v === undefined || v === null ? -1 : names.indexOf(value(v));
    return i < 0 ? null : pos(i);
  };
  return { key, values, at, ticks: names.map((n, i) => [pos(i), n]) };
}

/** The config keys whose values differ between ``runs`` (most runs having them first). */
function varying(flat: Record<string, Json>[]): string[] {
  const keys = new Set<string>();
  flat.forEach((f) => Object.keys(f).forEach((k) => !k.startsWith("_") && keys.add(k)));
  return [...keys]
    .filter((k) => new Set(flat.map((f) => JSON.stringify(f[k] ?? null))).size > 1)
    .sort(
      (a, b) => flat.filter((f) => b in f).length - flat.filter((f) => a in f).length || a.localeCompare(b),
    )
    .slice(0, MAX_AXES - 1)
    .sort();
}

/** Numeric summary keys of ``runs``: the metrics to choose from. */
export function metricsOf(runs: Run[]): string[] {
  const keys = new Set<string>();
  for (const run of runs)
    for (const [k, v] of Object.entries(flatten(run.summary)))
      if (!k.startsWith("_") && typeof v === "number") keys.add(k);
  return [...keys].sort();
}

function heat(t: number): string {
  const hue = 240 - 240 * Math.min(1, Math.max(0, t)); // blue .. red
  return `hsl(${hue}, 75%, 48%)`;
}

const SVG = "http://www.w3.org/2000/svg";
function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number>,
  text?: string,
): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** The panel: a metric chooser and the plot of ``runs`` (``selected`` drawn thicker). */
export function parallelPanel(
  runs: Run[],
  metric: string,
  selected: string[],
  choose: (metric: string) => void,
  width: number,
): HTMLElement {
  const metrics = metricsOf(runs);
  const chosen = metrics.includes(metric) ? metric : (metrics[0] ?? "");
  const pick = h(
    "select",
    { name: "parallel-metric", "aria-label": "metric" },
    ...metrics.map((m) => h("option", { value: m, selected: m === chosen }, m)),
  );
  pick.addEventListener("change", () => choose(pick.value));
  const box = h("div", { class: "parallel", id: "parallel" }, h("label", {}, "metric ", pick));
  const flat = runs.map((r) => flatten(r.config));
  const keys = varying(flat);
  if (!chosen || runs.length < 2) {
    box.append(h("p", { class: "muted" }, "Needs two runs or more with a numeric summary value."));
    recordParallel({ metric: chosen, axes: [], lines: 0 });
    return box;
  }
  const summaries = runs.map((r) => flatten(r.summary));
  const axes = [
    ...keys.map((k) =>
      axisOf(
        `config.${k}`,
        flat.map((f) => f[k]),
      ),
    ),
    axisOf(
      `summary.${chosen}`,
      summaries.map((s) => s[chosen]),
    ),
  ];
  const plot = svg("svg", {
    class: "parallel-plot",
    width,
    height: HEIGHT,
    viewBox: `0 0 ${width} ${HEIGHT}`,
  });
  const span = width - PAD.left - PAD.right;
  const x = (i: number) => PAD.left + (axes.length > 1 ? (i * span) / (axes.length - 1) : 0);
  const y = (t: number) => PAD.top + (1 - t) * (HEIGHT - PAD.top - PAD.bottom);
  const metricAxis = axes[axes.length - 1];
  let lines = 0;
  runs.forEach((run, r) => {
    const t = metricAxis.at(metricAxis.values[r]);
    // a run without a key skips its axis (the line goes straight to the next one it has)
    const points = axes.flatMap((axis, i) => {
      const at = axis.at(axis.values[r]);
      return at === null ? [] : [`${x(i).toFixed(1)},${y(at).toFixed(1)}`];
    });
    if (points.length < 2) return;
    const on = selected.includes(run.id);
    const line = svg("polyline", {
      points: points.join(" "),
      fill: "none",
      stroke: t === null ? "#888" : heat(t),
      "stroke-width": on ? 2.5 : 1.2,
      "stroke-opacity": on ? 1 : 0.7,
      "data-run": run.id,
    });
    line.append(svg("title", {}, `${run.name}: ${chosen} ${value(metricAxis.values[r])}`));
    plot.append(line);
    lines++;
  });
  axes.forEach((axis, i) => {
    const g = svg("g", { class: "axis", "data-key": axis.key });
    g.append(svg("line", { x1: x(i), x2: x(i), y1: y(0), y2: y(1), class: "axis-line" }));
    g.append(svg("text", { x: x(i), y: 14, "text-anchor": "middle", class: "axis-name" }, axis.key));
    // values left of their axis (the last axis: right of it), over the lines
    const last = i === axes.length - 1;
    for (const [t, label] of axis.ticks) {
      const at = { x: x(i) + (last ? 6 : -6), y: y(t) + 4, "text-anchor": last ? "start" : "end" };
      g.append(svg("text", { ...at, class: "axis-tick" }, label));
    }
    plot.append(g);
  });
  box.append(plot);
  recordParallel({ metric: chosen, axes: axes.map((a) => a.key), lines });
  return box;
}
