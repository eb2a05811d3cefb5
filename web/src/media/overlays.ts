// What is drawn over an image: boxes (SVG: class label, caption, scores) and masks (a
// canvas, one colour per class), each class of each group shown or hidden by the viewer,
// boxes below a score threshold hidden.
import type { Box, ImageFile, MaskFile } from "./types";
import { loadImage } from "./blobs";

const CLASS_COLORS = [
  "#e6194b",
  "#3cb44b",
  "#ffe119",
  "#4363d8",
  "#f58231",
  "#911eb4",
  "#46f0f0",
  "#f032e6",
  "#bcf60c",
  "#fabebe",
  "#008080",
  "#e6beff",
  "#9a6324",
  "#fffac8",
  "#800000",
  "#aaffc3",
];

export function classColor(id: number): string {
  return CLASS_COLORS[((id % CLASS_COLORS.length) + CLASS_COLORS.length) % CLASS_COLORS.length];
}

/** The viewer's choices for a media panel. */
export interface OverlayView {
  hidden: Set<string>; // "<boxes|masks>:<group>:<class id>" not drawn
  score: string; // the score a box is kept by ("" with no scores)
  threshold: number; // boxes whose score is below are hidden
}

export const classKey = (kind: "boxes" | "masks", group: string, id: number) => `${kind}:${group}:${id}`;

/** A class of an image's boxes or masks, for the legend. */
export interface ClassEntry {
  key: string;
  kind: "boxes" | "masks";
  group: string;
  id: number;
  name: string;
}

function labelOf(labels: Record<string, string> | undefined, image: ImageFile, id: number): string {
  return labels?.[String(id)] ?? image.classes?.find((c) => c.id === id)?.name ?? String(id);
}

/** Every class the image's boxes and masks name (masks: their labels; the pixels may hold more). */
export function classesOf(image: ImageFile): ClassEntry[] {
  const out: ClassEntry[] = [];
  for (const [group, g] of Object.entries(image.boxes ?? {})) {
    const ids = new Set(g.box_data.map((b) => b.class_id));
    for (const id of [...ids].sort((a, b) => a - b))
      out.push({
        key: classKey("boxes", group, id),
        kind: "boxes",
        group,
        id,
        name: labelOf(g.class_labels, image, id),
      });
  }
  for (const [group, m] of Object.entries(image.masks ?? {})) {
    for (const id of Object.keys(m.class_labels ?? {})
      .map(Number)
      .sort((a, b) => a - b))
      out.push({
        key: classKey("masks", group, id),
        kind: "masks",
        group,
        id,
        name: labelOf(m.class_labels, image, id),
      });
  }
  return out;
}

export function scoreNames(image: ImageFile): string[] {
  const names = new Set<string>();
  for (const g of Object.values(image.boxes ?? {}))
    for (const b of g.box_data) for (const name of Object.keys(b.scores ?? {})) names.add(name);
  return [...names].sort();
}

/** The box in image pixels: [x, y, width, height]. */
function rect(box: Box, w: number, h: number): [number, number, number, number] {
  const p = box.position;
  const [sx, sy] = box.domain === "pixel" ? [1, 1] : [w, h];
  if (p.middle) {
    const [bw, bh] = [(p.width ?? 0) * sx, (p.height ?? 0) * sy];
    return [p.middle[0] * sx - bw / 2, p.middle[1] * sy - bh / 2, bw, bh];
  }
  const [x0, x1, y0, y1] = [(p.minX ?? 0) * sx, (p.maxX ?? 0) * sx, (p.minY ?? 0) * sy, (p.maxY ?? 0) * sy];
  return [x0, y0, x1 - x0, y1 - y0];
}

const SVG = "http://www.w3.org/2000/svg";
function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number>,
): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

/** The boxes of ``image`` the view shows, as an SVG over the image; and how many. */
export function boxesLayer(image: ImageFile, view: OverlayView): [SVGSVGElement, number] {
  const { width: w, height: h } = image;
  const layer = svg("svg", { class: "boxes", viewBox: `0 0 ${w} ${h}`, preserveAspectRatio: "none" });
  const stroke = Math.max(1, Math.min(w, h) / 150);
  const font = Math.max(6, Math.min(w, h) / 18);
  let shown = 0;
  for (const [group, g] of Object.entries(image.boxes ?? {})) {
    for (const box of g.box_data) {
      if (view.hidden.has(classKey("boxes", group, box.class_id))) continue;
      const score = view.score ? box.scores?.[view.score] : undefined;
      if (score !== undefined && score < view.threshold) continue;
      const [x, y, bw, bh] = rect(box, w, h);
      const color = classColor(box.class_id);
      layer.append(
        svg("rect", { x, y, width: bw, height: bh, fill: "none", stroke: color, "stroke-width": stroke }),
      );
      const parts = [labelOf(g.class_labels, image, box.class_id)];
      if (box.box_caption) parts.push(box.box_caption);
      for (const [name, v] of Object.entries(box.scores ?? {})) parts.push(`${name} ${Number(v.toFixed(3))}`);
      const text = svg("text", {
        x: x + stroke,
        y: Math.max(font, y - stroke),
        fill: color,
        "font-size": font,
      });
      text.textContent = parts.join(" · ");
      layer.append(text);
      shown++;
    }
  }
  layer.dataset.shown = String(shown);
  return [layer, shown];
}

/** The masks the view shows, one colour per class, on a canvas of the image's size; the
 * canvas and the number of pixels coloured. */
export async function masksLayer(image: ImageFile, view: OverlayView): Promise<[HTMLCanvasElement, number]> {
  const canvas = document.createElement("canvas");
  canvas.className = "masks";
  canvas.width = image.width;
  canvas.height = image.height;
  const ctx = canvas.getContext("2d", { willReadFrequently: true }) as CanvasRenderingContext2D;
  const out = ctx.createImageData(image.width, image.height);
  let colored = 0;
  for (const [group, mask] of Object.entries(image.masks ?? {})) {
    const ids = await classIds(mask, image.width, image.height);
    const rgb = new Map<number, [number, number, number] | null>();
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      let c = rgb.get(id);
      if (c === undefined) {
        c = view.hidden.has(classKey("masks", group, id)) ? null : hex(classColor(id));
        rgb.set(id, c);
      }
      if (c === null) continue;
      out.data.set([c[0], c[1], c[2], 120], i * 4);
      colored++;
    }
  }
  ctx.putImageData(out, 0, 0);
  canvas.dataset.colored = String(colored);
  return [canvas, colored];
}

/** The class id of each pixel of a mask (a mode "L" PNG: the grey level is the id). */
async function classIds(mask: MaskFile, w: number, h: number): Promise<Uint8Array> {
  const img = await loadImage(mask.url);
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d", { willReadFrequently: true }) as CanvasRenderingContext2D;
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(img, 0, 0, w, h);
  const rgba = ctx.getImageData(0, 0, w, h).data;
  const ids = new Uint8Array(w * h);
  for (let i = 0; i < ids.length; i++) ids[i] = rgba[i * 4];
  return ids;
}

function hex(color: string): [number, number, number] {
  const n = parseInt(color.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}
