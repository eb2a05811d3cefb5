// The selected runs' media side by side: one media key (images, a table or a histogram), a
// column per run, and one step slider for every column (each shows its last value at or
// before the step). The key and the step are in the address (mkey=, mcstep=).
import * as api from "../api";
import type { Run } from "../api";
import { h } from "../dom";
import { MediaPanel, type MediaContext } from "../media/panel";
import { mediaKeys } from "../media/section";
import type { Point } from "../media/types";
import { current, setParams } from "../route";

export class MediaCompare {
  readonly el = h("details", { class: "media-compare", id: "media-compare" });
  private shown = ""; // what is drawn: runs, key and their last steps
  private key = current().params.get("mkey") ?? "";
  private step: number | null = stepFrom(current().params.get("mcstep"));
  private panels: MediaPanel[] = [];
  private readonly ctx: MediaContext = {
    view: { hidden: new Set(), score: "", threshold: 0 },
    toggle: (key, on) => {
      if (on) this.ctx.view.hidden.delete(key);
      else this.ctx.view.hidden.add(key);
      this.showAll();
    },
  };

  constructor(private readonly colorOf: (run: Run) => string) {
    this.el.open = current().params.get("mcopen") === "1";
    this.el.addEventListener("toggle", () => setParams({ mcopen: this.el.open ? "1" : null }));
  }

  /** Draw ``runs``' media of the chosen key (again only when the runs or their steps changed). */
  async update(runs: Run[]): Promise<void> {
    const keys = [...new Set(runs.flatMap((r) => mediaKeys(r.summary)))].sort();
    if (runs.length < 2 || !keys.length) {
      this.shown = "";
      return this.el.replaceChildren();
    }
    if (!keys.includes(this.key)) this.key = keys[0];
    const id = JSON.stringify([runs.map((r) => [r.id, r.last_step]), this.key]);
    if (id === this.shown) return;
    this.shown = id;
    const key = this.key;
    const found = await Promise.all(
      runs.map((r) => api.media(r.entity, r.project, r.id, [key]).catch(() => ({}) as api.MediaByKey)),
    );
    if (id !== this.shown) return; // runs or key changed while it fetched
    this.panels = runs.map(
      (_, i) => new MediaPanel(key, (found[i][key] ?? []) as unknown as Point[], this.ctx),
    );
    const columns = runs.map((run, i) =>
      h(
        "div",
        { class: "media-column", "data-run": run.id },
        h(
          "div",
          { class: "run-label" },
          h("i", { class: "swatch", style: `background:${this.colorOf(run)}` }),
          run.name,
        ),
        this.panels[i].el,
      ),
    );
    this.el.replaceChildren(
      h("summary", {}, `Media of the ${runs.length} selected runs, side by side`),
      this.toolbar(keys, runs),
      h("div", { class: "media-columns" }, ...columns),
    );
    this.showAll();
  }

  private toolbar(keys: string[], runs: Run[]): HTMLElement {
    const pick = h(
      "select",
      { name: "media-compare-key", "aria-label": "media key" },
      ...keys.map((k) => h("option", { value: k, selected: k === this.key }, k)),
    );
    pick.addEventListener("change", () => {
      this.key = pick.value;
      setParams({ mkey: this.key });
      void this.update(runs);
    });
    const bar = h("div", { class: "toolbar" }, h("label", {}, "key ", pick));
    const steps = [...new Set(this.panels.flatMap((p) => p.points.map((pt) => pt.step)))].sort(
      (a, b) => a - b,
    );
    if (!steps.length) return bar;
    const at =
      this.step === null
        ? steps.length - 1
        : Math.max(0, steps.filter((s) => s <= (this.step ?? 0)).length - 1);
    const slider = h("input", {
      type: "range",
      name: "media-compare-step",
      min: 0,
      max: steps.length - 1,
      step: 1,
      value: at,
      "aria-label": "step of every run's media",
    });
    const shown = h("output", { id: "media-compare-step" }, `step ${steps[at]}`);
    slider.addEventListener("input", () => {
      this.step = steps[Number(slider.value)];
      shown.textContent = `step ${this.step}`;
      setParams({ mcstep: String(this.step) });
      this.showAll();
    });
    bar.append(h("label", {}, "step ", slider, shown));
    return bar;
  }

  private showAll(): void {
    for (const p of this.panels) void p.show(this.step);
  }
}

function stepFrom(text: string | null): number | null {
  return text === null || text === "" || !Number.isFinite(Number(text)) ? null : Number(text);
}
