// One image as the page shows it: the picture, its masks and boxes over it, its caption.
import { h } from "../dom";
import { loadImage } from "./blobs";
import { boxesLayer, masksLayer, type OverlayView } from "./overlays";
import type { ImageFile } from "./types";

export interface FigureDrawn {
  boxes: number; // boxes drawn (after the class toggles and the score threshold)
  maskPixels: number; // pixels coloured by a mask
}

/** The display width: small images scaled up (pixelated), large ones down to ``max``. */
function displayWidth(width: number, max: number): number {
  if (width >= max) return max;
  return width * Math.max(1, Math.floor(Math.min(max, 192) / width));
}

/** A figure of ``image`` with the overlays ``view`` shows (drawn once its files arrive). */
export async function figure(
  image: ImageFile,
  view: OverlayView,
  max = 320,
): Promise<[HTMLElement, FigureDrawn]> {
  const frame = h("div", { class: "frame" });
  const w = displayWidth(image.width, max);
  frame.style.width = `${w}px`;
  frame.style.aspectRatio = `${image.width} / ${image.height}`;
  const el = h(
    "figure",
    { class: "media-image", "data-sha256": image.sha256 },
    frame,
    image.caption ? h("figcaption", {}, image.caption) : null,
  );
  const drawn: FigureDrawn = { boxes: 0, maskPixels: 0 };
  try {
    const img = await loadImage(image.url);
    img.alt = image.caption ?? "";
    if (w > image.width) img.classList.add("pixelated");
    frame.append(img);
    if (image.masks && Object.keys(image.masks).length) {
      const [canvas, colored] = await masksLayer(image, view);
      if (w > image.width) canvas.classList.add("pixelated");
      frame.append(canvas);
      drawn.maskPixels = colored;
    }
    const [boxes, shown] = boxesLayer(image, view);
    frame.append(boxes);
    drawn.boxes = shown;
  } catch (err) {
    frame.append(h("p", { class: "error" }, `could not load the image: ${(err as Error).message}`));
  }
  return [el, drawn];
}
