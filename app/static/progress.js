// Live progress of a newsletter send; without JavaScript the page shows the same on reload.
(function () {
  var box = document.getElementById("send-progress");
  if (!box || !window.fetch) { return; }
  var url = box.getAttribute("data-url");
  function update() {
    fetch(url, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (d) {
      ["sent", "waiting", "deferred", "failed"].forEach(function (k) {
        var el = box.querySelector("[data-count=" + k + "]");
        if (el) { el.textContent = d[k]; }
      });
      var bar = box.querySelector("progress");
      if (bar) { bar.value = d.percent; bar.textContent = d.percent + "%"; }
      var pct = box.querySelector("[data-count=percent]");
      if (pct) { pct.textContent = d.percent; }
      if (d.status === "sending" || d.status === "scheduled") { setTimeout(update, 3000); }
      else if (box.getAttribute("data-status") !== d.status) { window.location.reload(); }
    }).catch(function () { setTimeout(update, 10000); });
  }
  setTimeout(update, 3000);
})();
