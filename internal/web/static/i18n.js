// i18n.js: English and French texts of the pages. OpenTera's default language is French.

/** @type {Record<string, string>} */
let dict = {};
let current = 'fr';

/**
 * The page language: lang= of the URL, else the browser's languages, else French.
 * @param {string|null} param @param {readonly string[]} browser
 * @returns {'en'|'fr'}
 */
export function pickLang(param, browser) {
  for (const l of [param || '', ...browser]) {
    const s = l.toLowerCase();
    if (s.startsWith('en')) return 'en';
    if (s.startsWith('fr')) return 'fr';
  }
  return 'fr';
}

/** Load the dictionary of a language (static/i18n/<lang>.json). @param {'en'|'fr'} lang */
export async function loadLang(lang) {
  current = lang;
  const url = new URL(`i18n/${lang}.json`, import.meta.url);
  try {
    const res = await fetch(url, { cache: 'no-cache' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    dict = await res.json();
  } catch (err) {
    console.warn('i18n: cannot load', url.href, err);
    dict = {};
  }
  document.documentElement.lang = lang;
}

/** @returns {'en'|'fr'} */
export function lang() {
  return current === 'en' ? 'en' : 'fr';
}

/**
 * The text of a key, with {name} placeholders replaced. A missing key shows the key itself.
 * @param {string} key @param {Record<string, string|number>} [vars]
 */
export function t(key, vars) {
  return fill(dict[key] ?? key, vars);
}

/** @param {string} s @param {Record<string, string|number>} [vars] */
function fill(s, vars) {
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.replaceAll(`{${k}}`, String(v));
  return s;
}

/**
 * Translate the static markup: data-i18n (text), data-i18n-label (aria-label, and title on buttons),
 * data-i18n-placeholder.
 * @param {ParentNode} root
 */
export function translate(root) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.getAttribute('data-i18n') || '');
  for (const el of root.querySelectorAll('[data-i18n-label]')) {
    const s = t(el.getAttribute('data-i18n-label') || '');
    el.setAttribute('aria-label', s);
    if (el.tagName === 'BUTTON') el.setAttribute('title', s); // a tooltip for icon buttons
  }
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) {
    el.setAttribute('placeholder', t(el.getAttribute('data-i18n-placeholder') || ''));
  }
}

/** @type {Map<string, Record<string, string>>} */
const others = new Map();

/**
 * A translator for another language than the page's (e.g. an e-mail in the patient's language).
 * Falls back to the page's texts when that language cannot be loaded.
 * @param {string} lng @returns {Promise<(key: string, vars?: Record<string, string|number>) => string>}
 */
export async function translatorFor(lng) {
  const l = pickLang(lng, []);
  let d = others.get(l);
  if (!d) {
    try {
      const res = await fetch(new URL(`i18n/${l}.json`, import.meta.url), { cache: 'no-cache' });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      d = /** @type {Record<string, string>} */ (await res.json());
      others.set(l, d);
    } catch {
      return t;
    }
  }
  const dd = d;
  return (key, vars) => fill(dd[key] ?? dict[key] ?? key, vars);
}
