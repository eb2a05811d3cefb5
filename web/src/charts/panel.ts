// One chart: one metric key for every run on the page, drawn with uPlot.
import uPlot from "uplot";

import { appendSeries, emptySeries, fetchSeries, type RunRef, type Series } from "../history";
import { h } from "../dom";
import { seconds, value as show } from "../format";
import { faint } from "./colors";
import { drawn, type Drawn, type Line, type LineSource, type Marker } from "./lines";
import { recordPanel, type LineDrawn, type RunDrawn } from "./registry";

/** "step", "wall" (time), "relative" (time since the run started), or any logged key. */
export type XAxis = string;

export const byKey = (x: XAxis): boolean => x !== "step" && x !== "wall" && x !== "relative";

export interface ChartSettings {
  x: XAxis;
  log: boolean;
  outliers: boolean; // false: the y axis spans the 1st to 99th percentile, so a spike does not flatten the rest
  smoothing: number; // EMA weight, 0 (off) to 0.99
  density: number; // points per run and panel asked of the server
}

/** The panels' shared zoom: one drag zooms every panel, a double-click resets them all. */
export interface ZoomSync {
  cursorKey: string; // panels with the same key move one crosshair (the same x axis)
  range(): [number, number] | null;
  zoom(min: number, max: number): void;
  reset(): void;
  remove(key: string): void; // the panel's × (not zoom, but the panels share it all the same)
}

export interface ChartRun {
  ref: RunRef;
  label: string;
  color: string;
  group?: string | null; // runs with a group are drawn together: mean line, min-max band
}

const HEIGHT = 220;

export class Panel {
  readonly el: HTMLElement;
  loaded = false;
  private readonly plotEl = h("div", { class: "plot" });
  private readonly legendEl = h("div", { class: "legend" });
  private full = new Map<string, Series>(); // by run id: the whole run, downsampled
  private zoom: { min: number; max: number; data: Map<string, Series> } | null = null;
  private plot: uPlot | null = null;
  private markers: Marker[] = [];
  private lines: Line[] = [];

  constructor(
    readonly key: string,
    private runs: ChartRun[],
    private settings: ChartSettings,
    private readonly sync: ZoomSync,
  ) {
    const remove = h(
      "button",
      {
        type: "button",
        class: "remove",
        "aria-label": `remove the panel ${key}`,
        title: "remove this panel",
      },
      "×",
    );
    remove.addEventListener("click", () => sync.remove(key));
    this.el = h(
      "div",
      { class: "panel", "data-key": key },
      h("div", { class: "panel-title" }, h("span", {}, key), remove),
      this.plotEl,
      this.legendEl,
    );
    this.record("waiting");
  }

  /** Fetch the whole range of every run (downsampled) and draw. */
  async load(): Promise<void> {
    this.loaded = true;
    this.record("loading");
    try {
      const samples = this.settings.density;
      const x = this.fetchX();
      const got = await Promise.all(this.runs.map((r) => fetchSeries(r.ref, this.key, { samples }, x)));
      this.runs.forEach((r, i) => this.full.set(r.ref.id, got[i]));
      this.draw(true);
      const range = this.sync.range();
      if (range) await this.zoomTo(...range);
    } catch (err) {
      this.record("error");
      this.plotEl.textContent = `could not load ${this.key}: ${(err as Error).message}`;
    }
  }

  /** Append the points a running run logged after the last step this panel has. */
  async poll(run: RunRef): Promise<void> {
    const series = this.full.get(run.id);
    if (!this.loaded || !series) return;
    const last = series.step.length ? series.step[series.step.length - 1] : -1;
    const range = { minStep: last + 1, samples: this.settings.density };
    const more = await fetchSeries(run, this.key, range, this.fetchX());
    const now = this.full.get(run.id) ?? series; // a poll that overlapped another is cut off
    const joined = appendSeries(now, more);
    if (joined === now) return;
    this.full.set(run.id, joined);
    if (!this.zoom) this.draw(false);
  }

  setSettings(settings: ChartSettings): void {
    const refetch =
      settings.density !== this.settings.density || this.fetchX() !== Panel.fetchXOf(settings.x);
    this.settings = settings;
    if (!this.loaded) return;
    this.zoom = null;
    this.destroyPlot();
    if (refetch) {
      this.full = new Map();
      void this.load();
    } else this.draw(true);
  }

  resize(): void {
    this.plot?.setSize({ width: this.width(), height: HEIGHT });
  }

  destroy(): void {
    this.destroyPlot();
    delete window.trackd.panels[this.key];
  }

  private width(): number {
    return Math.max(200, this.plotEl.clientWidth || this.el.clientWidth - 16);
  }

  private destroyPlot(): void {
    this.plot?.destroy();
    this.plot = null;
  }

  /** The bulk endpoint's ``x``: a logged key, or "step" (each point's time always comes). */
  private static fetchXOf(x: XAxis): string {
    return byKey(x) ? x : "step";
  }

  private fetchX(): string {
    return Panel.fetchXOf(this.settings.x);
  }

  private xs(run: ChartRun, s: Series): Float64Array {
    if (this.settings.x === "step") return s.step;
    if (this.settings.x === "wall") return s.time;
    if (byKey(this.settings.x)) return s.x ?? new Float64Array(0);
    const t0 = this.full.get(run.ref.id)?.time[0] ?? s.time[0] ?? 0;
    return s.time.map((t) => t - t0);
  }

  /** What to draw: a line per run (or group of runs), from the series shown. */
  private build(): Drawn {
    const source = this.zoom?.data ?? this.full;
    const sources: LineSource[] = this.runs.map((run) => {
      const series = source.get(run.ref.id) ?? emptySeries();
      return {
        id: run.ref.id,
        label: run.label,
        color: run.color,
        group: run.group ?? null,
        xs: this.xs(run, series),
        series,
      };
    });
    const built = drawn(sources, this.settings.smoothing, this.settings.log);
    this.lines = built.lines;
    this.markers = built.markers;
    return built;
  }

  private draw(resetScales: boolean): void {
    if ([...this.full.values()].every((s) => s.step.length === 0)) {
      this.destroyPlot();
      this.plotEl.replaceChildren(
        h(
          "p",
          { class: "muted empty" },
          "No history for this key (a summary value only, or nothing logged yet).",
        ),
      );
      this.record("drawn");
      return;
    }
    const started = performance.now();
    const built = this.build();
    if (this.plot) {
      this.plot.setData(built.data, resetScales);
    } else {
      this.plotEl.replaceChildren();
      this.plot = new uPlot(this.options(built), built.data, this.plotEl);
      this.plot.over.addEventListener("dblclick", () => this.sync.reset());
    }
    if (this.zoom) this.plot.setScale("x", { min: this.zoom.min, max: this.zoom.max });
    this.record("drawn");
    performance.measure("trackd:panel-draw", { start: started, detail: { key: this.key } });
  }

  private options(built: Drawn): uPlot.Options {
    const ink = getComputedStyle(document.body).color || "#222";
    const grid = { stroke: faint(ink.startsWith("#") ? ink : "#888888", 0.12), width: 1 };
    const axis = { stroke: ink, grid, ticks: grid };
    const xValues = this.settings.x === "relative" ? seconds : show;
    const xAxis =
      this.settings.x === "wall"
        ? axis
        : { ...axis, values: (_u: uPlot, splits: number[]) => splits.map((v) => xValues(v)) };
    return {
      width: this.width(),
      height: HEIGHT,
      series: built.series,
      bands: built.bands,
      legend: { show: false },
      scales: { x: { time: this.settings.x === "wall" }, y: this.yScale() },
      axes: [
        xAxis,
        { ...axis, size: 60, values: (_u: uPlot, splits: number[]) => splits.map((v) => show(v)) },
      ],
      // the crosshair moves on every panel of the page at once
      cursor: {
        drag: { x: true, y: false, setScale: false },
        bind: { dblclick: () => null },
        sync: { key: this.sync.cursorKey },
      },
      hooks: {
        setSelect: [(u) => this.onSelect(u)],
        setCursor: [(u) => this.onCursor(u)],
        // uPlot commits scales and data when it draws: record what is on screen then
        draw: [(u) => this.drawMarkers(u), () => this.record("drawn")],
      },
    };
  }

  private yScale(): uPlot.Scale {
    if (this.settings.log) return { distr: 3 };
    if (this.settings.outliers) return {};
    return { range: (u: uPlot, min: number, max: number) => robustRange(u, min, max) };
  }

  private onSelect(u: uPlot): void {
    if (u.select.width < 3) return;
    const min = u.posToVal(u.select.left, "x");
    const max = u.posToVal(u.select.left + u.select.width, "x");
    u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
    this.sync.zoom(min, max);
  }

  /** Fetch ``[min, max]`` of the x axis again at full density, and show only it. */
  async zoomTo(min: number, max: number): Promise<void> {
    if (!this.loaded || !this.full.size) return; // it zooms once it has loaded
    const data = new Map<string, Series>();
    await Promise.all(
      this.runs.map(async (run) => {
        const s = this.full.get(run.ref.id);
        if (!s || !s.step.length) return;
        const xs = this.xs(run, s);
        let range = { minStep: Math.floor(min), maxStep: Math.ceil(max) };
        if (this.settings.x !== "step") {
          // time or a key on the x axis: the steps whose points fall in the range
          const inside = s.step.filter((_, i) => xs[i] >= min && xs[i] <= max);
          if (!inside.length) return data.set(run.ref.id, emptySeries());
          range = { minStep: inside[0], maxStep: inside[inside.length - 1] };
        }
        const samples = this.settings.density;
        data.set(run.ref.id, await fetchSeries(run.ref, this.key, { ...range, samples }, this.fetchX()));
      }),
    );
    this.zoom = { min, max, data };
    this.draw(false);
  }

  resetZoom(): void {
    if (!this.zoom) return;
    this.zoom = null;
    this.draw(true);
  }

  private onCursor(u: uPlot): void {
    const idx = u.cursor.idx;
    if (idx === null || idx === undefined) {
      this.legendEl.replaceChildren();
      return;
    }
    const x = u.data[0][idx];
    const xText =
      this.settings.x === "wall"
        ? new Date(x * 1000).toLocaleString()
        : this.settings.x === "relative"
          ? seconds(x)
          : show(x);
    const items = this.lines.map((line) => {
      const raw = u.data[line.raw][idx];
      const smooth = line.smooth === null ? null : u.data[line.smooth][idx];
      if (raw === null || raw === undefined) return null;
      const text = smooth !== null && smooth !== undefined ? `${show(raw)} (${show(smooth)})` : show(raw);
      return h(
        "span",
        { class: "item" },
        h("i", { class: "swatch", style: `background:${line.color}` }),
        `${line.label} ${text}`,
      );
    });
    this.legendEl.replaceChildren(
      h("span", { class: "x" }, `${this.settings.x} ${xText}`),
      ...items.filter((i): i is HTMLSpanElement => i !== null),
    );
  }

  /** NaN and infinities: a marker at the top (NaN, +inf) or bottom (-inf) of the plot. */
  private drawMarkers(u: uPlot): void {
    const ctx = u.ctx;
    const { top, height } = u.bbox;
    const size = 5 * devicePixelRatio;
    for (const m of this.markers) {
      const x = u.valToPos(m.x, "x", true);
      if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
      const y = m.kind === "-inf" ? top + height - size : top + size;
      ctx.fillStyle = m.color;
      ctx.beginPath();
      if (m.kind === "nan") ctx.arc(x, y, size * 0.8, 0, 2 * Math.PI);
      else {
        const d = m.kind === "inf" ? -1 : 1;
        ctx.moveTo(x, y + d * size);
        ctx.lineTo(x - size, y - d * size);
        ctx.lineTo(x + size, y - d * size);
      }
      ctx.fill();
    }
  }

  private record(state: "waiting" | "loading" | "drawn" | "error"): void {
    const source = this.zoom?.data ?? this.full;
    const lines: Record<string, LineDrawn> = {};
    for (const line of this.lines) lines[line.id] = this.lineDrawn(line);
    const runs: Record<string, RunDrawn> = {};
    for (const run of this.runs) {
      const s = source.get(run.ref.id);
      runs[run.ref.id] = {
        ...(lines[run.ref.id] ?? {
          drawn: 0,
          maxValue: null,
          lastValue: null,
          smoothedLast: null,
          widestBand: null,
        }),
        points: s ? s.step.length : 0,
        nonFinite: s ? s.value.filter((v) => !Number.isFinite(v)).length - s.holes.length : 0,
        minStep: s && s.step.length ? s.step[0] : null,
        maxStep: s && s.step.length ? s.step[s.step.length - 1] : null,
      };
    }
    this.el.dataset.state = state;
    const logY = this.plot?.scales.y.distr === 3;
    const yMax = this.plot?.scales.y.max ?? null;
    const xs = this.plot?.data[0];
    const xRange: [number, number] | null = xs?.length ? [xs[0], xs[xs.length - 1]] : null;
    recordPanel({
      key: this.key,
      state,
      zoomed: this.zoom !== null,
      smoothing: this.settings.smoothing,
      xAxis: this.settings.x,
      xRange,
      logY,
      yMax,
      runs,
      lines,
    });
  }

  /** What uPlot holds for ``line``: its finite values, largest and last, and the smoothed last. */
  private lineDrawn(line: Line): LineDrawn {
    const data = this.plot?.data;
    let drawn = 0;
    let maxValue: number | null = null;
    let lastValue: number | null = null;
    for (const v of data ? data[line.raw] : []) {
      if (v === null || v === undefined) continue;
      drawn++;
      lastValue = v;
      if (maxValue === null || v > maxValue) maxValue = v;
    }
    let smoothedLast: number | null = null;
    for (const v of data && line.smooth !== null ? data[line.smooth] : [])
      if (v !== null && v !== undefined) smoothedLast = v;
    let widestBand: number | null = null;
    if (data && line.band) {
      const [top, bottom] = [data[line.band[0]], data[line.band[1]]];
      for (let i = 0; i < top.length; i++) {
        const [hi, lo] = [top[i], bottom[i]];
        if (hi !== null && hi !== undefined && lo !== null && lo !== undefined)
          widestBand = Math.max(widestBand ?? 0, hi - lo);
      }
    }
    return { drawn, maxValue, lastValue, smoothedLast, widestBand };
  }
}

/** The y range of the middle 98% of the values drawn (with a margin), or uPlot's own. */
function robustRange(u: uPlot, min: number, max: number): uPlot.Range.MinMax {
  const values: number[] = [];
  for (let i = 1; i < u.data.length; i++)
    for (const v of u.data[i]) if (v !== null && v !== undefined) values.push(v);
  if (values.length < 20) return [min, max];
  values.sort((a, b) => a - b);
  const lo = values[Math.floor(values.length * 0.01)];
  const hi = values[Math.ceil(values.length * 0.99) - 1];
  const pad = (hi - lo) * 0.1 || Math.abs(hi) * 0.1 || 1;
  return [lo - pad, hi + pad];
}
