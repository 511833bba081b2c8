// The job page's progress bar: poll the job's progress and reload the page when the job moves on
// (validated, imported, failed), is found lost, goes quiet (no heartbeat for several beats) or comes
// back, or starts or stops waiting for another import. Where no count can be known the bar is
// indeterminate (no value) and the text gives the elapsed time. Without JavaScript the page
// refreshes itself instead.
(function () {
  "use strict";
  var box = document.getElementById("job-progress");
  if (!box) { return; }
  var url = box.getAttribute("data-progress-url");
  var status = box.getAttribute("data-status");
  var lost = box.getAttribute("data-lost") === "1";
  var stalled = box.getAttribute("data-stalled") === "1";
  var quiet = box.getAttribute("data-quiet") === "1";
  var waitingFor = box.getAttribute("data-waiting-for") || null;
  var bar = document.getElementById("progress-bar");
  var text = document.getElementById("progress-text");
  var delay = 500;

  function elapsed(data) {
    return data.elapsed === null ? "" : " · " + data.elapsed + " s elapsed";
  }

  function show(data) {
    bar.max = Math.max(data.total, 1);
    if (data.indeterminate) {
      bar.removeAttribute("value");
      bar.textContent = "";
      if (data.stage === "writing") {
        text.textContent = "All " + data.total + " rows checked; writing them to the database" + elapsed(data);
      } else if (data.done) {
        text.textContent = data.done + " rows so far" + elapsed(data);
      } else {
        text.textContent = "Not started yet" + elapsed(data);
      }
    } else {
      bar.value = data.done;
      bar.textContent = data.percent + "%";
      text.textContent = data.done + " of " + data.total + " rows (" + data.percent + "%)" + elapsed(data);
    }
    var age = document.getElementById("heartbeat-age");
    if (age && data.heartbeat_age !== null) { age.textContent = Math.round(data.heartbeat_age); }
  }

  function poll() {
    fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (data) {
        var waiting = data.waiting_for === null ? null : String(data.waiting_for);
        if (data.status !== status || data.lost !== lost || data.stalled !== stalled || data.quiet !== quiet ||
            waiting !== waitingFor) {
          window.location.reload();
          return;
        }
        show(data);
        delay = 500;
        window.setTimeout(poll, delay);
      })
      .catch(function () {
        delay = Math.min(delay * 2, 5000);  // the server restarts, the network blips: keep trying, slower
        window.setTimeout(poll, delay);
      });
  }
  window.setTimeout(poll, delay);
})();
