// The page: a header (who is signed in, sign out) and the view the address names.
import "uplot/dist/uPlot.min.css";
import "./style.css";

import { whenUnauthorized, viewer, type Viewer } from "./api";
import { resetPage } from "./charts/registry";
import { clear, h } from "./dom";
import { current, href } from "./route";
import { apiKey, signOut } from "./session";
import { homePage } from "./pages/home";
import { projectPage } from "./pages/project";
import { runPage } from "./pages/run";
import { signInPage } from "./pages/signin";

const bar = document.getElementById("bar") as HTMLElement;
const app = document.getElementById("app") as HTMLElement;

/** What a page leaves running (timers, observers), stopped when another view opens. */
export type Cleanup = () => void;
let cleanup: Cleanup | null = null;

/** What the server is: its version; for an admin, its database and data dir too. */
function serverLine(me: Viewer): HTMLElement {
  const s = me.server;
  const parts = s ? [`server ${s.version}`, s.database, s.data_dir].filter(Boolean) : [];
  return h("span", { class: "server muted", id: "server" }, parts.join(" · "));
}

async function header(): Promise<void> {
  const me = await viewer();
  const out = h("button", { type: "button", id: "sign-out" }, "Sign out");
  out.addEventListener("click", () => {
    signOut();
    location.hash = "#/";
    void render();
  });
  bar.replaceChildren(
    h("a", { href: "#/", class: "brand" }, "trackd"),
    h("span", { class: "spacer" }),
    serverLine(me),
    h("span", { class: "who", id: "viewer" }, me.user + (me.admin ? " (admin)" : "")),
    out,
  );
}

async function render(): Promise<void> {
  cleanup?.();
  cleanup = null;
  resetPage();
  clear(app);
  if (!apiKey()) {
    bar.replaceChildren(h("span", { class: "brand" }, "trackd"));
    app.append(signInPage(() => void render()));
    return;
  }
  const { parts, params } = current();
  try {
    // the header and the view load side by side (neither waits for the other's requests)
    const head = header();
    head.catch(() => undefined); // its failure is the view's too (a 401 signs out): shown once
    let view: Promise<Cleanup | void>;
    if (parts[0] === "p" && parts.length === 3) view = projectPage(app, parts[1], parts[2], params);
    else if (parts[0] === "r" && parts.length === 4) view = runPage(app, parts[1], parts[2], parts[3]);
    else view = homePage(app);
    const [done] = await Promise.all([view, head]);
    cleanup = done ?? null;
  } catch (err) {
    if (!apiKey()) return; // a 401 signed out and rendered the sign-in page
    app.replaceChildren(
      h("p", { class: "error", role: "alert" }, (err as Error).message),
      h("a", { href: href([]) }, "Back to projects"),
    );
  }
}

whenUnauthorized(() => void render());
window.addEventListener("hashchange", () => void render());
void render();
