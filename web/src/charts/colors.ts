// One colour per run, the same on every panel and in the runs table: runs get colours in the
// order they are first seen on the page (selection order), from a palette of distinct hues.
const PALETTE = [
  "#1f77b4",
  "#ff7f0e",
  "#2ca02c",
  "#d62728",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#17becf",
  "#bcbd22",
  "#7f7f7f",
  "#393b79",
  "#e6550d",
  "#31a354",
  "#843c39",
  "#5254a3",
  "#d6616b",
  "#3182bd",
  "#b5cf6b",
  "#ce6dbd",
  "#636363",
];

const assigned = new Map<string, string>();

export function colorOf(runKey: string): string {
  let color = assigned.get(runKey);
  if (!color) {
    color = PALETTE[assigned.size % PALETTE.length];
    assigned.set(runKey, color);
  }
  return color;
}

/** ``#rrggbb`` at ``alpha`` (for the faint raw line beside the smoothed one). */
export function faint(color: string, alpha: number): string {
  const n = parseInt(color.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${alpha})`;
}
