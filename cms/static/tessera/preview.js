/* Preview frames as tall as what they show (the email's safety information is at its foot).
   The frames are sandboxed without scripts; allow-same-origin lets this page measure them. */
(function () {
  "use strict";
  function fit(frame) {
    try {
      var doc = frame.contentDocument;
      if (!doc || !doc.documentElement) { return; }
      frame.style.height = "1px";  /* measure the content, not the frame's last height */
      var height = Math.max(doc.documentElement.scrollHeight, doc.body ? doc.body.scrollHeight : 0);
      if (height > 0) { frame.style.height = (height + 4) + "px"; frame.setAttribute("data-fitted", "true"); }
    } catch (e) { /* a frame we may not read keeps its default height */ }
  }
  function init() {
    var frames = document.querySelectorAll("iframe[data-fit-content]");
    Array.prototype.forEach.call(frames, function (frame) {
      frame.addEventListener("load", function () { fit(frame); });
      fit(frame);
      window.addEventListener("resize", function () { fit(frame); });
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
}());
