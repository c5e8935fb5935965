// Tabs of code with a copy button (the WAI-ARIA tabs pattern: arrow keys move between the tabs).

import { h } from "../dom.js";

let counter = 0;

export function codeTabs(snippets) {
  const id = `code-${++counter}`;
  const tabs = [];
  const panels = [];
  function choose(i, focus) {
    tabs.forEach((tab, j) => {
      tab.setAttribute("aria-selected", String(i === j));
      tab.tabIndex = i === j ? 0 : -1;
      panels[j].hidden = i !== j;
    });
    if (focus) tabs[i].focus();
  }
  snippets.forEach((snippet, i) => {
    const tabId = `${id}-tab-${snippet.id}`;
    const panelId = `${id}-panel-${snippet.id}`;
    const status = h("span", { class: "copied", role: "status" });
    tabs.push(
      h(
        "button",
        { type: "button", role: "tab", id: tabId, "aria-controls": panelId, onclick: () => choose(i, false) },
        snippet.name,
      ),
    );
    panels.push(
      h(
        "div",
        {
          role: "tabpanel",
          id: panelId,
          "aria-labelledby": tabId,
          class: "code-panel",
          dataset: { snippet: snippet.id },
        },
        h("pre", { tabindex: "0" }, h("code", {}, snippet.code)),
        h(
          "button",
          {
            type: "button",
            class: "copy",
            onclick: async () => {
              try {
                await navigator.clipboard.writeText(snippet.code);
                status.textContent = "Copied.";
              } catch {
                status.textContent = "Copying is not allowed here: select the text instead.";
              }
              setTimeout(() => (status.textContent = ""), 3000);
            },
          },
          `Copy the ${snippet.name} code`,
        ),
        status,
      ),
    );
  });
  const list = h("div", { role: "tablist", "aria-label": "Languages" }, tabs);
  list.addEventListener("keydown", (event) => {
    const i = tabs.indexOf(document.activeElement);
    if (i < 0) return;
    const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[event.key];
    if (next === undefined) return;
    event.preventDefault();
    choose((next + tabs.length) % tabs.length, true);
  });
  choose(0, false);
  return h("div", { class: "code-tabs" }, list, panels);
}
