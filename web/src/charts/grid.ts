// The charts of a page: a panel per key, grouped by key prefix ("train/", "val/"), a toolbar
// (x axis, log scale, smoothing, density, key search), and fetching only on screen.
import { h } from "../dom";
import { current, setParams } from "../route";
import type { RunRef } from "../history";
import { byKey, Panel, type ChartRun, type ChartSettings, type XAxis, type ZoomSync } from "./panel";

export function settingsFrom(params: URLSearchParams): ChartSettings {
  const x = params.get("x");
  return {
    x: x || "step", // step, wall, relative, or a logged key
    log: params.get("log") === "1",
    outliers: params.get("outliers") !== "0",
    smoothing: Math.min(0.99, Math.max(0, Number(params.get("smooth") ?? 0) || 0)),
    density: Math.min(10000, Math.max(100, Number(params.get("density") ?? 1000) || 1000)),
  };
}

function prefixOf(key: string): string {
  const cut = key.lastIndexOf("/");
  return cut > 0 ? key.slice(0, cut) : "charts";
}

/** ``zoom=MIN,MAX`` (x axis units) from the address, or null. */
function zoomFrom(params: URLSearchParams): [number, number] | null {
  const [min, max] = (params.get("zoom") ?? "").split(",").map(Number);
  return Number.isFinite(min) && Number.isFinite(max) && min < max ? [min, max] : null;
}

export class ChartGrid {
  readonly el = h("section", { class: "charts" });
  private panels: Panel[] = [];
  private readonly observer: IntersectionObserver;
  private readonly onResize = () => this.panels.forEach((p) => p.loaded && p.resize());

  private zoomRange: [number, number] | null = zoomFrom(current().params);
  private readonly sync: ZoomSync = {
    range: () => this.zoomRange,
    zoom: (min, max) => {
      this.zoomRange = [min, max];
      setParams({ zoom: `${min},${max}` });
      this.panels.forEach((p) => void p.zoomTo(min, max));
    },
    reset: () => {
      this.zoomRange = null;
      setParams({ zoom: null });
      this.panels.forEach((p) => p.resetZoom());
    },
    remove: (key) => {
      this.removed.add(key);
      this.showPanels();
    },
  };
  private readonly removed = new Set((current().params.get("hide") ?? "").split(",").filter(Boolean));
  private searched = "";
  private readonly addBox = h("span");

  constructor(
    private readonly keys: string[],
    runs: ChartRun[],
    private settings: ChartSettings,
  ) {
    this.observer = new IntersectionObserver((entries) => this.onVisible(entries), { rootMargin: "200px" });
    this.el.append(this.toolbar());
    if (!runs.length || !keys.length) {
      this.el.append(
        h("p", { class: "muted" }, runs.length ? "No metrics logged yet." : "Select runs to chart them."),
      );
      return;
    }
    const groups = new Map<string, string[]>();
    for (const key of [...keys].sort()) {
      const group = groups.get(prefixOf(key)) ?? [];
      group.push(key);
      groups.set(prefixOf(key), group);
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
    setParams({
      zoom: null,
      outliers: s.outliers ? null : "0",
      x: s.x === "step" ? null : s.x,
      log: s.log ? "1" : null,
      smooth: s.smoothing ? String(s.smoothing) : null,
      density: s.density === 1000 ? null : String(s.density),
    });
    this.panels.forEach((p) => p.setSettings(s));
  }

  private toolbar(): HTMLElement {
    const s = this.settings;
    const x = h(
      "select",
      { name: "x-axis", "aria-label": "x axis" },
      ...(["step", "wall", "relative"] as XAxis[]).map((v) =>
        h(
          "option",
          { value: v, selected: v === s.x },
          v === "wall" ? "wall time" : v === "relative" ? "relative time" : "step",
        ),
      ),
      // or any logged key: each point's x is that key's value at the same step
      ...[...new Set([...this.keys, ...(byKey(s.x) ? [s.x] : [])])]
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
    setParams({ hide: [...this.removed].join(",") });
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
