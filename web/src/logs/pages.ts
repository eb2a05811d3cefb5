// A run's console lines as the server numbers them (1..last_line), held in pages of PAGE
// lines fetched on demand: the lines on screen, the new lines of a running run (after the
// last one seen), or every line (for a filter or a download).
import type { LogLine, LogPage } from "../api";

export const PAGE = 2000;
const PARALLEL = 4; // pages fetched at once when reading every line

export type Fetch = (after: number, limit: number) => Promise<LogPage>;

export class LogPages {
  total = 0; // the highest line number the server has told of
  private readonly pages = new Map<number, LogLine[]>(); // page p: lines p*PAGE+1 ..
  private readonly inFlight = new Map<number, Promise<boolean>>();

  constructor(private readonly fetch: Fetch) {}

  /** The first page, and how many lines there are. */
  async start(): Promise<void> {
    await this.page(0);
  }

  /** The lines after the last one seen (a running run's new output). */
  async more(): Promise<void> {
    this.keep(await this.fetch(this.total, PAGE));
  }

  get(line: number): LogLine | undefined {
    return this.pages.get(Math.floor((line - 1) / PAGE))?.[(line - 1) % PAGE];
  }

  /** Fetch page ``p`` unless it is whole; true once it holds every line it can. */
  page(p: number): Promise<boolean> {
    if (this.whole(p)) return Promise.resolve(true);
    let asked = this.inFlight.get(p);
    if (!asked) {
      asked = this.fetch(p * PAGE, PAGE)
        .then((answer) => {
          this.keep(answer);
          return true;
        })
        .catch(() => false)
        .finally(() => this.inFlight.delete(p));
      this.inFlight.set(p, asked);
    }
    return asked;
  }

  /** Every line up to ``total``. */
  async all(): Promise<void> {
    const todo: number[] = [];
    for (let p = 0; p * PAGE < this.total; p++) if (!this.whole(p)) todo.push(p);
    const worker = async () => {
      for (let p = todo.shift(); p !== undefined; p = todo.shift()) await this.page(p);
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
  }

  /** The numbers of the lines from ``from`` on whose text or writer holds ``needle``. */
  matching(needle: string, from: number): number[] {
    const out: number[] = [];
    for (let n = from; n <= this.total; n++) {
      const line = this.get(n);
      if (line && (line.text.toLowerCase().includes(needle) || line.writer.toLowerCase().includes(needle)))
        out.push(n);
    }
    return out;
  }

  /** The lines held, in order. */
  lines(): LogLine[] {
    const out: LogLine[] = [];
    for (let n = 1; n <= this.total; n++) {
      const line = this.get(n);
      if (line) out.push(line);
    }
    return out;
  }

  private whole(p: number): boolean {
    const held = this.pages.get(p);
    if (!held) return false;
    const end = Math.min(this.total, (p + 1) * PAGE);
    for (let n = p * PAGE + 1; n <= end; n++) if (!held[(n - 1) % PAGE]) return false;
    return true;
  }

  private keep(answer: LogPage): void {
    this.total = Math.max(this.total, answer.last_line);
    for (const line of answer.lines) {
      const p = Math.floor((line.line - 1) / PAGE);
      let held = this.pages.get(p);
      if (!held) this.pages.set(p, (held = []));
      held[(line.line - 1) % PAGE] = line;
    }
  }
}
