(function () {
  "use strict";
  var ui = JSON.parse(document.getElementById("pa-ui-text").textContent);
  var $$ = function (selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); };

  // ---- charts: theme colours come from the page's CSS variables (light or dark) ----
  var dark = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  function colours() {
    var style = getComputedStyle(document.documentElement);
    var grid = style.getPropertyValue("--pa-grid").trim() || "#e5e5e5";
    var update = {"font.color": style.getPropertyValue("--pa-fg").trim() || "#222"};
    ["xaxis", "yaxis"].forEach(function (axis) {
      ["gridcolor", "zerolinecolor", "linecolor"].forEach(function (key) { update[axis + "." + key] = grid; });
    });
    return update;
  }
  function themed(layout) {
    var update = colours();
    Object.keys(update).forEach(function (path) {
      var keys = path.split("."), node = layout;
      node[keys[0]] = node[keys[0]] || {};
      node[keys[0]][keys[1]] = update[path];
    });
    return layout;
  }
  var plots = [];
  function draw(div) {
    if (div.hasAttribute("data-drawn")) { return; }
    div.setAttribute("data-drawn", "");
    try {
      var fig = JSON.parse(document.getElementById(div.getAttribute("data-figure")).textContent);
      Plotly.newPlot(div, fig.data, themed(fig.layout), {responsive: true, displaylogo: false});
      plots.push(div);
    } catch (error) {
      div.textContent = String(error);
    }
  }
  var pending = [];
  if (window.Plotly) {
    pending = $$(".pa-chart[data-figure]");
    // The first chart at once; the others when they come near the viewport (large heat maps are slow).
    if (pending.length) { draw(pending[0]); }
    if (window.IntersectionObserver) {
      var observer = new IntersectionObserver(function (entries) {
        entries.forEach(function (entry) {
          if (entry.isIntersecting) { observer.unobserve(entry.target); draw(entry.target); }
        });
      }, {rootMargin: "300px"});
      pending.slice(1).forEach(function (div) { observer.observe(div); });
    } else {
      pending.forEach(draw);
    }
    if (dark && dark.addEventListener) {
      dark.addEventListener("change", function () {
        var update = colours();
        plots.forEach(function (div) { Plotly.relayout(div, update); });
      });
    }
  }

  // ---- evidence tables: click a header to sort, type to filter ----
  function cellValue(row, index, numeric) {
    var cell = row.cells[index];
    var text = cell ? cell.textContent.trim() : "";
    if (!numeric) { return text.toLowerCase(); }
    var number = parseFloat(text.replace(/,/g, "").replace(/%$/, ""));
    return isNaN(number) ? -Infinity : number;
  }
  function sortBy(th) {
    var table = th.closest("table");
    var body = table.tBodies[0];
    var index = th.cellIndex;
    var numeric = th.getAttribute("data-type") === "num";
    var descending = th.getAttribute("aria-sort") !== "descending" && (numeric || th.getAttribute("aria-sort") === "ascending");
    $$("th", table).forEach(function (other) { other.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
    var rows = Array.prototype.slice.call(body.rows).map(function (row, i) { return [cellValue(row, index, numeric), i, row]; });
    rows.sort(function (a, b) {
      var order = a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
      return (descending ? -order : order) || a[1] - b[1];
    });
    var fragment = document.createDocumentFragment();
    rows.forEach(function (entry) { fragment.appendChild(entry[2]); });
    body.appendChild(fragment);
  }
  $$("table.pa-sortable th").forEach(function (th) {
    th.addEventListener("click", function () { sortBy(th); });
    th.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sortBy(th); }
    });
  });
  function showCount(box, shown, total) {
    var label = box.parentNode.querySelector(".pa-shown");
    if (label) { label.textContent = shown === total ? "" : ui.rows_shown.replace("{shown}", shown).replace("{total}", total); }
  }
  $$(".pa-filter").forEach(function (box) {
    var table = box.closest("details").querySelector("table.pa-sortable");
    box.addEventListener("input", function () {
      var needle = box.value.trim().toLowerCase();
      var rows = Array.prototype.slice.call(table.tBodies[0].rows);
      var shown = 0;
      rows.forEach(function (row) {
        var hit = !needle || row.textContent.toLowerCase().indexOf(needle) !== -1;
        row.hidden = !hit;
        shown += hit ? 1 : 0;
      });
      showCount(box, shown, rows.length);
    });
  });

  // ---- copy buttons next to code in suggestions ----
  function copyText(text) {
    if (navigator.clipboard && navigator.clipboard.writeText) {
      return navigator.clipboard.writeText(text).catch(function () { return legacyCopy(text); });
    }
    return legacyCopy(text);
  }
  function legacyCopy(text) {
    // The report may run in a sandboxed frame without the clipboard API.
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (error) { ok = false; }
    document.body.removeChild(area);
    return ok ? Promise.resolve() : Promise.reject(new Error("copy"));
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button.pa-copy") : null;
    if (!button) { return; }
    var code = button.previousElementSibling;
    copyText(code ? code.textContent : "").then(function () {
      button.classList.add("pa-copied");
      button.title = ui.copied;
    }, function () {
      button.title = ui.copy_failed;
    });
  });

  // ---- expand / collapse, jumps into closed sections, print everything ----
  function setAll(open) { $$("details").forEach(function (d) { d.open = open; }); }
  var expand = document.getElementById("pa-expand-all");
  var collapse = document.getElementById("pa-collapse-all");
  if (expand) { expand.addEventListener("click", function () { setAll(true); }); }
  if (collapse) { collapse.addEventListener("click", function () { setAll(false); }); }
  function reveal(id) {
    var target = id && document.getElementById(id);
    for (var node = target; node; node = node.parentElement) {
      if (node.tagName === "DETAILS") { node.open = true; }
    }
    return target;
  }
  $$("a[href^='#']").forEach(function (link) {
    link.addEventListener("click", function () { reveal(link.getAttribute("href").slice(1)); });
  });
  if (location.hash) { reveal(location.hash.slice(1)); }
  var closedBeforePrint = [];
  window.addEventListener("beforeprint", function () {
    pending.forEach(draw);
    closedBeforePrint = $$("details:not([open])");
    closedBeforePrint.forEach(function (d) { d.open = true; });
  });
  window.addEventListener("afterprint", function () {
    closedBeforePrint.forEach(function (d) { d.open = false; });
    closedBeforePrint = [];
  });
})();
