// The run page's Logs tab: what the run printed, line by line, with each line's time, the
// writer's label and its stream (stderr marked). Lines are numbered 1..last_line by the
// server, so the list is virtual: only the rows on screen are in the page, fetched a page of
// lines at a time as they scroll into view; a filter reads every line once; a running run's
// new lines are fetched after the last line seen, and the list follows them at the bottom.
import * as api from "../api";
import type { LogLine, Run } from "../api";
import { h } from "../dom";
import { setParams } from "../route";
import { LogPages, PAGE } from "./pages";

const ROW = 18; // px, the height of one line (style.css: .log-row)
const OVERSCAN = 20; // rows drawn above and below the visible ones

function clock(seconds: number): string {
  const d = new Date(seconds * 1000);
  const pad = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

function row(line: LogLine | undefined, n: number, top: number): HTMLElement {
  if (!line)
    return h("div", { class: "log-row loading", style: `top:${top}px` }, h("span", { class: "n" }, n), "…");
  const cls = `log-row ${line.stream === "stderr" ? "stderr" : "stdout"}`;
  return h(
    "div",
    { class: cls, style: `top:${top}px`, "data-line": line.line, "data-stream": line.stream },
    h("span", { class: "n" }, line.line),
    h("time", { title: new Date(line.time * 1000).toISOString() }, clock(line.time)),
    h("span", { class: "writer", "data-writer": line.writer }, line.writer),
    h("span", { class: "stream" }, line.stream === "stderr" ? "err" : ""),
    h("span", { class: "text" }, line.text),
  );
}

export class LogsView {
  readonly el: HTMLElement;
  private readonly pages: LogPages;
  private readonly viewport = h("div", { class: "log-viewport", id: "log-lines", tabindex: 0 });
  private readonly sizer = h("div", { class: "log-sizer" });
  private readonly status = h("span", { class: "muted", id: "log-status" });
  private readonly filterInput: HTMLInputElement;
  private filter = "";
  private matches: number[] | null = null; // line numbers matching the filter (null: no filter)
  private follow = true; // at the bottom: new lines scroll into view
  private drawing = false;

  constructor(
    private run: Run,
    filter: string,
  ) {
    this.pages = new LogPages((after, limit) => api.logs(run.entity, run.project, run.id, after, limit));
    this.filterInput = h("input", {
      type: "search",
      name: "log-filter",
      placeholder: "filter lines",
      value: filter,
      "aria-label": "filter the lines",
    });
    this.filterInput.addEventListener("input", () => void this.setFilter(this.filterInput.value));
    const download = h("button", { type: "button", id: "log-download" }, "download");
    download.addEventListener("click", () => void this.download());
    this.viewport.append(this.sizer);
    this.viewport.addEventListener("scroll", () => {
      const v = this.viewport;
      this.follow = v.scrollTop + v.clientHeight >= v.scrollHeight - ROW;
      this.draw();
    });
    this.el = h(
      "section",
      { class: "logs", id: "logs" },
      h("div", { class: "toolbar" }, this.filterInput, download, this.status),
      this.viewport,
    );
    this.filter = filter.trim().toLowerCase();
  }

  /** The first page of lines (or, with a filter, every line), then the list. */
  async load(): Promise<void> {
    await this.pages.start();
    if (this.filter) await this.setFilter(this.filter);
    else this.draw();
    if (this.follow) this.toBottom();
  }

  /** A running run: the lines after the last one seen (``run``: its state now). */
  async poll(run: Run): Promise<void> {
    this.run = run;
    const before = this.pages.total;
    await this.pages.more();
    if (this.pages.total === before) return this.draw();
    if (this.matches !== null) {
      await this.pages.all(); // more new lines than a page: the rest too, before matching
      this.matches = this.matches.concat(this.pages.matching(this.filter, before + 1));
    }
    this.draw();
    if (this.follow) this.toBottom();
  }

  private async setFilter(text: string): Promise<void> {
    const want = text.trim().toLowerCase();
    setParams({ logq: want || null });
    this.filter = want;
    if (!want) {
      this.matches = null;
      this.draw();
      return;
    }
    this.status.textContent = `reading ${this.pages.total} lines…`;
    await this.pages.all();
    if (this.filter !== want) return; // typed on while it read
    this.matches = this.pages.matching(want, 1);
    this.viewport.scrollTop = 0;
    this.draw();
  }

  private count(): number {
    return this.matches?.length ?? this.pages.total;
  }

  private lineAt(index: number): number {
    return this.matches ? this.matches[index] : index + 1;
  }

  private toBottom(): void {
    this.viewport.scrollTop = this.viewport.scrollHeight;
    this.draw();
  }

  /** The rows on screen (and a few around them); pages not fetched yet are asked for. */
  private draw(): void {
    const n = this.count();
    this.sizer.style.height = `${n * ROW}px`;
    const first = Math.max(0, Math.floor(this.viewport.scrollTop / ROW) - OVERSCAN);
    const visible = Math.ceil((this.viewport.clientHeight || 400) / ROW);
    const last = Math.min(n, first + visible + 2 * OVERSCAN);
    const rows: HTMLElement[] = [];
    const missing = new Set<number>();
    for (let i = first; i < last; i++) {
      const number = this.lineAt(i);
      const line = this.pages.get(number);
      if (!line) missing.add(Math.floor((number - 1) / PAGE));
      rows.push(row(line, number, i * ROW));
    }
    this.sizer.replaceChildren(...rows);
    const shown = this.matches ? `${n} of ${this.pages.total} lines match` : `${n} lines`;
    this.status.textContent = shown + (this.run.state === "running" ? " · live" : "");
    this.viewport.dataset.first = String(first);
    this.viewport.dataset.count = String(n);
    if (missing.size && !this.drawing) {
      this.drawing = true;
      void Promise.all([...missing].map((p) => this.pages.page(p))).then((got) => {
        this.drawing = false;
        if (got.some(Boolean)) this.draw(); // a page that failed is asked again on the next scroll
      });
    }
  }

  /** Every line as text (time, writer, stream, text), saved from a blob: no key in a link. */
  private async download(): Promise<void> {
    await this.pages.all();
    const text = this.pages
      .lines()
      .map((l) => `${new Date(l.time * 1000).toISOString()} ${l.writer || "-"} ${l.stream} ${l.text}`)
      .join("\n");
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([text + "\n"], { type: "text/plain" }));
    link.download = `${this.run.id}-output.log`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  }
}
