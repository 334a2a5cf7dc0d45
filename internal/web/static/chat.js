// chat.js: the text chat of a session (topic "chat", payload {text}).

import { lang, t } from './i18n.js';

const MAX = 1000;

export class Chat {
  /**
   * @param {{log: HTMLOListElement, form: HTMLFormElement, input: HTMLInputElement, badge: HTMLElement}} els
   * @param {(text: string) => boolean} send returns false when the message could not leave
   * @param {() => boolean} isOpen whether the chat panel is visible
   */
  constructor(els, send, isOpen) {
    this.els = els;
    this.send = send;
    this.isOpen = isOpen;
    this.unread = 0;
    els.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const text = els.input.value.trim().slice(0, MAX);
      if (!text) return;
      if (this.send(text)) {
        this.add(t('chat.me'), text, true);
        els.input.value = '';
      } else {
        this.notice(t('chat.notSent'));
      }
    });
  }

  /** @param {string} who @param {unknown} text @param {boolean} mine */
  add(who, text, mine) {
    if (typeof text !== 'string' || !text) return;
    const li = document.createElement('li');
    li.className = mine ? 'chat-msg mine' : 'chat-msg';
    li.dataset.testid = 'chat-msg';
    const head = document.createElement('div');
    head.className = 'chat-head';
    const name = document.createElement('strong');
    name.textContent = who;
    const time = document.createElement('time');
    const now = new Date();
    time.dateTime = now.toISOString();
    time.textContent = now.toLocaleTimeString(lang(), { hour: '2-digit', minute: '2-digit' });
    head.append(name, time);
    const body = document.createElement('p');
    body.textContent = text.slice(0, MAX); // textContent: never HTML
    li.append(head, body);
    this.els.log.append(li);
    li.scrollIntoView({ block: 'end' });
    if (!mine && !this.isOpen()) {
      this.unread++;
      this.paintBadge();
    }
  }

  /** A line from the page itself (someone joined, a message could not be sent…). @param {string} text */
  notice(text) {
    const li = document.createElement('li');
    li.className = 'chat-notice';
    li.textContent = text;
    this.els.log.append(li);
    li.scrollIntoView({ block: 'end' });
  }

  opened() {
    this.unread = 0;
    this.paintBadge();
    this.els.input.focus();
  }

  paintBadge() {
    this.els.badge.hidden = this.unread === 0;
    this.els.badge.textContent = this.unread > 99 ? '99+' : String(this.unread);
  }
}
