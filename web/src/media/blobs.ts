// Image and mask files of a run, fetched with the key in a header (never in a URL) and shown
// from object URLs; each file is fetched once per page.
import { blob } from "../api";

const cache = new Map<string, Promise<string>>();

/** An object URL for the file the read API serves at ``url`` (``/api/v1/.../blobs/<sha256>``). */
export function objectUrl(url: string): Promise<string> {
  let found = cache.get(url);
  if (!found) {
    found = blob(url).then((b) => URL.createObjectURL(b));
    found.catch(() => cache.delete(url)); // a failed fetch is tried again next time
    cache.set(url, found);
  }
  return found;
}

/** A loaded ``<img>`` of the file at ``url``. */
export async function loadImage(url: string): Promise<HTMLImageElement> {
  const img = new Image();
  img.src = await objectUrl(url);
  await img.decode();
  return img;
}

/** Forget the files of the page that closed (their memory goes with them). */
export function releaseAll(): void {
  for (const found of cache.values()) void found.then((u) => URL.revokeObjectURL(u)).catch(() => undefined);
  cache.clear();
}
