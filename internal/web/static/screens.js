// screens.js: the full-page screens (removed, session ended, wrong link, camera blocked…), the
// connection status line, the warning banner and short notices ("toasts") of the session page.

import { t } from './i18n.js';
import { $, maybe } from './dom.js';


/** @typedef {[label: string, action: () => void, primary?: boolean]} Action */

export class Screens {
  constructor() {
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.toastTimer = undefined;
  }

  /**
   * Show a full screen by kind; its texts are screen.<kind>.title and screen.<kind>.text.
   * @param {string} kind @param {Action[]} actions
   */
  show(kind, actions) {
    document.body.dataset.screen = kind;
    $('screen-title').textContent = t(`screen.${kind}.title`);
    $('screen-text').textContent = t(`screen.${kind}.text`);
    $('screen-actions').replaceChildren(...actions.map(([label, fn, primary]) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = primary ? 'btn btn-primary' : 'btn';
      b.textContent = label;
      b.addEventListener('click', fn);
      return b;
    }));
    const screen = $('screen');
    screen.hidden = false;
    screen.dataset.kind = kind;
    const title = $('screen-title');
    title.tabIndex = -1;
    (screen.querySelector('button') || title).focus();
  }

  hide() {
    $('screen').hidden = true;
    document.body.dataset.screen = 'session';
  }

  /** @param {string} text @param {'connecting'|'joined'|'reconnecting'|'closed'} state */
  status(text, state) {
    $('status').textContent = text;
    document.body.dataset.connection = state;
    if (state === 'joined' && !['removed', 'ended', 'wrong-link', 'left', 'replaced', 'media-denied'].includes(document.body.dataset.screen || '')) {
      document.body.dataset.screen = 'session';
    }
  }

  /**
   * A lasting warning under the top bar, with an optional button.
   * @param {string} text @param {string} [label] @param {() => void} [action]
   */
  banner(text, label, action) {
    $('banner-text').textContent = text;
    const b = $('banner-action');
    b.hidden = !label;
    b.textContent = label || '';
    b.onclick = action ? () => { action(); this.hideBanner(); } : null;
    $('banner-close').onclick = () => this.hideBanner();
    $('banner').hidden = false;
  }

  hideBanner() {
    $('banner').hidden = true;
  }

  /** A short notice that goes away by itself. @param {string} text */
  toast(text) {
    let el = maybe('toast');
    if (!el) {
      el = document.createElement('div');
      el.id = 'toast';
      el.className = 'toast';
      el.setAttribute('role', 'status');
      el.setAttribute('aria-live', 'polite');
      el.dataset.testid = 'toast';
      document.body.append(el);
    }
    el.textContent = text;
    el.hidden = false;
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => { el.hidden = true; }, 5000);
  }
}
