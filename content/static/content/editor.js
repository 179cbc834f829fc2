// Tessera's body editor: django-prose-editor (ProseMirror/Tiptap, shipped in its wheel) with
// two small extensions of our own — footnote markers bound to the version's references and
// the allowed personalisation tokens as chips. No CDN, no inline script (CSP script-src
// 'self'). Whatever this writes is sanitised and checked again on the server
// (content.rules, content.footnotes): the editor only makes the right markup easy.
import {
  Bold, BulletList, Document, Dropcursor, Gapcursor, HardBreak, Heading, History, HTML,
  Italic, Link, ListItem, Mark, Menu, Node, OrderedList, Paragraph, Plugin, Superscript,
  Table, TableCell, TableHeader, TableRow, Text, createTextareaEditor, initializeEditors,
} from "../django_prose_editor/editor.js";

const TOKEN_RE = /\{\{\s*recipient\.([a-z_]+)\s*\}\}/g;

// <small> (ISI fine print) and classes on paragraphs (footer parts) survive editing.
const Small = Mark.create({
  name: "small",
  parseHTML: () => [{ tag: "small" }],
  renderHTML: () => ["small", 0],
});
const ClassedParagraph = Paragraph.extend({
  addAttributes() {
    return {
      class: {
        default: null,
        parseHTML: (el) => el.getAttribute("class"),
        renderHTML: (attrs) => (attrs.class ? { class: attrs.class } : {}),
      },
    };
  },
});

// A footnote: <sup class="footnote cite-CODE">n</sup>; n is renumbered on every change by
// first appearance, the rule content/footnotes.py applies again on save.
const Footnote = Node.create({
  name: "footnote",
  group: "inline",
  inline: true,
  atom: true,
  selectable: true,
  addAttributes() {
    return { code: { default: null }, n: { default: 1 } };
  },
  parseHTML() {
    return [{
      tag: "sup.footnote",
      priority: 100,
      getAttrs: (el) => {
        const cls = [...el.classList].find((c) => c.startsWith("cite-") && c.length > 5);
        return cls ? { code: cls.slice(5), n: parseInt(el.textContent, 10) || 1 } : false;
      },
    }];
  },
  renderHTML({ node }) {
    return ["sup", { class: `footnote cite-${node.attrs.code}` }, String(node.attrs.n)];
  },
  addProseMirrorPlugins() {
    return [new Plugin({
      appendTransaction(transactions, _old, state) {
        if (!transactions.some((t) => t.docChanged)) return null;
        const numbers = new Map();
        let tr = null;
        state.doc.descendants((node, pos) => {
          if (node.type.name !== "footnote") return;
          if (!numbers.has(node.attrs.code)) numbers.set(node.attrs.code, numbers.size + 1);
          const n = numbers.get(node.attrs.code);
          if (node.attrs.n !== n) {
            tr = tr || state.tr;
            tr.setNodeMarkup(pos, undefined, { ...node.attrs, n });
          }
        });
        return tr;
      },
    })];
  },
});

// A personalisation token: stored as <span class="token">{{ recipient.field }}</span> (the
// token is plain text inside, exactly what content.rules checks), shown as a chip.
const Token = Node.create({
  name: "token",
  group: "inline",
  inline: true,
  atom: true,
  selectable: true,
  addAttributes() {
    return { field: { default: null } };
  },
  parseHTML() {
    return [
      { tag: "span[data-tessera-token]", priority: 100,
        getAttrs: (el) => ({ field: el.dataset.tesseraToken }) },
      { tag: "span.token", priority: 90,
        getAttrs: (el) => {
          const inner = el.querySelector("[data-tessera-token]");
          const match = /\{\{\s*recipient\.([a-z_]+)\s*\}\}/.exec(el.textContent);
          const field = inner ? inner.dataset.tesseraToken : match && match[1];
          return field ? { field } : false;
        } },
    ];
  },
  renderHTML({ node }) {
    return ["span", { class: "token" }, `{{ recipient.${node.attrs.field} }}`];
  },
  addNodeView() {
    return ({ node }) => {
      const dom = document.createElement("span");
      dom.className = "tessera-token-chip";
      dom.textContent = node.attrs.field.replace(/_/g, " ");
      dom.title = `Personalised: recipient's ${dom.textContent}`;
      return { dom };
    };
  },
});

function asChips(html) {
  // Only text tokens become chips; a token inside an attribute is refused on save anyway.
  return html.replace(/(>|^)([^<]*)/g, (_m, gt, text) =>
    gt + text.replace(TOKEN_RE, (_t, f) => `<span data-tessera-token="${f}"></span>`));
}

function label(text, forId) {
  const el = document.createElement("label");
  el.textContent = text;
  el.htmlFor = forId;
  return el;
}

function citationsSelect(textarea) {
  const name = textarea.name.replace(/body_html$/, "citations");
  return document.querySelector(`select[name="${name}"]`);
}

function brandSelect(textarea) {
  return textarea.form && textarea.form.querySelector('select[name="brand"]');
}

function refreshFootnoteChoices(select, textarea, references) {
  const brand = brandSelect(textarea);
  const brandId = brand && brand.value ? parseInt(brand.value, 10) : null;
  select.length = 1;
  for (const ref of references) {
    if (brandId && ref.brand !== brandId) continue;
    select.add(new Option(ref.label, ref.code));
  }
}

function bindToCitations(textarea, ref) {
  // A footnote cites its reference: add it to the version's references if missing.
  const select = citationsSelect(textarea);
  if (!select) return;
  const existing = [...select.options].find((o) => o.value === String(ref.pk));
  if (existing) {
    if (existing.selected) return;
    existing.selected = true;
  } else {
    select.add(new Option(ref.label, String(ref.pk), true, true));
  }
  select.dispatchEvent(new Event("change", { bubbles: true }));
  if (window.django && window.django.jQuery) window.django.jQuery(select).trigger("change");
}

function toolbar(textarea, editor) {
  const references = JSON.parse(textarea.dataset.tesseraReferences || "[]");
  const fields = JSON.parse(textarea.dataset.tesseraTokens || "[]");
  const bar = document.createElement("div");
  bar.className = "tessera-editor-bar";
  const base = textarea.id;

  const fn = document.createElement("select");
  fn.id = `${base}-footnote`;
  fn.add(new Option("Insert footnote for…", ""));
  refreshFootnoteChoices(fn, textarea, references);
  fn.addEventListener("focus", () => refreshFootnoteChoices(fn, textarea, references));
  fn.addEventListener("change", () => {
    const ref = references.find((r) => r.code === fn.value);
    fn.value = "";
    if (!ref) return;
    editor.chain().focus().insertContent({ type: "footnote", attrs: { code: ref.code } }).run();
    bindToCitations(textarea, ref);
  });

  const tok = document.createElement("select");
  tok.id = `${base}-token`;
  tok.add(new Option("Insert personalisation…", ""));
  for (const f of fields) tok.add(new Option(f.replace(/_/g, " "), f));
  tok.addEventListener("change", () => {
    const field = tok.value;
    tok.value = "";
    if (field) editor.chain().focus().insertContent({ type: "token", attrs: { field } }).run();
  });

  bar.append(label("Footnote", fn.id), fn, label("Personalise", tok.id), tok);
  return bar;
}

function visibleText(html) {
  const div = document.createElement("div");
  div.innerHTML = html.replace(TOKEN_RE, "");
  return div.textContent.replace(/\s+/g, "");
}

function createEditor(textarea) {
  if (textarea.closest(".prose-editor")) return null;
  const original = textarea.value;
  textarea.value = asChips(original);
  const editor = createTextareaEditor(textarea, [
    Document, Dropcursor, Gapcursor, ClassedParagraph, HardBreak, Text, History, HTML,
    Menu.configure({
      groups: [
        { group: "blockType -lists", type: "dropdown", minItems: 2 },
        { group: "lists" }, { group: "nodes -blockType -lists" }, { group: "marks" },
        { group: "link" }, { group: "history" }, { group: "utility" },
      ],
    }),
    Heading.configure({ levels: [1, 2, 3] }), Bold, Italic, Superscript, Small,
    BulletList, OrderedList, ListItem,
    Link.configure({ protocols: ["https", "http", "mailto", "tel"], enableTarget: false }),
    Table, TableRow, TableHeader, TableCell, Footnote, Token,
  ]);
  textarea.value = original; // unchanged until the author edits (then onUpdate writes it)
  const fieldLabel = document.querySelector(`label[for="${textarea.id}"]`);
  const dom = editor.view.dom;
  dom.setAttribute("role", "textbox");
  dom.setAttribute("aria-multiline", "true");
  dom.setAttribute("aria-label", fieldLabel ? fieldLabel.textContent.replace(/:\s*$/, "").trim() : "Text");
  const wrapper = textarea.closest(".prose-editor");
  // One box for the insert bar, a warning if any, and the editor (one flex item in a row).
  const box = document.createElement("div");
  box.className = "tessera-editor";
  wrapper.before(box);
  box.append(toolbar(textarea, editor));
  if (original && visibleText(editor.getHTML()) !== visibleText(original)) {
    const note = document.createElement("p");
    note.className = "tessera-editor-warning";
    note.setAttribute("role", "status");
    note.textContent = "Part of this body uses markup the editor cannot show; it is kept as " +
      "written unless you edit here. Use the HTML button to see the source.";
    box.append(note);
  }
  box.append(wrapper);
  return editor;
}

initializeEditors(createEditor, "[data-tessera-editor]");
