// What the page has drawn, readable from outside (tests, bench/ui.py): window.trackd.
export interface RunDrawn {
  drawn: number; // finite values uPlot holds for this run's line
  points: number; // points of this run in the panel's data (finite and not)
  nonFinite: number; // of which NaN or +-inf, drawn as markers
  maxValue: number | null; // the largest finite value drawn (a spike must survive downsampling)
  lastValue: number | null; // the last finite value of the raw line
  smoothedLast: number | null; // ... and of the smoothed line (null without smoothing)
  minStep: number | null;
  maxStep: number | null;
}

export interface PanelDrawn {
  key: string;
  state: "waiting" | "loading" | "drawn" | "error";
  zoomed: boolean;
  smoothing: number;
  xAxis: string;
  logY: boolean; // the y scale uPlot draws is logarithmic
  yMax: number | null; // the top of the y axis drawn

  runs: Record<string, RunDrawn>;
}

interface PageData {
  panels: Record<string, PanelDrawn>;
  firstChartAt: number | null; // performance.now() when this view's first chart was drawn
  runsTableAt: number | null; // ... and its runs table
}

declare global {
  interface Window {
    trackd: PageData;
  }
}

export function resetPage(): void {
  window.trackd = { panels: {}, firstChartAt: null, runsTableAt: null };
}

export function recordPanel(panel: PanelDrawn): void {
  window.trackd.panels[panel.key] = panel;
  if (panel.state === "drawn" && window.trackd.firstChartAt === null) {
    window.trackd.firstChartAt = performance.now();
    performance.mark("trackd:first-chart");
  }
}

resetPage();
