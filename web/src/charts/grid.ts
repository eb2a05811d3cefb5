// The charts of a page: a panel per key, grouped by key prefix ("train/", "val/"), a toolbar
// (x axis, log scale, smoothing, density, key search), and fetching only on screen.
import { h } from "../dom";
import { current, setParams } from "../route";
import type { RunRef } from "../history";
import { byKey, Panel, type ChartRun, type ChartSettings, type XAxis, type ZoomSync } from "./panel";

/** Where a grid keeps its state in the address, its x axes and how it groups its panels. */
export interface GridOptions {
  scope?: string; // prefix of its address params ("sys" -> "sys.x"); "" for the user's charts
  axes?: XAxis[]; // the x axes offered (default: step, wall, relative and every logged key)
  groupOf?: (key: string) => string; // a panel's group (default: the key's prefix)
}

const param = (scope: string | undefined, name: string) => (scope ? `${scope}.${name}` : name);

export function settingsFrom(params: URLSearchParams, scope = "", defaultX: XAxis = "step"): ChartSettings {
  const get = (name: string) => params.get(param(scope, name));
  return {
    x: get("x") || defaultX, // step, wall, relative, or a logged key
    log: get("log") === "1",
    outliers: get("outliers") !== "0",
    smoothing: Math.min(0.99, Math.max(0, Number(get("smooth") ?? 0) || 0)),
    density: Math.min(10000, Math.max(100, Number(get("density") ?? 1000) || 1000)),
  };
}

function prefixOf(key: string): string {
  const cut = key.lastIndexOf("/");
  return cut > 0 ? key.slice(0, cut) : "charts";
}

/** ``zoom=MIN,MAX`` (x axis units) from the address, or null. */
function zoomFrom(text: string | null): [number, number] | null {
  const [min, max] = (text ?? "").split(",").map(Number);
  return Number.isFinite(min) && Number.isFinite(max) && min < max ? [min, max] : null;
}

export class ChartGrid {
  readonly el = h("section", { class: "charts" });
  private panels: Panel[] = [];
  private readonly observer: IntersectionObserver;
  private readonly onResize = () => this.panels.forEach((p) => p.loaded && p.resize());

  private zoomRange: [number, number] | null;
  private readonly sync: ZoomSync = {
    cursorKey: "trackd-x",
    range: () => this.zoomRange,
    zoom: (min, max) => {
      this.zoomRange = [min, max];
      setParams({ [this.p("zoom")]: `${min},${max}` });
      this.panels.forEach((p) => void p.zoomTo(min, max));
    },
    reset: () => {
      this.zoomRange = null;
      setParams({ [this.p("zoom")]: null });
      this.panels.forEach((p) => p.resetZoom());
    },
    remove: (key) => {
      this.removed.add(key);
      this.showPanels();
    },
  };
  private readonly removed: Set<string>;
  private searched = "";
  private readonly addBox = h("span");

  constructor(
    private readonly keys: string[],
    runs: ChartRun[],
    private settings: ChartSettings,
    private readonly options: GridOptions = {},
  ) {
    const params = current().params;
    this.zoomRange = zoomFrom(params.get(this.p("zoom")));
    this.removed = new Set((params.get(this.p("hide")) ?? "").split(",").filter(Boolean));
    if (options.scope) {
      this.el.dataset.scope = options.scope;
      this.sync.cursorKey = `trackd-x-${options.scope}`; // another x axis: its own crosshair
    }
    this.observer = new IntersectionObserver((entries) => this.onVisible(entries), { rootMargin: "200px" });
    this.el.append(this.toolbar());
    if (!runs.length || !keys.length) {
      this.el.append(
        h("p", { class: "muted" }, runs.length ? "No metrics logged yet." : "Select runs to chart them."),
      );
      return;
    }
    const groups = new Map<string, string[]>();
    const groupOf = options.groupOf ?? prefixOf;
    // the caller's order where it groups the keys itself; else groups by prefix, keys sorted
    for (const key of options.groupOf ? keys : [...keys].sort()) {
      const group = groups.get(groupOf(key)) ?? [];
      group.push(key);
      groups.set(groupOf(key), group);
    }
    for (const [prefix, members] of groups) {
      const box = h("div", { class: "panels" });
      for (const key of members) {
        const panel = new Panel(key, runs, settings, this.sync);
        this.panels.push(panel);
        box.append(panel.el);
        this.observer.observe(panel.el);
      }
      this.el.append(
        h(
          "details",
          { class: "group", open: true, "data-prefix": prefix },
          h("summary", {}, `${prefix} (${members.length})`),
          box,
        ),
      );
    }
    window.addEventListener("resize", this.onResize);
    this.showPanels();
  }

  /** The name of this grid's address param ``name``. */
  private p(name: string): string {
    return param(this.options.scope, name);
  }

  /** Append new points of running runs to every panel that has drawn. */
  async poll(runs: RunRef[]): Promise<void> {
    await Promise.all(runs.flatMap((run) => this.panels.map((p) => p.poll(run))));
  }

  destroy(): void {
    this.observer.disconnect();
    window.removeEventListener("resize", this.onResize);
    this.panels.forEach((p) => p.destroy());
  }

  private onVisible(entries: IntersectionObserverEntry[]): void {
    performance.mark("trackd:panels-visible");
    for (const entry of entries) {
      if (!entry.isIntersecting) continue;
      const panel = this.panels.find((p) => p.el === entry.target);
      this.observer.unobserve(entry.target);
      if (panel && !panel.loaded) void panel.load();
    }
  }

  private update(change: Partial<ChartSettings>): void {
    this.settings = { ...this.settings, ...change };
    const s = this.settings;
    this.zoomRange = null; // a zoom is in the units of the x axis it was made on
    const first = (this.options.axes ?? ["step"])[0];
    setParams({
      [this.p("zoom")]: null,
      [this.p("outliers")]: s.outliers ? null : "0",
      [this.p("x")]: s.x === first ? null : s.x,
      [this.p("log")]: s.log ? "1" : null,
      [this.p("smooth")]: s.smoothing ? String(s.smoothing) : null,
      [this.p("density")]: s.density === 1000 ? null : String(s.density),
    });
    this.panels.forEach((p) => p.setSettings(s));
  }

  private toolbar(): HTMLElement {
    const s = this.settings;
    const x = h(
      "select",
      { name: "x-axis", "aria-label": "x axis" },
      ...(this.options.axes ?? ["step", "wall", "relative"]).map((v) =>
        h(
          "option",
          { value: v, selected: v === s.x },
          v === "wall" ? "wall time" : v === "relative" ? "relative time" : "step",
        ),
      ),
      // or any logged key: each point's x is that key's value at the same step
      ...(this.options.axes ? [] : [...new Set([...this.keys, ...(byKey(s.x) ? [s.x] : [])])])
        .sort()
        .map((k) => h("option", { value: k, selected: k === s.x }, k)),
    );
    x.addEventListener("change", () => this.update({ x: x.value as XAxis }));
    const log = h("input", { type: "checkbox", name: "log", checked: s.log });
    log.addEventListener("change", () => this.update({ log: log.checked }));
    const outliers = h("input", { type: "checkbox", name: "ignore-outliers", checked: !s.outliers });
    outliers.addEventListener("change", () => this.update({ outliers: !outliers.checked }));
    const smooth = h("input", {
      type: "range",
      name: "smoothing",
      min: 0,
      max: 0.99,
      step: 0.01,
      value: s.smoothing,
    });
    const smoothShown = h("output", {}, String(s.smoothing));
    smooth.addEventListener("input", () => (smoothShown.textContent = smooth.value));
    smooth.addEventListener("change", () => this.update({ smoothing: Number(smooth.value) }));
    const density = h(
      "select",
      { name: "density", "aria-label": "points per chart" },
      ...[250, 1000, 4000, 10000].map((n) =>
        h("option", { value: n, selected: n === s.density }, `${n} points`),
      ),
    );
    density.addEventListener("change", () => this.update({ density: Number(density.value) }));
    const search = h("input", { type: "search", name: "key-search", placeholder: "search keys" });
    search.addEventListener("input", () => {
      this.searched = search.value.trim().toLowerCase();
      this.showPanels();
    });
    return h(
      "div",
      { class: "toolbar" },
      h("label", {}, "x ", x),
      h("label", {}, log, " log y"),
      h("label", {}, outliers, " ignore outliers"),
      h("label", {}, "smoothing ", smooth, smoothShown),
      h("label", {}, density),
      search,
      this.addBox,
    );
  }

  /** Show the panels not removed and matching the key search; offer the removed ones back. */
  private showPanels(): void {
    const text = this.searched;
    for (const panel of this.panels)
      panel.el.hidden =
        this.removed.has(panel.key) || (text !== "" && !panel.key.toLowerCase().includes(text));
    for (const group of this.el.querySelectorAll<HTMLElement>("details.group")) {
      group.hidden = ![...group.querySelectorAll<HTMLElement>(".panel")].some((p) => !p.hidden);
    }
    setParams({ [this.p("hide")]: [...this.removed].join(",") });
    const gone = this.panels.filter((p) => this.removed.has(p.key)).map((p) => p.key);
    if (!gone.length) return this.addBox.replaceChildren();
    const add = h(
      "select",
      { name: "add-panel", "aria-label": "add a removed panel back" },
      h("option", { value: "" }, `add a panel (${gone.length} removed)`),
      ...gone.map((k) => h("option", { value: k }, k)),
    );
    add.addEventListener("change", () => {
      this.removed.delete(add.value);
      this.showPanels();
    });
    this.addBox.replaceChildren(add);
  }
}
