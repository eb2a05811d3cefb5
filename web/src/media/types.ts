// The rich values the read API returns (``GET .../runs/{e}/{p}/{r}/media``; see
// client/_wire/media.py): image files (with boxes and masks), lists of images, histograms
// and tables, by key and step.
import type { Json } from "../api";

export interface Position {
  minX?: number;
  maxX?: number;
  minY?: number;
  maxY?: number;
  middle?: [number, number];
  width?: number;
  height?: number;
}

export interface Box {
  position: Position;
  domain?: string | null; // "pixel", or absent: relative (0-1)
  class_id: number;
  box_caption?: string | null;
  scores?: Record<string, number> | null;
}

export interface BoxGroup {
  box_data: Box[];
  class_labels?: Record<string, string>;
}

export interface MaskFile {
  sha256: string;
  url: string;
  class_labels?: Record<string, string>;
}

export interface ImageFile {
  _type: "image-file";
  sha256: string;
  url: string;
  width: number;
  height: number;
  format?: string;
  caption?: string | null;
  grouping?: number | null;
  boxes?: Record<string, BoxGroup> | null;
  masks?: Record<string, MaskFile> | null;
  classes?: { id: number; name: string }[] | null;
}

export interface Images {
  _type: "images";
  items: ImageFile[];
}

export interface Histogram {
  _type: "histogram";
  bins: number[];
  values: number[];
  nan?: number;
  inf?: number;
  "-inf"?: number;
}

export interface Table {
  _type: "table";
  columns: string[];
  data: (Json | ImageFile)[][];
}

export type Rich = ImageFile | Images | Histogram | Table;
export type Kind = "images" | "histogram" | "table";

export interface Point<T = Rich> {
  step: number;
  value: T;
}

const TYPES = new Set(["image-file", "images", "histogram", "table"]);

/** The kind of panel that shows ``v``, or null if it is not a rich value. */
export function kindOf(v: unknown): Kind | null {
  if (Array.isArray(v)) return v.some((x) => kindOf(x) !== null) ? "images" : null;
  if (v === null || typeof v !== "object") return null;
  const t = (v as { _type?: unknown })._type;
  if (typeof t !== "string" || !TYPES.has(t)) return null;
  return t === "histogram" ? "histogram" : t === "table" ? "table" : "images";
}

/** The images of a value: one image, a list of them, or none. */
export function imagesOf(v: unknown): ImageFile[] {
  if (Array.isArray(v)) return v.flatMap(imagesOf);
  const t = (v as { _type?: unknown } | null)?._type;
  if (t === "image-file") return [v as ImageFile];
  if (t === "images") return (v as Images).items.flatMap(imagesOf);
  return [];
}
