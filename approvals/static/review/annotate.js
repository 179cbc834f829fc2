/* Anchored annotations on the review page (no inline script: CSP script-src 'self').
 *
 * - Select words in the rendered text (#annotate-text, blocks marked data-block) and press
 *   "Annotate selection": the form gets a text-quote anchor {exact, prefix, suffix, block}.
 * - "Annotate R1" buttons next to a reference, companion or exclusion pick that target.
 * - Quotes of existing annotations are highlighted (<mark>) in the text.
 * Without JavaScript the form still works: choose the target, type the quote.
 */
(function () {
  "use strict";
  var CONTEXT = 32;

  function normalise(text) {
    return (text || "").replace(/\s+/g, " ").trim();
  }

  function rootOf(node) {
    while (node && node !== document) {
      if (node.nodeType === 1 && node.classList.contains("anchor-root")) { return node; }
      node = node.parentNode;
    }
    return null;
  }

  function textBefore(root, range) {
    var r = document.createRange();
    r.selectNodeContents(root);
    r.setEnd(range.startContainer, range.startOffset);
    return r.toString();
  }

  function textAfter(root, range) {
    var r = document.createRange();
    r.selectNodeContents(root);
    r.setStart(range.endContainer, range.endOffset);
    return r.toString();
  }

  var form = document.getElementById("annotation-form");
  var button = document.getElementById("annotate-selection");
  var pending = null;

  function field(name) { return form ? form.querySelector("[name=" + name + "]") : null; }

  function showQuoteFields() {
    var target = field("target");
    var quote = document.getElementById("quote-fields");
    if (target && quote) { quote.hidden = target.value !== "text"; }
  }

  function currentSelection() {
    var selection = window.getSelection();
    if (!selection || selection.isCollapsed || selection.rangeCount === 0) { return null; }
    var range = selection.getRangeAt(0);
    var root = rootOf(range.commonAncestorContainer);
    if (!root) { return null; }
    var exact = normalise(selection.toString());
    if (!exact) { return null; }
    var before = textBefore(root, range).replace(/\s+/g, " ");
    var after = textAfter(root, range).replace(/\s+/g, " ");
    return {
      exact: exact,
      prefix: before.slice(Math.max(0, before.length - CONTEXT)).replace(/^\s+/, ""),
      suffix: after.slice(0, CONTEXT).replace(/\s+$/, ""),
      block: root.getAttribute("data-block") || "body"
    };
  }

  function onSelectionChange() {
    if (!button) { return; }
    pending = currentSelection();
    button.hidden = !pending;
    if (pending) {
      button.textContent = "Annotate selection: “" +
        (pending.exact.length > 40 ? pending.exact.slice(0, 39) + "…" : pending.exact) + "”";
    }
  }

  function useSelection() {
    var anchor = pending || currentSelection();
    if (!form || !anchor) { return; }
    field("target").value = "text";
    field("exact").value = anchor.exact;
    field("prefix").value = anchor.prefix;
    field("suffix").value = anchor.suffix;
    if (field("block")) { field("block").value = anchor.block; }
    showQuoteFields();
    field("body").focus();
    form.scrollIntoView({block: "center"});
  }

  function useTarget(event) {
    var value = event.currentTarget.getAttribute("data-target");
    if (!form || !value) { return; }
    field("target").value = value;
    showQuoteFields();
    field("body").focus();
    form.scrollIntoView({block: "center"});
  }

  function highlight() {
    var items = document.querySelectorAll('.annotation[data-kind="text"]');
    Array.prototype.map.call(items, function (li) {
      return {id: li.getAttribute("data-id"), exact: li.getAttribute("data-exact"),
              block: li.getAttribute("data-block") || "body",
              open: li.getAttribute("data-state") === "open"};
    }).forEach(function (anchor) {
      var exact = normalise(anchor.exact);
      if (!exact) { return; }
      var roots = document.querySelectorAll('.anchor-root[data-block="' + anchor.block + '"]');
      Array.prototype.forEach.call(roots, function (root) {
        var walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT, null);
        var node;
        while ((node = walker.nextNode())) {
          var text = node.nodeValue.replace(/\s+/g, " ");
          var at = text.indexOf(exact);
          if (at < 0 || node.parentNode.nodeName === "MARK") { continue; }
          var range = document.createRange();
          range.setStart(node, at);
          range.setEnd(node, at + exact.length);
          var mark = document.createElement("mark");
          mark.className = "anchor-mark" + (anchor.open ? " open" : " resolved");
          mark.setAttribute("data-annotation", anchor.id);
          mark.title = "Annotation " + anchor.id + (anchor.open ? " (open)" : " (resolved)");
          try { range.surroundContents(mark); } catch (e) { /* crosses elements: skip */ }
          return;
        }
      });
    });
  }

  if (form) {
    var target = field("target");
    if (target) { target.addEventListener("change", showQuoteFields); }
    showQuoteFields();
    Array.prototype.forEach.call(document.querySelectorAll(".annotate-target"), function (el) {
      el.addEventListener("click", useTarget);
    });
  }
  if (button) {
    document.addEventListener("selectionchange", onSelectionChange);
    // Keep the selection when the button is pressed (mousedown would clear it first).
    button.addEventListener("mousedown", function (event) { event.preventDefault(); });
    button.addEventListener("click", useSelection);
  }
  highlight();
}());
