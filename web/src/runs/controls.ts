// The runs table's controls: the filter form, the column chooser and "group rows by".
import { h } from "../dom";
import { parseWhere, type TableQuery } from "./query";

export function filterBar(q: TableQuery, apply: () => void): HTMLElement {
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
    placeholder: "lr > 0.01, summary.loss < 0.5, user = ana",
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

export function columnChooser(
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

export function groupChooser(
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
