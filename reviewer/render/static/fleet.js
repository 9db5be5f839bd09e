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
  document.documentElement.dataset.ready = "true";
})();
// With `reviewer fleet serve`: Approve clean sites / Accept group, sent to the local server with
// the session secret in a header; answers are shown with textContent only.
(function () {
  const actions = JSON.parse(document.getElementById("fleet-actions").textContent || "{}");
  if (!actions.endpoint) return;
  const panel = document.getElementById("results");
  const title = document.getElementById("result-title");
  const list = document.getElementById("result-list");
  const accepted = [];
  async function send(body) {
    title.textContent = "working…";
    list.replaceChildren();
    panel.classList.remove("hidden");
    let answer;
    try {
      const r = await fetch(actions.endpoint, {method: "POST", headers: {"Content-Type": "application/json",
        "X-Reviewer-Session": actions.secret}, body: JSON.stringify(body)});
      answer = await r.json();
    } catch (e) {
      answer = {ok: false, message: "no answer from reviewer fleet serve: " + e};
    }
    title.textContent = answer.message || "";
    for (const s of answer.sites || []) {
      const li = document.createElement("li");
      li.textContent = s.outcome + " " + s.name + (s.groups && s.groups.length ? " [" + s.groups.join(", ") + "]" : "") +
                       ": " + s.message;
      list.appendChild(li);
    }
  }
  const clean = document.getElementById("approve-clean");
  clean.addEventListener("click", () => {
    if (confirm(clean.title + "?")) send({action: "approve-clean"});
  });
  for (const b of document.querySelectorAll("button.accept")) {
    b.addEventListener("click", () => {
      const reason = prompt("Accept " + b.dataset.group + ": what did you inspect, and why is this change intended?");
      if (!reason || !reason.trim()) return;
      if (!accepted.includes(b.dataset.group)) accepted.push(b.dataset.group);
      send({action: "accept", groups: accepted.slice(), reason: reason});
    });
  }
})();
