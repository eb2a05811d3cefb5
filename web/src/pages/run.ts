// One run, in three tabs: Overview (state, timing, host, user, config, summary, writers,
// files, media and all its charts), System (its system metrics against time) and Logs (what
// it printed); live while it runs. The tab is in the address (tab=system, tab=logs).
import * as api from "../api";
import type { Json, Run } from "../api";
import { colorOf } from "../charts/colors";
import { ChartGrid, settingsFrom } from "../charts/grid";
import { h } from "../dom";
import { duration, durationOf, flatten, value, when } from "../format";
import { LogsView } from "../logs/view";
import { current, href, setParams } from "../route";
import { MediaSection, mediaKeys } from "../media/section";
import { SystemSection } from "../run/system";
import { writersTable } from "../run/writers";
import { metricKeys } from "./keys";

const LIVE_MS = 2000;
const TABS = ["overview", "system", "logs"] as const;
type Tab = (typeof TABS)[number];

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
    ["user", run.user ?? ""],
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

class RunView {
  private readonly top = h("div", { class: "run-top" });
  private readonly writersBox = h("section", { class: "writers-box" });
  private readonly chartsBox = h("div");
  private readonly media: MediaSection;
  private readonly system: SystemSection;
  private readonly tabs = new Map<Tab, [HTMLButtonElement, HTMLElement]>();
  private logs: LogsView | null = null;
  private grid: ChartGrid | null = null;
  private keys = "";
  private mediaAt: string;
  private timer = 0;

  constructor(
    private run: Run,
    private readonly files: api.RunFile[],
  ) {
    this.media = new MediaSection(run);
    this.system = new SystemSection(run);
    this.mediaAt = JSON.stringify([mediaKeys(run.summary), run.last_step]);
  }

  async open(app: HTMLElement): Promise<() => void> {
    const run = this.run;
    const title = h(
      "h1",
      {},
      h("a", { href: href([]) }, run.entity),
      " / ",
      h("a", { href: href(["p", run.entity, run.project]) }, run.project),
      " / ",
      run.name,
    );
    const main = h(
      "div",
      {},
      this.top,
      this.writersBox,
      h("h2", {}, "Files"),
      filesList(run, this.files),
      this.media.el,
      h("h2", {}, "Charts"),
      this.chartsBox,
    );
    const logsBox = h("div");
    app.append(title, this.tabBar({ overview: main, system: this.system.el, logs: logsBox }));
    app.append(main, this.system.el, logsBox);
    this.draw();
    this.chart();
    this.system.update(run);
    const wanted = current().params.get("tab") as Tab | null;
    this.show(wanted && TABS.includes(wanted) ? wanted : "overview");
    await this.media.load(mediaKeys(run.summary));
    this.timer = window.setInterval(() => void this.live(), LIVE_MS);
    return () => {
      clearInterval(this.timer);
      this.grid?.destroy();
      this.system.destroy();
      this.media.destroy();
    };
  }

  private tabBar(boxes: Record<Tab, HTMLElement>): HTMLElement {
    const bar = h("nav", { class: "tabs", role: "tablist", "aria-label": "run sections" });
    for (const tab of TABS) {
      const button = h(
        "button",
        { type: "button", role: "tab", id: `tab-${tab}`, "data-tab": tab },
        tab[0].toUpperCase() + tab.slice(1),
      );
      button.addEventListener("click", () => this.show(tab));
      boxes[tab].setAttribute("role", "tabpanel");
      this.tabs.set(tab, [button, boxes[tab]]);
      bar.append(button);
    }
    return bar;
  }

  private show(tab: Tab): void {
    for (const [name, [button, box]] of this.tabs) {
      button.setAttribute("aria-selected", String(name === tab));
      box.hidden = name !== tab;
    }
    setParams({ tab: tab === "overview" ? null : tab });
    if (tab === "logs" && !this.logs) {
      this.logs = new LogsView(this.run, current().params.get("logq") ?? "");
      this.tabs.get("logs")?.[1].replaceChildren(this.logs.el);
      void this.logs.load();
    }
  }

  private draw(): void {
    const run = this.run;
    this.top.replaceChildren(
      h("section", {}, h("h2", {}, "Overview"), overview(run)),
      h("section", {}, h("h2", {}, "Config"), values("config", run.config)),
      h("section", {}, h("h2", {}, "Summary"), values("summary", run.summary)),
    );
    const writers = run.writers ?? [];
    this.writersBox.replaceChildren(
      ...(writers.length ? [h("h2", {}, "Writers"), writersTable(writers)] : []),
    );
  }

  /** The user's charts (a panel per metric key; system metrics are in their own tab). */
  private chart(): void {
    const now = metricKeys([this.run]);
    if (now.join("\n") === this.keys) return; // same keys: the panels keep their zoom
    this.keys = now.join("\n");
    this.grid?.destroy();
    this.grid = new ChartGrid(
      now,
      [{ ref: this.run, label: this.run.name, color: colorOf(this.run.id) }],
      settingsFrom(current().params),
    );
    this.chartsBox.replaceChildren(this.grid.el);
  }

  /** Every 2 s while it runs (and once after): its state, new points, lines and media. */
  private async live(): Promise<void> {
    if (this.run.state !== "running") return clearInterval(this.timer);
    const was = this.run;
    this.run = await api.run(was.entity, was.project, was.id);
    await Promise.all([this.grid?.poll([was]), this.system.poll(was), this.logs?.poll(this.run)]);
    this.draw();
    this.chart(); // a key logged for the first time gets its panel
    this.system.update(this.run);
    const now = JSON.stringify([mediaKeys(this.run.summary), this.run.last_step]);
    if (now !== this.mediaAt) {
      this.mediaAt = now; // new media steps (the files already shown are not fetched again)
      await this.media.load(mediaKeys(this.run.summary));
    }
  }
}

export async function runPage(
  app: HTMLElement,
  entity: string,
  project: string,
  id: string,
): Promise<() => void> {
  const [run, files] = await Promise.all([api.run(entity, project, id), api.files(entity, project, id)]);
  return new RunView(run, files).open(app);
}
