"use strict";
// Filters of the fleet page: by decision, by site (substring) and by group. Rows and groups
// carry data-* attributes written by the template; nothing here builds markup from report text.
(function () {
  const decision = document.getElementById("f-decision");
  const site = document.getElementById("f-site");
  const group = document.getElementById("f-group");
  const shown = document.getElementById("shown");
  function apply() {
    const d = decision.value, s = site.value.trim().toLowerCase(), g = group.value;
    let n = 0;
    for (const row of document.querySelectorAll("tr.site")) {
      const groups = (row.dataset.groups || "").split(" ");
      const ok = (!d || row.dataset.decision === d) && (!s || row.dataset.site.toLowerCase().includes(s)) &&
                 (!g || groups.includes(g));
      row.classList.toggle("hidden", !ok);
      if (ok) n += 1;
    }
    for (const box of document.querySelectorAll("section.group")) {
      const sites = (box.dataset.sites || "").split(" ");
      const ok = (!g || box.dataset.group === g) && (!s || sites.some((x) => x.toLowerCase().includes(s)));
      box.classList.toggle("hidden", !ok);
    }
    shown.textContent = n + " site(s) shown";
  }
  for (const el of [decision, site, group]) el.addEventListener("input", apply);
  for (const chip of document.querySelectorAll(".chip[data-group]")) {
    chip.addEventListener("click", () => { group.value = chip.dataset.group; apply(); });
  }
  apply();
})();
