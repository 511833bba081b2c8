// A page that follows a worker (the revert page while its revert runs) reloads itself every two seconds, so
// that its progress bar moves. A script rather than <meta http-equiv="refresh">, which screen readers announce
// and which axe-core counts as a critical violation; without JavaScript the <noscript> meta tag does it.
(function () {
  "use strict";
  var box = document.querySelector("[data-refresh-seconds]");
  if (!box) { return; }
  var seconds = parseFloat(box.getAttribute("data-refresh-seconds")) || 2;
  window.setTimeout(function () { window.location.reload(); }, seconds * 1000);
})();
