(function () {
  "use strict";
  Array.prototype.slice.call(document.querySelectorAll("button.toggle-sub")).forEach(function (b) {
    b.addEventListener("click", function () {
      var open = b.getAttribute("aria-expanded") !== "true";
      var rows = document.querySelectorAll("#suite-table tr.sub");
      Array.prototype.forEach.call(rows, function (tr) {
        if (tr.getAttribute("data-suite") === b.getAttribute("data-suite")) { tr.hidden = !open; }
      });
      b.setAttribute("aria-expanded", open ? "true" : "false");
      b.textContent = (open ? "▾ " : "▸ ") + b.textContent.slice(2);
    });
  });
  var list = document.getElementById("record-list");
  if (!list) { return; }
  var suite = document.getElementById("filter-suite");
  var subtype = document.getElementById("filter-subtype");
  var outcome = document.getElementById("filter-outcome");
  var search = document.getElementById("filter-search");
  var count = document.getElementById("records-visible");
  var none = document.getElementById("records-none");
  var items = Array.prototype.slice.call(list.querySelectorAll("details.record"));
  items.forEach(function (el) { el.alText = el.textContent.toLowerCase(); });

  function apply() {
    var s = suite.value, t = subtype.value, o = outcome.value;
    var q = search.value.trim().toLowerCase(), n = 0;
    items.forEach(function (el) {
      var ok = (!s || el.getAttribute("data-suite") === s) &&
               (!t || el.getAttribute("data-subtype") === t) &&
               (!o || el.getAttribute("data-outcome") === o) &&
               (!q || el.alText.indexOf(q) !== -1);
      el.hidden = !ok;
      if (ok) { n += 1; }
    });
    count.textContent = String(n);
    none.hidden = n !== 0;
  }

  [suite, subtype, outcome].forEach(function (el) { el.addEventListener("change", apply); });
  search.addEventListener("input", apply);
  Array.prototype.slice.call(document.querySelectorAll("a.suite-link")).forEach(function (a) {
    a.addEventListener("click", function () {
      var name = a.getAttribute("data-suite");
      var known = Array.prototype.some.call(suite.options, function (op) { return op.value === name; });
      suite.value = known ? name : "";
      apply();
    });
  });
  apply();
})();
