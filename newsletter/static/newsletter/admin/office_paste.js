// The article editor's paste cleaner for Word (a prose editor extension, loaded by django-prose-editor).
// Google Docs' markup the editor already understands (its bold spans, its <b> wrapper); Word's lists it does not:
// Word writes each item as a paragraph with an `mso-list` style and a typed bullet ("·", "1.") in a span marked
// `mso-list:Ignore`. This turns those into real lists before the editor parses the paste. What is saved still goes
// through the server's sanitiser, which does the same for every other door (newsletter/services/pasted.py).
import { Extension, Plugin } from "django-prose-editor/editor";

const ORDERED = /^\s*(\d+|[a-z]|[ivxlcdm]+)[.)]/i;

function listLevel(p) {
  const match = /mso-list:[^;"]*level(\d+)/i.exec(p.getAttribute("style") || "");
  return match ? Number(match[1]) : 0;
}

export function cleanWordHtml(html) {
  if (!/mso-|urn:schemas-microsoft-com/i.test(html)) return html;
  const doc = new DOMParser().parseFromString(html, "text/html");
  doc.querySelectorAll("style, xml, meta, link, title").forEach((node) => node.remove());
  // Runs of list paragraphs that follow each other directly: one run becomes one (possibly nested) list.
  const runs = [];
  let run = null;
  let previous = null;
  for (const p of doc.body.querySelectorAll("p")) {
    const level = listLevel(p);
    if (!level) {
      run = previous = null;
      continue;
    }
    if (!run || p.previousElementSibling !== previous) runs.push((run = []));
    run.push({ p, level });
    previous = p;
  }
  for (const items of runs) {
    const stack = [];
    let lastTop = null;
    for (const { p, level } of items) {
      let marker = "";
      p.querySelectorAll("span").forEach((span) => {
        if (span.isConnected && /mso-list:\s*ignore/i.test(span.getAttribute("style") || "")) {
          marker = marker || span.textContent;
          span.remove();
        }
      });
      const kind = ORDERED.test(marker) ? "OL" : "UL";
      const item = doc.createElement("li");
      item.append(...p.childNodes);
      while (stack.length && stack[stack.length - 1].level > level) stack.pop();
      if (stack.length && stack[stack.length - 1].level === level && stack[stack.length - 1].list.tagName !== kind) {
        stack.pop();
      }
      const top = stack[stack.length - 1];
      if (top && top.level === level) {
        top.list.append(item);
      } else {
        const list = doc.createElement(kind);
        list.append(item);
        if (top) top.list.lastElementChild.append(list);
        else if (lastTop) lastTop.after(list);
        else p.before(list);
        if (!top) lastTop = list;
        stack.push({ list, level });
      }
      p.remove();
    }
  }
  return doc.body.innerHTML;
}

export const OfficePaste = Extension.create({
  name: "officePaste",
  addProseMirrorPlugins() {
    return [new Plugin({ props: { transformPastedHTML: (html) => cleanWordHtml(html) } })];
  },
});
