// The run page's System section: the run's system metrics (``system/...`` keys, sampled by
// the daemon) charted against time, never against the user's step, in groups of CPU,
// memory, disk, network and GPU. Its settings live in the address under "sys.".
import type { Run } from "../api";
import { colorOf } from "../charts/colors";
import { ChartGrid, settingsFrom } from "../charts/grid";
import { h } from "../dom";
import { current } from "../route";

export const SYSTEM_PREFIX = "system/";
const GROUPS: [RegExp, string][] = [
  [/^(proc\.)?cpu\b/, "CPU"],
  [/^(proc\.)?memory\b/, "memory"],
  [/^disk\b/, "disk"],
  [/^network\b/, "network"],
  [/^gpu\b/, "GPU"],
];

/** The section a system key is charted in ("system/proc.memory.rss_mb" -> "memory"). */
export function systemGroup(key: string): string {
  const rest = key.slice(SYSTEM_PREFIX.length);
  return GROUPS.find(([pattern]) => pattern.test(rest))?.[1] ?? "process";
}

const ORDER = ["CPU", "memory", "disk", "network", "GPU", "process"];

export class SystemSection {
  readonly el = h("section", { id: "system" });
  private grid: ChartGrid | null = null;
  private keys = "";

  constructor(private readonly run: Run) {}

  /** Draw the charts for the run's system keys (again only when they changed). */
  update(run: Run): void {
    const keys = (run.system_keys ?? []).filter((k) => k.startsWith(SYSTEM_PREFIX));
    if (keys.join("\n") === this.keys && this.grid) return;
    this.keys = keys.join("\n");
    this.grid?.destroy();
    this.grid = null;
    if (!keys.length) {
      this.el.replaceChildren(
        h("p", { class: "muted" }, "No system metrics (the daemon samples them unless turned off)."),
      );
      return;
    }
    // groups in a fixed order: the grid draws them in the order of their first key
    const rank = (k: string) => ORDER.indexOf(systemGroup(k));
    const ordered = [...keys].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
    this.grid = new ChartGrid(
      ordered,
      [{ ref: this.run, label: this.run.name, color: colorOf(this.run.id) }],
      settingsFrom(current().params, "sys", "relative"),
      { scope: "sys", axes: ["relative", "wall"], groupOf: systemGroup },
    );
    this.el.replaceChildren(this.grid.el);
  }

  async poll(run: Run): Promise<void> {
    await this.grid?.poll([run]);
  }

  destroy(): void {
    this.grid?.destroy();
  }
}
