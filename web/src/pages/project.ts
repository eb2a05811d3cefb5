// A project: the runs table (filter, sort, columns, groups, pages, selection), the selected
// runs compared side by side, and their charts, kept live while any of them runs.
import * as api from "../api";
import type { Run } from "../api";
import { colorOf } from "../charts/colors";
import { ChartGrid, settingsFrom } from "../charts/grid";
import type { ChartRun } from "../charts/panel";
import { h } from "../dom";
import { counted, value } from "../format";
import { current, href, setParams } from "../route";
import { compareTable } from "../runs/compare";
import { MediaCompare } from "../runs/media_compare";
import { parallelPanel } from "../runs/parallel";
import { columnChooser, filterBar, groupChooser } from "../runs/controls";
import { field, inBrowser, serverFilters, type TableQuery } from "../runs/query";
import { allColumns, runsTable } from "../runs/table";
import { metricKeys } from "./keys";

const PAGE = 50;
const LIVE_MS = 2000;
const DEFAULT_COLUMNS = [
  "name",
  "state",
  "created_at",
  "duration",
  "user",
  "host",
  "tags",
  "group",
  "job_type",
];

function queryFrom(params: URLSearchParams): TableQuery {
  return {
    state: params.get("state") ?? "",
    tags: (params.get("tags") ?? "")
      .split(",")
      .map((t) => t.trim())
      .filter(Boolean),
    group: params.get("group") ?? "",
    search: params.get("q") ?? "",
    where: params.get("where") ?? "",
    order: params.get("sort") ?? "-created_at",
  };
}

const list = (text: string | null): string[] | null =>
  text === null ? null : text.split(",").filter(Boolean);

class ProjectView {
  // the view's state; each part is also in the address
  private readonly q: TableQuery;
  private offset: number;
  private selected: string[] | null; // null: none chosen yet (the first runs are)
  private groupBy: string;
  private shown: string[] | null; // visible columns (null: the default ones)
  private onlyDiffs: boolean;
  private metric: string; // the parallel coordinates' last axis
  // what the page holds
  private readonly known = new Map<string, Run>();
  private pageRuns: Run[] = [];
  private total = 0;
  private grid: ChartGrid | null = null;
  private charted = "";
  private timer = 0;
  // where it goes
  private readonly problem = h("p", { class: "error", role: "alert" });
  private readonly tableBox = h("div", { class: "table-box" });
  private readonly pager = h("nav", { class: "pager", "aria-label": "pages" });
  private readonly chooser = h("details", { class: "columns" }, h("summary", {}, "Columns"));
  private readonly groupBox = h("span", { class: "group-by" });
  private readonly compareBox = h("div");
  private readonly mediaCompare = new MediaCompare((run) => this.lineColor(run));
  private readonly parallelBox = h("div");
  private readonly parallel = h(
    "details",
    { class: "parallel-box", id: "parallel-box" },
    h("summary", {}, "Parallel coordinates (the runs of this page)"),
    this.parallelBox,
  );
  private readonly chartsBox = h("div");

  constructor(
    private readonly entity: string,
    private readonly project: string,
    params: URLSearchParams,
  ) {
    this.q = queryFrom(params);
    this.offset = Math.max(0, Number(params.get("page") ?? 0) || 0) * PAGE;
    this.selected = list(params.get("runs"));
    this.groupBy = params.get("by") ?? "";
    this.shown = list(params.get("cols"));
    this.onlyDiffs = params.get("diff") === "1";
    this.metric = params.get("pc") ?? "";
    // closed unless the address opens it (it would push the charts below the fold)
    this.parallel.open = params.get("pcopen") === "1";
    this.parallel.addEventListener("toggle", () => {
      setParams({ pcopen: this.parallel.open ? "1" : null });
      this.drawParallel();
    });
  }

  async open(app: HTMLElement): Promise<() => void> {
    const title = h("h1", {}, h("a", { href: href([]) }, this.entity), " / ", this.project);
    const filters = filterBar(this.q, () => this.apply());
    app.append(title, filters, this.groupBox, this.chooser, this.problem, this.tableBox, this.pager);
    app.append(this.compareBox, this.mediaCompare.el, this.parallel, h("h2", {}, "Charts"), this.chartsBox);
    await this.loadTable(true);
    this.timer = window.setInterval(() => void this.live(), LIVE_MS);
    return () => {
      clearInterval(this.timer);
      this.grid?.destroy();
    };
  }

  /** The filters or the sort changed: back to the first page. */
  private apply(): void {
    const q = this.q;
    this.offset = 0;
    const sort = q.order === "-created_at" ? null : q.order;
    setParams({
      state: q.state,
      tags: q.tags.join(","),
      group: q.group,
      q: q.search,
      where: q.where,
      sort,
      page: null,
    });
    void this.loadTable();
  }

  private async loadTable(first = false): Promise<void> {
    this.problem.textContent = "";
    try {
      const filters = serverFilters(this.q);
      const order = this.q.order;
      const answer = await api.runs(this.entity, this.project, {
        filters,
        order,
        limit: PAGE,
        offset: this.offset,
        search: this.q.search,
      });
      // the server filters, searches, sorts and pages; one that answers every run (no
      // total) is paged here
      const page =
        answer.total === undefined
          ? inBrowser(answer.runs, this.q, this.offset, PAGE)
          : { runs: answer.runs, total: answer.total };
      this.pageRuns = page.runs;
      this.total = page.total;
    } catch (err) {
      if (first) throw err; // a project the key may not see: the page is the error alone
      this.problem.textContent = (err as Error).message;
      return;
    }
    this.pageRuns.forEach((r) => this.known.set(r.id, r));
    this.selected ??= this.pageRuns.slice(0, 5).map((r) => r.id);
    performance.mark("trackd:runs-answer");
    this.drawTable();
    window.trackd.runsTableAt ??= performance.now();
    performance.mark("trackd:runs-drawn");
    void this.loadCharts();
  }

  // with rows grouped, the charts draw a line per group, in the group's colour
  private groupOf(run: Run): string {
    return value(field(run, this.groupBy)) || "(none)";
  }

  private lineColor(run: Run): string {
    return this.groupBy ? colorOf(`group:${this.groupOf(run)}`) : colorOf(run.id);
  }

  private drawTable(): void {
    const columns = allColumns([...this.known.values()]);
    this.drawControls(columns);
    const visible = this.shown ?? DEFAULT_COLUMNS;
    const chosen = visible
      .map((id) => columns.find(([c]) => c === id))
      .filter((c): c is [string, string] => c !== undefined);
    const selected = this.selected ?? [];
    selected.forEach((id) => this.known.has(id) && this.lineColor(this.known.get(id) as Run));
    const table = runsTable(this.pageRuns, {
      columns: chosen,
      groupBy: this.groupBy,
      colorOf: (run) => this.lineColor(run),
      order: this.q.order,
      selected,
      onSort: (order) => {
        this.q.order = order;
        this.apply();
      },
      onSelect: (id, on) => this.select(id, on),
      onMove: (id, before) => this.moveColumn(id, before),
    });
    keepFocus(this.tableBox, () => this.tableBox.replaceChildren(table));
    this.tableBox.dataset.total = String(this.total);
    this.drawPager();
    this.drawParallel();
  }

  private drawControls(columns: [string, string][]): void {
    const visible = this.shown ?? DEFAULT_COLUMNS;
    const pick = columnChooser(columns, visible, (next) => {
      this.shown = next;
      setParams({ cols: next.join(",") });
      this.drawTable();
    });
    this.chooser.replaceChildren(this.chooser.firstChild as Node, pick);
    const by = groupChooser(columns, this.groupBy, (groupBy) => {
      this.groupBy = groupBy;
      setParams({ by: groupBy });
      this.drawTable();
      void this.loadCharts(); // grouped rows chart as groups
    });
    this.groupBox.replaceChildren(by);
  }

  /** Column ``id`` before column ``before`` (null: last); kept in the address. */
  private moveColumn(id: string, before: string | null): void {
    const rest = (this.shown ?? DEFAULT_COLUMNS).filter((c) => c !== id);
    const at = before === null ? rest.length : rest.indexOf(before);
    rest.splice(at < 0 ? rest.length : at, 0, id);
    this.shown = rest;
    setParams({ cols: rest.join(",") });
    this.drawTable();
    this.tableBox.querySelector<HTMLElement>(`th[data-col="${CSS.escape(id)}"] button`)?.focus();
  }

  private select(id: string, on: boolean): void {
    const rest = (this.selected ?? []).filter((s) => s !== id);
    this.selected = on ? [...rest, id] : rest;
    setParams({ runs: this.selected.join(",") });
    this.drawTable();
    void this.loadCharts();
  }

  private drawParallel(): void {
    if (!this.parallel.open) return this.parallelBox.replaceChildren(); // drawn when opened
    const width = Math.max(600, (this.parallel.clientWidth || 1000) - 24);
    const panel = parallelPanel(
      this.pageRuns,
      this.metric,
      this.selected ?? [],
      (metric) => {
        this.metric = metric;
        setParams({ pc: metric });
        this.drawParallel();
      },
      width,
    );
    this.parallelBox.replaceChildren(panel);
  }

  private drawPager(): void {
    const pages = Math.max(1, Math.ceil(this.total / PAGE));
    const at = Math.floor(this.offset / PAGE);
    const step = (by: number) => {
      this.offset = (at + by) * PAGE;
      setParams({ page: at + by ? String(at + by) : null });
      void this.loadTable();
    };
    const prev = h("button", { type: "button", disabled: at === 0 }, "‹ previous");
    const next = h("button", { type: "button", disabled: at + 1 >= pages }, "next ›");
    prev.addEventListener("click", () => step(-1));
    next.addEventListener("click", () => step(1));
    const count = h(
      "span",
      { id: "runs-count" },
      `${counted(this.total, "run")} · page ${at + 1} of ${pages}`,
    );
    this.pager.replaceChildren(prev, count, next);
  }

  private selectedRuns(): Run[] {
    return (this.selected ?? []).map((id) => this.known.get(id)).filter((r): r is Run => r !== undefined);
  }

  private drawCompare(): void {
    const open = this.compareBox.querySelector("details")?.open ?? false;
    const table = compareTable(this.selectedRuns(), this.onlyDiffs, open, (on) => {
      this.onlyDiffs = on;
      setParams({ diff: on ? "1" : null });
      this.drawCompare();
    });
    this.compareBox.replaceChildren(table);
  }

  /** Charts of the selected runs (the selected runs not on this page fetched first). */
  private async loadCharts(): Promise<void> {
    const missing = (this.selected ?? []).filter((id) => !this.known.has(id));
    const found = await Promise.all(
      missing.map((id) => api.run(this.entity, this.project, id).catch(() => null)),
    );
    found.forEach((r) => r && this.known.set(r.id, r));
    const runs = this.selectedRuns();
    this.drawCompare();
    void this.mediaCompare.update(runs);
    const keys = metricKeys(runs);
    const id = JSON.stringify([runs.map((r) => r.id), keys, this.groupBy]);
    if (id === this.charted) return; // same runs and keys: the panels keep their zoom
    this.charted = id;
    this.grid?.destroy();
    const line = (r: Run): ChartRun => ({
      ref: r,
      label: r.name,
      group: this.groupBy ? this.groupOf(r) : null,
      color: this.lineColor(r),
    });
    performance.mark("trackd:compare-drawn");
    this.grid = new ChartGrid(keys, runs.map(line), settingsFrom(current().params));
    this.chartsBox.replaceChildren(this.grid.el);
    performance.mark("trackd:grid-built");
  }

  /** Every 2 s: the running runs shown, their rows and their new points. */
  private async live(): Promise<void> {
    const selected = this.selected ?? [];
    const shown = (r: Run) => this.pageRuns.some((p) => p.id === r.id) || selected.includes(r.id);
    const running = [...this.known.values()].filter((r) => r.state === "running" && shown(r));
    if (!running.length) return;
    const fresh = await Promise.all(
      running.map((r) => api.run(this.entity, this.project, r.id).catch(() => null)),
    );
    fresh.forEach((r) => r && this.known.set(r.id, r));
    await this.grid?.poll(running.filter((r) => selected.includes(r.id)));
    // only the running runs' rows change: no list request (a project may hold 10,000 runs)
    this.pageRuns = this.pageRuns.map((r) => this.known.get(r.id) ?? r);
    this.drawTable();
    void this.loadCharts(); // a key logged for the first time gets its panel
  }
}

/** Run ``redraw`` (which replaces the table in ``box``) keeping the keyboard where it was. */
function keepFocus(box: HTMLElement, redraw: () => void): void {
  const active = document.activeElement;
  const row = active?.closest("#runs-table tr[data-run]") as HTMLElement | null;
  const onBox = row !== null && active !== row && active?.getAttribute("type") === "checkbox";
  redraw();
  if (!row) return;
  const again = box.querySelector<HTMLElement>(`tr[data-run="${CSS.escape(row.dataset.run ?? "")}"]`);
  (onBox ? again?.querySelector<HTMLElement>("input[type=checkbox]") : again)?.focus();
}

export function projectPage(
  app: HTMLElement,
  entity: string,
  project: string,
  params: URLSearchParams,
): Promise<() => void> {
  return new ProjectView(entity, project, params).open(app);
}
