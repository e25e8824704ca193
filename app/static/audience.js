// The newsletter form: as the audience changes, say how many it reaches (the page works
// without this: the 「人数を確かめる」 button counts on the server).
(function () {
  var script = document.currentScript;
  var form = document.getElementById("audience");
  var out = document.getElementById("audience-count-text");
  if (!form || !out || !window.fetch) { return; }
  function refresh() {
    var params = new URLSearchParams();
    form.querySelectorAll("select, input[type=checkbox]").forEach(function (el) {
      if (el.type === "checkbox" && !el.checked) { return; }
      params.append(el.name, el.value);
    });
    fetch(script.dataset.url + "?" + params.toString(), {credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (n) { if (n) { out.textContent = n.text; } });
  }
  form.addEventListener("change", refresh);
})();
