// The writers of a shared run (several processes writing one run, each with its label): each
// one's state in its colour, host, pid and last step; a crashed writer shows as crashed even
// while the run goes on.
import type { Writer } from "../api";
import { h } from "../dom";
import { value, when } from "../format";

export function writersTable(writers: Writer[]): HTMLElement {
  if (!writers.length) return h("p", { class: "muted", id: "writers" }, "One writer.");
  const head = ["writer", "state", "host", "pid", "last step", "started", "finished", "exit code"];
  const rows = writers.map((w) =>
    h(
      "tr",
      { "data-writer": w.label, "data-state": w.state },
      h(
        "td",
        {},
        w.label,
        w.primary ? h("span", { class: "primary", title: "its finish ends the run" }, " primary") : "",
      ),
      h("td", {}, h("span", { class: `state state-${w.state}` }, w.state)),
      h("td", {}, w.host ?? ""),
      h("td", { class: "num" }, value(w.pid)),
      h("td", { class: "num" }, value(w.last_step)),
      h("td", {}, when(w.started_at)),
      h("td", {}, when(w.finished_at)),
      h("td", { class: "num" }, value(w.exit_code)),
    ),
  );
  return h(
    "table",
    { class: "writers", id: "writers" },
    h("thead", {}, h("tr", {}, ...head.map((c) => h("th", {}, c)))),
    h("tbody", {}, ...rows),
  );
}
