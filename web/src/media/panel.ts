// A media panel: one key of a run, shown at the step the page's slider picks: its images
// (with boxes, masks, captions, a class legend to toggle), its table, or for histograms a
// heat map over every step with the chosen step marked.
import { h } from "../dom";
import { value as show } from "../format";
import { recordMedia, type MediaDrawn } from "../charts/registry";
import { figure, type FigureDrawn } from "./figure";
import { heatMap, lastAtOrBefore } from "./heatmap";
import { classColor, classesOf, type ClassEntry, type OverlayView } from "./overlays";
import { imagesOf, kindOf, type Histogram, type ImageFile, type Kind, type Point, type Table } from "./types";

const TABLE_ROWS = 100;

/** What the panels share: the view (toggles, threshold) and how a toggle is made. */
export interface MediaContext {
  view: OverlayView;
  toggle(classKey: string, on: boolean): void;
}

export class MediaPanel {
  readonly el: HTMLElement;
  readonly kind: Kind;
  private readonly body = h("div", { class: "media-body" });
  private readonly legend = h("div", { class: "media-legend" });
  private drawing = 0;

  constructor(
    readonly key: string,
    readonly points: Point[],
    private readonly ctx: MediaContext,
  ) {
    this.kind = kindOf(points[0]?.value) ?? "images";
    this.el = h(
      "div",
      { class: `media-panel media-kind-${this.kind}`, "data-key": key },
      h("div", { class: "panel-title" }, h("span", {}, key), h("span", { class: "muted step-shown" })),
      this.legend,
      this.body,
    );
  }

  /** Show the value at the last step at or before ``step``. */
  async show(step: number | null): Promise<void> {
    const ticket = ++this.drawing;
    const at = step === null ? this.points.length - 1 : lastAtOrBefore(this.points, step);
    const point = this.points[at];
    const drawn: MediaDrawn = {
      key: this.key,
      kind: this.kind,
      state: "drawn",
      step: point?.step ?? null,
      images: 0,
      boxes: 0,
      maskPixels: 0,
      classes: [],
      tableRows: 0,
      heat: null,
    };
    (this.el.querySelector(".step-shown") as HTMLElement).textContent = point ? `step ${point.step}` : "";
    this.el.dataset.state = "loading";
    let content: HTMLElement;
    if (this.kind === "histogram") {
      const [el, heat] = heatMap(this.points as Point<Histogram>[], step);
      [content, drawn.heat] = [el, heat];
      this.legend.replaceChildren();
    } else if (!point) {
      content = h("p", { class: "muted" }, "Nothing logged at or before this step.");
      this.legend.replaceChildren();
    } else if (this.kind === "table") content = await this.table(point.value as Table, drawn);
    else content = await this.images(imagesOf(point.value), drawn);
    if (ticket !== this.drawing) return; // a later step was asked for meanwhile
    this.body.replaceChildren(content);
    this.el.dataset.state = "drawn";
    recordMedia(drawn);
  }

  private async images(images: ImageFile[], drawn: MediaDrawn): Promise<HTMLElement> {
    this.drawLegend(images.flatMap(classesOf), drawn);
    const figures = await Promise.all(images.map((img) => figure(img, this.ctx.view)));
    this.count(
      figures.map(([, d]) => d),
      drawn,
    );
    drawn.images = images.length;
    // grouping N: the images go in rows of N (wandb's "grouping")
    const size = images[0]?.grouping ?? 0;
    const box = h("div", { class: "media-images" });
    if (size > 1)
      for (let i = 0; i < figures.length; i += size)
        box.append(h("div", { class: "media-group" }, ...figures.slice(i, i + size).map(([el]) => el)));
    else box.append(...figures.map(([el]) => el));
    return box;
  }

  private async table(table: Table, drawn: MediaDrawn): Promise<HTMLElement> {
    const rows = table.data.slice(0, TABLE_ROWS);
    const images: ImageFile[] = [];
    const cells = await Promise.all(
      rows.map((row) =>
        Promise.all(
          row.map(async (cell) => {
            const [img] = imagesOf(cell);
            if (!img) return h("td", {}, show(cell as never));
            images.push(img);
            const [el, d] = await figure(img, this.ctx.view, 96);
            this.count([d], drawn);
            drawn.images++;
            return h("td", { class: "image-cell" }, el);
          }),
        ),
      ),
    );
    this.drawLegend(images.flatMap(classesOf), drawn);
    drawn.tableRows = rows.length;
    const more = table.data.length > rows.length ? `first ${rows.length} of ${table.data.length} rows` : "";
    return h(
      "div",
      { class: "media-table-box" },
      h(
        "table",
        { class: "media-table" },
        h("thead", {}, h("tr", {}, ...table.columns.map((c) => h("th", {}, c)))),
        h("tbody", {}, ...cells.map((tds) => h("tr", {}, ...tds))),
      ),
      more ? h("p", { class: "muted" }, more) : null,
    );
  }

  private count(figures: FigureDrawn[], drawn: MediaDrawn): void {
    for (const d of figures) {
      drawn.boxes += d.boxes;
      drawn.maskPixels += d.maskPixels;
    }
  }

  /** A checkbox per class of the boxes and masks shown (one per kind, group and id). */
  private drawLegend(classes: ClassEntry[], drawn: MediaDrawn): void {
    const seen = new Map<string, ClassEntry>();
    for (const c of classes) seen.set(c.key, c);
    drawn.classes = [...seen.keys()];
    const items = [...seen.values()].map((c) => {
      const box = h("input", {
        type: "checkbox",
        checked: !this.ctx.view.hidden.has(c.key),
        "data-class": c.key,
        "aria-label": `${c.kind} ${c.group}: ${c.name}`,
      });
      box.addEventListener("change", () => this.ctx.toggle(c.key, box.checked));
      return h(
        "label",
        { class: "class-toggle" },
        box,
        h("i", { class: "swatch", style: `background:${classColor(c.id)}` }),
        `${c.kind === "masks" ? "mask" : "box"} ${c.group}: ${c.name}`,
      );
    });
    this.legend.replaceChildren(...items);
  }
}
