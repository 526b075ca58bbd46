// Follows a run: polls its live.json every 2 s while the run is running (written for
// evoagent ui; no library). The report below is as of the page's load; reload for charts.
(function () {
  var box = document.getElementById("live");
  if (!box) return;
  function show(data) {
    document.getElementById("live-done").textContent = data.n_done + " / " + data.n_tasks;
    document.getElementById("live-status").textContent = data.status;
    document.getElementById("live-rate").textContent =
      data.rolling_solve_rate === null ? "-" : data.rolling_solve_rate.toFixed(2);
    document.getElementById("live-tools").textContent = data.tools_per_batch.join(", ") || "-";
    box.dataset.status = data.status;
  }
  function poll() {
    fetch(box.dataset.url, { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        show(data);
        if (data.status === "running") setTimeout(poll, 2000);
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  poll();
})();
