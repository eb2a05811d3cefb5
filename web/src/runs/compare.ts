// The selected runs side by side: every config and summary key a row, a run a column; rows
// whose values differ are marked, and can be the only ones shown.
import type { Json, Run } from "../api";
import { colorOf } from "../charts/colors";
import { h } from "../dom";
import { flatten, value } from "../format";

function rows(runs: Run[], part: "config" | "summary"): [string, string[]][] {
  const flat = runs.map((r) => flatten(r[part]));
  const keys = new Set<string>();
  flat.forEach((f) => Object.keys(f).forEach((k) => !k.startsWith("_") && keys.add(k)));
  return [...keys].sort().map((k) => [`${part}.${k}`, flat.map((f) => value(f[k] as Json | undefined))]);
}

export function compareTable(
  runs: Run[],
  onlyDiffs: boolean,
  open: boolean,
  toggle: (on: boolean) => void,
): HTMLElement {
  const box = h("details", { class: "compare", id: "compare", open });
  if (runs.length < 2) return h("div");
  const only = h("input", { type: "checkbox", name: "only-differences", checked: onlyDiffs });
  only.addEventListener("change", () => toggle(only.checked));
  const head = h(
    "tr",
    {},
    h("th", {}, ""),
    ...runs.map((r) =>
      h("th", {}, h("i", { class: "swatch", style: `background:${colorOf(r.id)}` }), r.name),
    ),
  );
  const body = h("tbody");
  for (const [key, values] of [...rows(runs, "config"), ...rows(runs, "summary")]) {
    const differs = new Set(values).size > 1;
    if (onlyDiffs && !differs) continue;
    body.append(
      h(
        "tr",
        { "data-key": key, class: differs ? "differs" : "" },
        h("th", {}, key),
        ...values.map((v) => h("td", {}, v)),
      ),
    );
  }
  box.append(
    h("summary", {}, `Compare the ${runs.length} selected runs`),
    h("label", {}, only, " only keys whose values differ"),
    h("div", { class: "table-box" }, h("table", { class: "runs" }, h("thead", {}, head), body)),
  );
  return box;
}
