// One run: overview, config, summary, notes, files (download), and all its charts, live.
import * as api from "../api";
import type { Json, Run } from "../api";
import { colorOf } from "../charts/colors";
import { ChartGrid, settingsFrom } from "../charts/grid";
import { h } from "../dom";
import { duration, durationOf, flatten, value, when } from "../format";
import { current, href } from "../route";
import { MediaSection, mediaKeys } from "../media/section";
import { metricKeys } from "./keys";

const LIVE_MS = 2000;

function table(id: string, rows: [string, Node | string][]): HTMLElement {
  return h(
    "table",
    { class: "kv", id },
    h("tbody", {}, ...rows.map(([k, v]) => h("tr", { "data-key": k }, h("th", {}, k), h("td", {}, v)))),
  );
}

function overview(run: Run): HTMLElement {
  return table("overview", [
    ["state", h("span", { class: `state state-${run.state}`, id: "run-state" }, run.state)],
    ["created", when(run.created_at)],
    ["finished", when(run.finished_at)],
    ["duration", duration(durationOf(run))],
    ["last step", value(run.last_step)],
    ["host", run.host ?? ""],
    ["program", run.program ?? ""],
    ["git commit", run.git_commit ?? ""],
    ["exit code", value(run.exit_code)],
    ["group", run.group ?? ""],
    ["job type", run.job_type ?? ""],
    ["tags", run.tags.join(", ")],
    ["notes", run.notes ?? ""],
  ]);
}

function values(id: string, obj: Record<string, Json>): HTMLElement {
  const flat = Object.entries(flatten(obj)).filter(([k]) => !k.startsWith("_"));
  return flat.length
    ? table(
        id,
        flat.map(([k, v]) => [k, value(v)]),
      )
    : h("p", { class: "muted", id }, "none");
}

function filesList(run: Run, files: api.RunFile[]): HTMLElement {
  if (!files.length) return h("p", { class: "muted", id: "files" }, "No files.");
  const rows = files.map((f) => {
    const get = h("button", { type: "button", class: "download", "data-file": f.name }, "download");
    get.addEventListener("click", () => void api.download(run.entity, run.project, run.id, f.name));
    return h(
      "tr",
      {},
      h("td", {}, f.name),
      h("td", { class: "num" }, `${f.size} B`),
      h("td", {}, when(f.updated)),
      h("td", {}, get),
    );
  });
  return h("table", { class: "files", id: "files" }, h("tbody", {}, ...rows));
}

export async function runPage(
  app: HTMLElement,
  entity: string,
  project: string,
  id: string,
): Promise<() => void> {
  const [first, files] = await Promise.all([api.run(entity, project, id), api.files(entity, project, id)]);
  let run = first;
  const top = h("div", { class: "run-top" });
  const draw = () =>
    top.replaceChildren(
      h("section", {}, h("h2", {}, "Overview"), overview(run)),
      h("section", {}, h("h2", {}, "Config"), values("config", run.config)),
      h("section", {}, h("h2", {}, "Summary"), values("summary", run.summary)),
    );
  draw();
  const title = h(
    "h1",
    {},
    h("a", { href: href([]) }, entity),
    " / ",
    h("a", { href: href(["p", entity, project]) }, project),
    " / ",
    run.name,
  );
  const chartsBox = h("div");
  let grid: ChartGrid | null = null;
  let keys = "";
  const chart = () => {
    const now = metricKeys([run]);
    if (now.join("\n") === keys) return; // same keys: the panels keep their zoom
    keys = now.join("\n");
    grid?.destroy();
    grid = new ChartGrid(
      now,
      [{ ref: run, label: run.name, color: colorOf(run.id) }],
      settingsFrom(current().params),
    );
    chartsBox.replaceChildren(grid.el);
  };
  chart();
  const media = new MediaSection(run);
  let mediaAt = JSON.stringify([mediaKeys(run.summary), run.last_step]);
  app.append(title, top, h("h2", {}, "Files"), filesList(run, files), media.el);
  app.append(h("h2", {}, "Charts"), chartsBox);
  await media.load(mediaKeys(run.summary));

  const timer = setInterval(async () => {
    if (run.state !== "running") return clearInterval(timer);
    const was = run;
    run = await api.run(entity, project, id);
    await grid?.poll([was]); // once more after it finished: its last points
    draw();
    chart(); // a key logged for the first time gets its panel
    const now = JSON.stringify([mediaKeys(run.summary), run.last_step]);
    if (now !== mediaAt) {
      mediaAt = now; // new media steps (the files already shown are not fetched again)
      await media.load(mediaKeys(run.summary));
    }
  }, LIVE_MS);
  return () => {
    clearInterval(timer);
    grid?.destroy();
    media.destroy();
  };
}
