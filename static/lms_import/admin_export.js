// The admin's export page (templates/admin/import_export/export.html): django-import-export binds its "Select all"
// toggle with an inline onchange attribute, which the Content-Security-Policy refuses; bind it here instead.
document.addEventListener("DOMContentLoaded", function () {
  "use strict";
  document.querySelectorAll("input.select-toggle").forEach(function (toggle) {
    toggle.addEventListener("change", onSelectToggleChange);  // defined by import_export/export_selectable_fields.js
  });
});
