/* Tessera, every screen: a box that scrolls sideways (a wide table or the journey map on a
   phone) can be reached and scrolled with the keyboard: it gets tabindex="0" and a name
   while it overflows (WCAG 2.1.1; axe "scrollable-region-focusable"). */
(function () {
  "use strict";
  var SELECTOR = ".scroll-x, .map-scroll, .diagram, .diff, .pv-table-wrap, table.list, table.manifest, table.diff";
  function label(box) {
    var section = box.closest("section, .card, .pv-card");
    var heading = section && section.querySelector("h1, h2, h3");
    var caption = box.querySelector("caption");
    return (caption && caption.textContent.trim()) || (heading && heading.textContent.trim()) || "Scrollable content";
  }
  function mark() {
    Array.prototype.forEach.call(document.querySelectorAll(SELECTOR), function (box) {
      var scrolls = box.scrollWidth > box.clientWidth + 1 || box.scrollHeight > box.clientHeight + 1 &&
        getComputedStyle(box).overflowY !== "visible";
      if (scrolls && !box.hasAttribute("tabindex")) {
        box.setAttribute("tabindex", "0");
        box.setAttribute("data-scroll-focus", "");
        if (!box.hasAttribute("aria-label") && !box.hasAttribute("aria-labelledby") && box.tagName !== "TABLE") {
          box.setAttribute("role", "region");
          box.setAttribute("aria-label", label(box));
        }
      } else if (!scrolls && box.hasAttribute("data-scroll-focus")) {
        box.removeAttribute("tabindex");
        box.removeAttribute("data-scroll-focus");
      }
    });
  }
  window.Tessera = window.Tessera || {};
  window.Tessera.markScrollables = mark;  /* after a layout change (tests/axe.py calls it) */
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", mark); } else { mark(); }
  window.addEventListener("load", mark);
  window.addEventListener("resize", mark);
}());
