// The entities the key may use, each with its projects.
import { get, projects } from "../api";
import { h } from "../dom";
import { when } from "../format";
import { href } from "../route";

export async function homePage(app: HTMLElement): Promise<void> {
  const { entities } = await get<{ entities: { name: string; kind: string }[] }>("/entities");
  const lists = await Promise.all(entities.map((e) => projects(e.name)));
  app.append(h("h1", {}, "Projects"));
  entities.forEach((entity, i) => {
    const items = lists[i].map((p) =>
      h(
        "li",
        {},
        h("a", { href: href(["p", entity.name, p.name]), class: "project" }, p.name),
        h("span", { class: "muted" }, ` created ${when(p.created_at)}`),
      ),
    );
    app.append(
      h(
        "section",
        { class: "entity", "data-entity": entity.name },
        h("h2", {}, entity.name, h("span", { class: "muted" }, ` ${entity.kind}`)),
        items.length ? h("ul", {}, ...items) : h("p", { class: "muted" }, "No projects yet."),
      ),
    );
  });
  window.trackd.runsTableAt = performance.now();
}
