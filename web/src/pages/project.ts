// A project: the runs table (filter, sort, columns, pages, selection) and charts of the
// selected runs, kept live while any of them runs.
import * as api from "../api";
import type { Run } from "../api";
import { colorOf } from "../charts/colors";
import { ChartGrid, settingsFrom } from "../charts/grid";
import { h } from "../dom";
import { current, href, setParams } from "../route";
import { field, inBrowser, parseWhere, serverFilters, type TableQuery } from "../runs/query";
import { value } from "../format";
import { compareTable } from "../runs/compare";
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

export async function projectPage(
  app: HTMLElement,
  entity: string,
  project: string,
  params: URLSearchParams,
): Promise<() => void> {
  const q = queryFrom(params);
  let offset = Math.max(0, Number(params.get("page") ?? 0) || 0) * PAGE;
  let selected: string[] | null =
    params.get("runs") !== null ? (params.get("runs") ?? "").split(",").filter(Boolean) : null;
  let groupBy = params.get("by") ?? "";
  let shown: string[] | null = params.get("cols")?.split(",").filter(Boolean) ?? null;
  const known = new Map<string, Run>();
  let pageRuns: Run[] = [];
  let grid: ChartGrid | null = null;
  let chartedKey = "";

  const problem = h("p", { class: "error", role: "alert" });
  const tableBox = h("div", { class: "table-box" });
  const pager = h("nav", { class: "pager", "aria-label": "pages" });
  const chooser = h("details", { class: "columns" }, h("summary", {}, "Columns"));
  const groupBox = h("span", { class: "group-by" });
  const chartsBox = h("div");
  const compareBox = h("div");
  let onlyDiffs = params.get("diff") === "1";
  const drawCompare = () => {
    const runs = (selected ?? []).map((id) => known.get(id)).filter((r): r is Run => r !== undefined);
    const open = compareBox.querySelector("details")?.open ?? false;
    compareBox.replaceChildren(
      compareTable(runs, onlyDiffs, open, (on) => {
        onlyDiffs = on;
        setParams({ diff: on ? "1" : null });
        drawCompare();
      }),
    );
  };
  app.append(
    h("h1", {}, h("a", { href: href([]) }, entity), " / ", project),
    filterBar(q, apply),
    groupBox,
    chooser,
    problem,
    tableBox,
    pager,
    compareBox,
    h("h2", {}, "Charts"),
    chartsBox,
  );

  function apply(): void {
    offset = 0;
    setParams({
      state: q.state,
      tags: q.tags.join(","),
      group: q.group,
      q: q.search,
      where: q.where,
      sort: q.order === "-created_at" ? null : q.order,
      page: null,
    });
    void loadTable();
  }

  async function loadTable(first = false): Promise<void> {
    problem.textContent = "";
    let filters: object;
    try {
      filters = serverFilters(q);
    } catch (err) {
      problem.textContent = (err as Error).message;
      return;
    }
    let page: { runs: Run[]; total: number };
    try {
      const answer = await api.runs(entity, project, { filters, order: q.order, limit: PAGE, offset });
      // until the server pages (answer.total), it answers every matching run: page here
      page =
        answer.total === undefined
          ? inBrowser(answer.runs, q, offset, PAGE)
          : { runs: inBrowser(answer.runs, { ...q, order: "" }, 0, PAGE).runs, total: answer.total };
    } catch (err) {
      if (first) throw err; // a project the key may not see: the page is the error alone
      problem.textContent = (err as Error).message;
      return;
    }
    pageRuns = page.runs;
    pageRuns.forEach((r) => known.set(r.id, r));
    if (selected === null) selected = pageRuns.slice(0, 5).map((r) => r.id);
    drawTable(page.total);
    if (window.trackd.runsTableAt === null) window.trackd.runsTableAt = performance.now();
    void loadCharts();
  }

  // with rows grouped, the charts draw a line per group, in the group's colour
  const groupOf = (r: Run) => value(field(r, groupBy)) || "(none)";
  const lineColor = (r: Run) => (groupBy ? colorOf(`group:${groupOf(r)}`) : colorOf(r.id));
  let shownTotal = 0;
  function drawTable(total: number): void {
    shownTotal = total;
    const columns = allColumns([...known.values()]);
    const visible = shown ?? DEFAULT_COLUMNS;
    const chosen = visible
      .map((id) => columns.find(([c]) => c === id))
      .filter((c): c is [string, string] => c !== undefined);
    chooser.replaceChildren(
      chooser.firstChild as Node,
      columnChooser(columns, visible, (next) => {
        shown = next;
        setParams({ cols: next.join(",") });
        drawTable(total);
      }),
    );
    groupBox.replaceChildren(
      groupChooser(columns, groupBy, (by) => {
        groupBy = by;
        setParams({ by });
        drawTable(total);
        void loadCharts(); // grouped rows chart as groups
      }),
    );
    const sel = selected ?? [];
    sel.forEach((id) => known.has(id) && lineColor(known.get(id) as Run));
    const focused = document.activeElement?.closest("#runs-table tr[data-run]") as HTMLElement | null;
    const inside =
      focused && document.activeElement !== focused ? document.activeElement?.getAttribute("type") : null;
    tableBox.replaceChildren(
      runsTable(pageRuns, {
        columns: chosen,
        groupBy,
        colorOf: lineColor,
        order: q.order,
        selected: sel,
        onSort: (order) => {
          q.order = order;
          apply();
        },
        onSelect: (id, on) => {
          selected = on ? [...sel.filter((s) => s !== id), id] : sel.filter((s) => s !== id);
          setParams({ runs: selected.join(",") });
          drawTable(total);
          void loadCharts();
        },
      }),
    );
    if (focused) {
      // a redraw (a tick, a live update) keeps the keyboard where it was
      const again = tableBox.querySelector<HTMLElement>(
        `tr[data-run="${CSS.escape(focused.dataset.run ?? "")}"]`,
      );
      (inside === "checkbox" ? again?.querySelector<HTMLElement>("input[type=checkbox]") : again)?.focus();
    }
    tableBox.dataset.total = String(total);
    const pages = Math.max(1, Math.ceil(total / PAGE));
    const at = Math.floor(offset / PAGE);
    const step = (by: number) => {
      offset = (at + by) * PAGE;
      setParams({ page: at + by ? String(at + by) : null });
      void loadTable();
    };
    const prev = h("button", { type: "button", disabled: at === 0 }, "‹ previous");
    const next = h("button", { type: "button", disabled: at + 1 >= pages }, "next ›");
    prev.addEventListener("click", () => step(-1));
    next.addEventListener("click", () => step(1));
    pager.replaceChildren(
      prev,
      h("span", { id: "runs-count" }, `${total} runs · page ${at + 1} of ${pages}`),
      next,
    );
  }

  async function loadCharts(): Promise<void> {
    const ids = selected ?? [];
    const missing = ids.filter((id) => !known.has(id));
    const found = await Promise.all(missing.map((id) => api.run(entity, project, id).catch(() => null)));
    found.forEach((r) => r && known.set(r.id, r));
    const runs = ids.map((id) => known.get(id)).filter((r): r is Run => r !== undefined);
    drawCompare();
    const keys = metricKeys(runs);
    const id = JSON.stringify([ids, keys, groupBy]);
    if (id === chartedKey) return; // same runs and keys: the panels keep their zoom
    chartedKey = id;
    grid?.destroy();
    const line = (r: Run) => ({
      ref: r,
      label: r.name,
      group: groupBy ? groupOf(r) : null,
      color: lineColor(r),
    });
    grid = new ChartGrid(keys, runs.map(line), settingsFrom(current().params));
    chartsBox.replaceChildren(grid.el);
  }

  async function live(): Promise<void> {
    const running = [...known.values()].filter(
      (r) =>
        r.state === "running" && (pageRuns.some((p) => p.id === r.id) || (selected ?? []).includes(r.id)),
    );
    if (!running.length) return;
    const fresh = await Promise.all(running.map((r) => api.run(entity, project, r.id).catch(() => null)));
    fresh.forEach((r) => r && known.set(r.id, r));
    const charted = running.filter((r) => (selected ?? []).includes(r.id));
    await grid?.poll(charted);
    // only the running runs' rows change: no list request (a project may hold 10,000 runs)
    pageRuns = pageRuns.map((r) => known.get(r.id) ?? r);
    drawTable(shownTotal);
    void loadCharts(); // a key logged for the first time gets its panel
  }

  await loadTable(true);
  const timer = setInterval(() => void live(), LIVE_MS);
  return () => {
    clearInterval(timer);
    grid?.destroy();
  };
}

function filterBar(q: TableQuery, apply: () => void): HTMLElement {
  const state = h(
    "select",
    { name: "state", "aria-label": "state" },
    ...["", "running", "finished", "failed", "crashed"].map((s) =>
      h("option", { value: s, selected: s === q.state }, s || "any state"),
    ),
  );
  const search = h("input", { type: "search", name: "search", placeholder: "name", value: q.search });
  const tags = h("input", {
    type: "text",
    name: "tags",
    placeholder: "tags (any of a, b)",
    value: q.tags.join(", "),
  });
  const group = h("input", { type: "text", name: "group", placeholder: "group", value: q.group });
  const where = h("input", {
    type: "text",
    name: "where",
    placeholder: "lr > 0.01, summary.loss < 0.5",
    value: q.where,
    size: 30,
  });
  const problem = h("span", { class: "error" });
  const form = h(
    "form",
    { class: "filters", id: "filters" },
    state,
    search,
    tags,
    group,
    where,
    h("button", { type: "submit" }, "Filter"),
    problem,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    try {
      parseWhere(where.value);
    } catch (err) {
      problem.textContent = (err as Error).message;
      return;
    }
    problem.textContent = "";
    Object.assign(q, {
      state: state.value,
      search: search.value.trim(),
      tags: tags.value
        .split(",")
        .map((t) => t.trim())
        .filter(Boolean),
      group: group.value.trim(),
      where: where.value.trim(),
    });
    apply();
  });
  state.addEventListener("change", () => form.requestSubmit());
  return form;
}

function columnChooser(
  columns: [string, string][],
  visible: string[],
  change: (next: string[]) => void,
): HTMLElement {
  const box = h("div", { class: "column-list" });
  for (const [id, label] of columns) {
    const input = h("input", { type: "checkbox", name: "column", value: id, checked: visible.includes(id) });
    input.addEventListener("change", () =>
      change(input.checked ? [...visible, id] : visible.filter((c) => c !== id)),
    );
    const kind = id.startsWith("config.") ? "config " : id.startsWith("summary.") ? "summary " : "";
    box.append(h("label", {}, input, ` ${kind}${label}`));
  }
  return box;
}

function groupChooser(
  columns: [string, string][],
  current: string,
  change: (by: string) => void,
): HTMLElement {
  const options = [
    ["", "nothing"],
    ["group", "group"],
    ["job_type", "job type"],
    ["state", "state"],
    ...columns.filter(([id]) => id.startsWith("config.")),
  ];
  const select = h(
    "select",
    { name: "group-by", "aria-label": "group rows by" },
    ...options.map(([id, label]) =>
      h(
        "option",
        { value: id, selected: id === current },
        id.startsWith("config.") ? `config ${label}` : label,
      ),
    ),
  );
  select.addEventListener("change", () => change(select.value));
  return h("label", {}, "group rows by ", select);
}
