// The admin's autocomplete pickers (select2) give their search box no name; screen readers
// then announce an unnamed field. Name each one after its field's label, also when select2
// re-creates the box after a choice.
(function () {
  "use strict";
  function nameOf(container) {
    const select = container.previousElementSibling;
    if (!select || select.tagName !== "SELECT") return null;
    const label = document.querySelector(`label[for="${select.id}"]`);
    return label ? label.textContent.replace(/:\s*$/, "").trim() : null;
  }
  function name(root) {
    // select2 puts its "remove all" × straight into the chips' <ul>; each chip has its own
    // ×, so this one is hidden from assistive technology (a list holds only items).
    for (const clear of root.querySelectorAll(".select2-selection__rendered > span:not([aria-hidden])")) {
      clear.setAttribute("aria-hidden", "true");
    }
    for (const field of root.querySelectorAll(".select2-search__field:not([aria-label])")) {
      const container = field.closest(".select2-container");
      const label = container && nameOf(container);
      if (label) field.setAttribute("aria-label", label);
    }
  }
  function start() {
    name(document);
    new MutationObserver(() => name(document)).observe(document.body, { childList: true, subtree: true });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
