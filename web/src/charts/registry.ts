// What the page has drawn, readable from outside (tests, bench/ui.py): window.trackd.
/** A line as uPlot holds it (a run's, or with runs grouped, the group's mean). */
export interface LineDrawn {
  drawn: number; // finite values of the line
  maxValue: number | null; // the largest (a spike must survive downsampling)
  lastValue: number | null; // the last value of the raw line
  smoothedLast: number | null; // ... and of the smoothed line (null without smoothing)
  widestBand: number | null; // a group's largest max - min (null for a run's line)
}

/** A run's series in the panel; its line's figures are zero/null when its group is drawn. */
export interface RunDrawn extends LineDrawn {
  points: number; // points of this run in the panel's data (finite and not)
  nonFinite: number; // of which NaN or +-inf, drawn as markers
  minStep: number | null;
  maxStep: number | null;
}

export interface PanelDrawn {
  key: string;
  state: "waiting" | "loading" | "drawn" | "error";
  zoomed: boolean;
  smoothing: number;
  xAxis: string;
  xRange: [number, number] | null; // the first and last x of the data drawn
  logY: boolean; // the y scale uPlot draws is logarithmic
  yMax: number | null; // the top of the y axis drawn

  runs: Record<string, RunDrawn>;
  lines: Record<string, LineDrawn>; // by run id, or "group:<name>"
}

/** A media panel (images, a table, or a histogram heat map) as shown. */
export interface MediaDrawn {
  key: string;
  kind: "images" | "histogram" | "table";
  state: "drawn";
  step: number | null; // the step whose value is shown
  images: number;
  boxes: number; // boxes drawn (class toggles and score threshold applied)
  maskPixels: number; // pixels coloured by masks
  classes: string[]; // the legend's class toggles
  tableRows: number;
  heat: { steps: number; rows: number; lo: number | null; hi: number | null; filled: number } | null;
}

/** The parallel-coordinates panel: its metric, axes and the run lines drawn. */
export interface ParallelDrawn {
  metric: string;
  axes: string[];
  lines: number;
}

interface PageData {
  panels: Record<string, PanelDrawn>;
  media: Record<string, MediaDrawn>;
  parallel: ParallelDrawn | null;
  firstChartAt: number | null; // performance.now() when this view's first chart was drawn
  runsTableAt: number | null; // ... and its runs table
}

declare global {
  interface Window {
    trackd: PageData;
  }
}

export function resetPage(): void {
  window.trackd = { panels: {}, media: {}, parallel: null, firstChartAt: null, runsTableAt: null };
}

export function recordPanel(panel: PanelDrawn): void {
  window.trackd.panels[panel.key] = panel;
  if (panel.state === "drawn" && window.trackd.firstChartAt === null) {
    window.trackd.firstChartAt = performance.now();
    performance.mark("trackd:first-chart");
  }
}

export function recordParallel(drawn: ParallelDrawn): void {
  window.trackd.parallel = drawn;
}

export function recordMedia(drawn: MediaDrawn): void {
  window.trackd.media[drawn.key] = drawn;
}

resetPage();
