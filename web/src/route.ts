// The view's address: "#/<page>/<parts>?<state>". Everything a view shows is in it, so a link
// reopens the same view; changing view state rewrites it without reloading the page.

export interface Route {
  parts: string[];
  params: URLSearchParams;
}

export function current(): Route {
  const hash = location.hash.replace(/^#\/?/, "");
  const [path, query = ""] = hash.split("?", 2);
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { parts, params: new URLSearchParams(query) };
}

export function href(parts: string[], params?: URLSearchParams): string {
  const query = params && params.toString() ? "?" + params.toString() : "";
  return "#/" + parts.map(encodeURIComponent).join("/") + query;
}

export function go(parts: string[], params?: URLSearchParams): void {
  location.hash = href(parts, params);
}

/** Set (or, for null/"", remove) state params of the current view, without a reload. */
export function setParams(update: Record<string, string | null>): void {
  const { parts, params } = current();
  for (const [name, value] of Object.entries(update)) {
    if (value === null || value === "") params.delete(name);
    else params.set(name, value);
  }
  history.replaceState(null, "", href(parts, params));
}
