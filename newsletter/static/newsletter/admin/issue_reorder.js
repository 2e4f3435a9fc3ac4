// Drag-and-drop ordering for the article rows: dropping a row renumbers every row's position field, so the
// saved order is exactly what the editor sees. Without JavaScript the position numbers still work by hand.
"use strict";
(function () {
  function rows(table) {
    return Array.from(table.querySelectorAll("tbody tr.form-row")).filter((r) => !r.classList.contains("empty-form"));
  }
  function renumber(table) {
    let n = 1;
    for (const row of rows(table)) {
      const input = row.querySelector("td.field-position input");
      const article = row.querySelector("td.field-article select, td.field-article input");
      if (input && (!article || article.value)) input.value = n++;
    }
  }
  function enable(table) {
    let dragged = null;
    for (const row of rows(table)) {
      if (row.dataset.mhDrag) continue;
      row.dataset.mhDrag = "1";
      row.draggable = true;
      const cell = row.querySelector("td.original, td.field-position");
      if (cell && !cell.querySelector(".mh-handle")) {
        const handle = document.createElement("span");
        handle.className = "mh-handle";
        handle.textContent = "\u2630";
        handle.title = "Drag to reorder";
        handle.setAttribute("aria-hidden", "true");
        cell.prepend(handle);
      }
      row.addEventListener("dragstart", (e) => {
        // Let editors select text in inputs; only drags that start outside a field move the row.
        if (e.target.closest && e.target.closest("input, textarea, select") && e.target !== row) return;
        dragged = row;
        row.classList.add("mh-dragging");
        e.dataTransfer.effectAllowed = "move";
      });
      row.addEventListener("dragend", () => {
        row.classList.remove("mh-dragging");
        rows(table).forEach((r) => r.classList.remove("mh-drop-target"));
        dragged = null;
      });
      row.addEventListener("dragover", (e) => {
        if (!dragged || dragged === row) return;
        e.preventDefault();
        row.classList.add("mh-drop-target");
      });
      row.addEventListener("dragleave", () => row.classList.remove("mh-drop-target"));
      row.addEventListener("drop", (e) => {
        if (!dragged || dragged === row) return;
        e.preventDefault();
        row.classList.remove("mh-drop-target");
        const after = e.clientY > row.getBoundingClientRect().top + row.offsetHeight / 2;
        row.parentNode.insertBefore(dragged, after ? row.nextSibling : row);
        renumber(table);
      });
    }
  }
  function init() {
    document.querySelectorAll(".mh-reorderable table").forEach(enable);
  }
  document.addEventListener("DOMContentLoaded", init);
  // New rows added with "Add another" become draggable too, and get the next position.
  document.addEventListener("formset:added", (event) => {
    const table = event.target.closest(".mh-reorderable table");
    if (!table) return;
    enable(table);
    const input = event.target.querySelector("td.field-position input");
    if (input) input.value = rows(table).length;
  });
})();
