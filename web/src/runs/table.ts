// The runs table: chosen columns, sort by a header click, a checkbox per run to chart it.
import type { Run } from "../api";
import { h } from "../dom";
import { duration, flatten, value, when } from "../format";
import { href } from "../route";
import { field } from "./query";

export const BASE_COLUMNS: [string, string][] = [
  ["name", "name"],
  ["state", "state"],
  ["created_at", "created"],
  ["duration", "duration"],
  ["user", "user"],
  ["host", "host"],
  ["tags", "tags"],
  ["group", "group"],
  ["job_type", "job type"],
  ["notes", "notes"],
];

/** Every column the runs have: the base ones, then each config and summary key. */
export function allColumns(runs: Run[]): [string, string][] {
  const config = new Set<string>();
  const summary = new Set<string>();
  for (const run of runs) {
    Object.keys(flatten(run.config)).forEach((k) => config.add(k));
    Object.keys(flatten(run.summary)).forEach((k) => !k.startsWith("_") && summary.add(k));
  }
  return [
    ...BASE_COLUMNS,
    ...[...config].sort().map((k): [string, string] => [`config.${k}`, k]),
    ...[...summary].sort().map((k): [string, string] => [`summary.${k}`, k]),
  ];
}

export interface TableView {
  columns: [string, string][]; // shown, in order
  order: string;
  selected: string[];
  onSort: (order: string) => void;
  onSelect: (id: string, on: boolean) => void;
  onMove: (id: string, before: string | null) => void; // column ``id`` moved before ``before`` (null: last)
  colorOf: (run: Run) => string; // the run's colour on the charts
  groupBy: string; // "" or a column: rows come in groups of equal values, in order of first appearance
}

/** ``runs`` in groups of equal ``column`` values (each group where its first run was). */
function grouped(runs: Run[], column: string): [string, Run[]][] {
  const groups = new Map<string, Run[]>();
  for (const run of runs) {
    const key = value(field(run, column)) || "(none)";
    groups.set(key, [...(groups.get(key) ?? []), run]);
  }
  return [...groups];
}

function cell(run: Run, column: string): HTMLElement {
  const td = h("td", { "data-col": column });
  if (column === "name") td.append(h("a", { href: href(["r", run.entity, run.project, run.id]) }, run.name));
  else if (column === "state") td.append(h("span", { class: `state state-${run.state}` }, run.state));
  else if (column === "created_at") td.append(when(run.created_at));
  else if (column === "duration") td.append(duration(durationOf(run)));
  else td.append(value(field(run, column)));
  return td;
}

function durationOf(run: Run): number {
  return Number(field(run, "duration"));
}

export function runsTable(runs: Run[], view: TableView): HTMLTableElement {
  const head = h("tr", {}, h("th", { class: "select" }, ""));
  for (const [id, label] of view.columns) {
    const sorted = view.order.replace(/^[-+]/, "") === id;
    const dir = sorted ? (view.order.startsWith("-") ? "descending" : "ascending") : "none";
    const button = h(
      "button",
      { type: "button", class: "sort", "data-sort": id },
      label,
      sorted ? (dir === "descending" ? " ▼" : " ▲") : "",
    );
    button.addEventListener("click", () =>
      view.onSort(sorted && !view.order.startsWith("-") ? `-${id}` : `+${id}`),
    );
    const group = id.startsWith("config.") ? "config" : id.startsWith("summary.") ? "summary" : "";
    const title = `${id} (drag, or alt+arrow keys, to move the column)`;
    const th = h("th", { "aria-sort": dir, class: group, title, draggable: "true", "data-col": id }, button);
    movable(th, id, view);
    head.append(th);
  }
  const body = h("tbody");
  const groups: [string | null, Run[]][] = view.groupBy ? grouped(runs, view.groupBy) : [[null, runs]];
  for (const [name, members] of groups) {
    if (name !== null) {
      const label = `${view.groupBy.replace(/^(config|summary)\./, "")} = ${name} · ${members.length} run${members.length === 1 ? "" : "s"}`;
      body.append(
        h(
          "tr",
          { class: "group-row", "data-group": name },
          h("th", { colspan: view.columns.length + 1 }, label),
        ),
      );
    }
    for (const run of members) body.append(row(run, view));
  }
  body.addEventListener("keydown", keys);
  return h("table", { class: "runs", id: "runs-table" }, h("thead", {}, head), body);
}

/** A header cell that moves its column: dragged onto another, or alt+left/right on it. */
function movable(th: HTMLElement, id: string, view: TableView): void {
  const ids = view.columns.map(([c]) => c);
  th.addEventListener("dragstart", (e) => e.dataTransfer?.setData("text/x-trackd-column", id));
  th.addEventListener("dragover", (e) => {
    if (e.dataTransfer?.types.includes("text/x-trackd-column")) e.preventDefault();
  });
  th.addEventListener("drop", (e) => {
    const moved = e.dataTransfer?.getData("text/x-trackd-column");
    e.preventDefault();
    if (!moved || moved === id) return;
    // dropped on a column to its right: after it; to its left: before it
    const after = ids.indexOf(moved) < ids.indexOf(id);
    view.onMove(moved, after ? (ids[ids.indexOf(id) + 1] ?? null) : id);
  });
  th.addEventListener("keydown", (e) => {
    if (!e.altKey || (e.key !== "ArrowLeft" && e.key !== "ArrowRight")) return;
    e.preventDefault();
    const at = ids.indexOf(id);
    if (e.key === "ArrowLeft" && at > 0) view.onMove(id, ids[at - 1]);
    if (e.key === "ArrowRight" && at < ids.length - 1) view.onMove(id, ids[at + 2] ?? null);
  });
}

function row(run: Run, view: TableView): HTMLElement {
  const on = view.selected.includes(run.id);
  const box = h("input", { type: "checkbox", "aria-label": `chart ${run.name}`, checked: on });
  box.addEventListener("change", () => view.onSelect(run.id, box.checked));
  const swatch = h("i", { class: "swatch", style: on ? `background:${view.colorOf(run)}` : "" });
  const tr = h(
    "tr",
    { "data-run": run.id, "data-state": run.state, class: on ? "selected" : "", tabindex: 0 },
    h("td", { class: "select" }, box, swatch),
  );
  for (const [id] of view.columns) tr.append(cell(run, id));
  return tr;
}

function runRow(from: Element | null, forward: boolean): HTMLElement | null {
  let at = from;
  do at = at && (forward ? at.nextElementSibling : at.previousElementSibling);
  while (at && !(at as HTMLElement).dataset.run);
  return at as HTMLElement | null;
}

/** Keyboard: up/down (j/k) move between rows, space ticks the row's run, enter opens it. */
function keys(event: KeyboardEvent): void {
  const row = (event.target as HTMLElement).closest("tr");
  if (!row || (event.target instanceof HTMLInputElement && event.key === " ")) return;
  const move = {
    ArrowDown: runRow(row, true),
    j: runRow(row, true),
    ArrowUp: runRow(row, false),
    k: runRow(row, false),
  }[event.key];
  if (move !== undefined) {
    event.preventDefault();
    (move as HTMLElement | null)?.focus();
  } else if (event.key === " " && event.target === row) {
    event.preventDefault();
    row.querySelector<HTMLInputElement>("input[type=checkbox]")?.click();
  } else if (event.key === "Enter" && event.target === row) {
    row.querySelector<HTMLAnchorElement>("td[data-col=name] a")?.click();
  }
}
