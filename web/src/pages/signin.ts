// Sign in with an API key: checked against the server, then kept in this tab's session.
import { viewerFor } from "../api";
import { h } from "../dom";
import { signIn } from "../session";

export function signInPage(done: () => void): HTMLElement {
  const key = h("input", {
    type: "password",
    name: "api-key",
    id: "api-key",
    autocomplete: "off",
    required: true,
    placeholder: "trk_...",
  });
  const problem = h("p", { class: "error", role: "alert" });
  const form = h(
    "form",
    { class: "signin", id: "sign-in" },
    h("h1", {}, "Sign in to trackd"),
    h("label", { for: "api-key" }, "API key"),
    key,
    h("button", { type: "submit" }, "Sign in"),
    problem,
    h(
      "p",
      { class: "muted" },
      "Your key stays in this browser tab and is sent only to this server. An admin makes one with ",
      h("code", {}, "trackd server --create-key USER"),
      ".",
    ),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.textContent = "";
    try {
      await viewerFor(key.value.trim());
      signIn(key.value.trim());
      done();
    } catch (err) {
      problem.textContent = (err as Error).message;
    }
  });
  queueMicrotask(() => key.focus());
  return form;
}
