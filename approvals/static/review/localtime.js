/* Readable times in the reader's own time zone: every <time data-local datetime="…Z">
 * is rewritten with the browser's locale and zone (the server's UTC text stays in the
 * title). Without JavaScript the server's "29 Nov 2026, 05:57 UTC" is shown. */
(function () {
  "use strict";
  if (!window.Intl || !Intl.DateTimeFormat) { return; }
  var format = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
    timeZoneName: "short"
  });
  Array.prototype.forEach.call(document.querySelectorAll("time[data-local][datetime]"), function (el) {
    var when = new Date(el.getAttribute("datetime"));
    if (isNaN(when.getTime())) { return; }
    el.title = el.textContent.trim();
    el.textContent = format.format(when);
  });
}());
