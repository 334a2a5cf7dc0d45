// dom.js: typed DOM lookups and element creation shared by the pages, so that tsc checks every use
// of an element (an <input>'s value, a <dialog>'s showModal) instead of trusting `any`.

/**
 * The element with this id, checked to be of the given class (HTMLElement when omitted).
 * A missing element or one of another kind is a bug in the page: it throws at once, naming the id.
 * @template {HTMLElement} [T=HTMLElement]
 * @param {string} id
 * @param {{new (...args: any[]): T, prototype: T}} [type] e.g. HTMLInputElement
 * @returns {T}
 */
export function $(id, type) {
  const el = document.getElementById(id);
  const want = type || HTMLElement;
  if (!(el instanceof want)) throw new TypeError(el ? `#${id} is a <${el.tagName.toLowerCase()}>, not a ${want.name}` : `no element #${id}`);
  return /** @type {T} */ (el);
}

/**
 * The element with this id if there is one (it may be created later), else null.
 * @template {HTMLElement} [T=HTMLElement]
 * @param {string} id @param {{new (...args: any[]): T, prototype: T}} [type]
 * @returns {T|null}
 */
export function maybe(id, type) {
  const el = document.getElementById(id);
  return el instanceof (type || HTMLElement) ? /** @type {T} */ (el) : null;
}

/**
 * The first descendant of root matching sel, checked to be of the given class.
 * @template {Element} [T=HTMLElement]
 * @param {ParentNode} root @param {string} sel @param {{new (...args: any[]): T, prototype: T}} [type]
 * @returns {T}
 */
export function find(root, sel, type) {
  const el = root.querySelector(sel);
  const want = type || HTMLElement;
  if (!(el instanceof want)) throw new TypeError(el ? `${sel} is a <${el.tagName.toLowerCase()}>, not a ${want.name}` : `no element ${sel}`);
  return /** @type {T} */ (el);
}

/**
 * A new element: attributes (`text` sets the text content), then children.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag @param {Record<string, string>} [attrs] @param {(Node|string)[]} [kids]
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs = {}, kids = []) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v);
  }
  el.append(...kids);
  return el;
}
