// A run's media: a panel per key that holds images, tables or histograms, and one step
// slider that drives every panel (the step, class toggles and score threshold are in the
// address).
import * as api from "../api";
import { h } from "../dom";
import type { RunRef } from "../history";
import { current, setParams } from "../route";
import { MediaPanel, type MediaContext } from "./panel";
import { releaseAll } from "./blobs";
import { scoreNames } from "./overlays";
import { imagesOf, kindOf, type Point } from "./types";

/** The keys of ``summary`` whose last value is an image, a table or a histogram. */
export function mediaKeys(summary: Record<string, unknown>): string[] {
  return Object.keys(summary)
    .filter((k) => !k.startsWith("_") && kindOf(summary[k]) !== null)
    .sort();
}

export class MediaSection {
  readonly el = h("section", { class: "media", id: "media" });
  private panels: MediaPanel[] = [];
  private steps: number[] = [];
  private readonly params = current().params;
  private readonly ctx: MediaContext = {
    view: {
      hidden: new Set((this.params.get("mhide") ?? "").split(",").filter(Boolean)),
      score: this.params.get("score") ?? "",
      threshold: Number(this.params.get("thr") ?? 0) || 0,
    },
    toggle: (key, on) => {
      if (on) this.ctx.view.hidden.delete(key);
      else this.ctx.view.hidden.add(key);
      setParams({ mhide: [...this.ctx.view.hidden].join(",") });
      this.showAll();
    },
  };
  private step: number | null = null;

  constructor(private readonly run: RunRef) {}

  /** Fetch the media of ``keys`` and draw a panel for each. */
  async load(keys: string[]): Promise<void> {
    if (!keys.length) return;
    const found = await api.media(this.run.entity, this.run.project, this.run.id, keys);
    this.panels = keys
      .filter((k) => found[k]?.length)
      .map((k) => new MediaPanel(k, found[k] as unknown as Point[], this.ctx));
    const steps = new Set<number>();
    for (const p of this.panels) if (p.kind !== "histogram") p.points.forEach((pt) => steps.add(pt.step));
    this.steps = [...steps].sort((a, b) => a - b);
    const asked = current().params.get("mstep"); // none: the latest step, live
    this.step = asked !== null && asked !== "" ? Number(asked) : (this.steps[this.steps.length - 1] ?? null);
    const boxes = h("div", { class: "media-panels" }, ...this.panels.map((p) => p.el));
    this.el.replaceChildren(h("h2", {}, "Media"), this.toolbar(), boxes);
    this.showAll();
  }

  destroy(): void {
    releaseAll();
  }

  private showAll(): void {
    for (const p of this.panels) void p.show(this.step);
  }

  private toolbar(): HTMLElement {
    const bar = h("div", { class: "toolbar media-toolbar" });
    if (this.steps.length) {
      const at = Math.max(0, this.steps.filter((s) => s <= (this.step ?? Infinity)).length - 1);
      const slider = h("input", {
        type: "range",
        name: "media-step",
        min: 0,
        max: this.steps.length - 1,
        step: 1,
        value: at,
        "aria-label": "media step",
      });
      const shown = h("output", { id: "media-step-shown" }, `step ${this.steps[at]}`);
      slider.addEventListener("input", () => {
        this.step = this.steps[Number(slider.value)];
        shown.textContent = `step ${this.step}`;
        setParams({ mstep: String(this.step) });
        this.showAll();
      });
      bar.append(h("label", {}, "step ", slider, shown));
    }
    const names = new Set<string>();
    for (const p of this.panels)
      for (const pt of p.points)
        imagesOf(pt.value).forEach((i) => scoreNames(i).forEach((n) => names.add(n)));
    if (names.size) bar.append(this.thresholdControl([...names].sort()));
    return bar;
  }

  /** Boxes whose chosen score is below the threshold are hidden. */
  private thresholdControl(names: string[]): HTMLElement {
    const view = this.ctx.view;
    if (!names.includes(view.score)) view.score = names[0];
    const pick = h(
      "select",
      { name: "score-name", "aria-label": "score" },
      ...names.map((n) => h("option", { value: n, selected: n === view.score }, n)),
    );
    const range = h("input", {
      type: "range",
      name: "score-threshold",
      min: 0,
      max: 1,
      step: 0.01,
      value: view.threshold,
      "aria-label": "score threshold",
    });
    const shown = h("output", {}, String(view.threshold));
    const apply = () => {
      view.score = pick.value;
      view.threshold = Number(range.value);
      shown.textContent = range.value;
      setParams({
        score: view.score === names[0] ? null : view.score,
        thr: view.threshold ? String(view.threshold) : null,
      });
      this.showAll();
    };
    pick.addEventListener("change", apply);
    range.addEventListener("input", apply);
    return h("label", {}, "boxes with ", pick, " ≥ ", range, shown);
  }
}
