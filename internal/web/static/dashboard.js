// dashboard.js: the clinician dashboard at /rehab/: sign in with the API key, check the camera,
// start a session, invite and remove patients, copy their personal links, see who is connected, stop.

import { APIError, auth, clinician, labels, listSessions, manage, newUUID, personalLink } from './dashapi.js';
import { Preview } from './preview.js';
import { fillIcons, icon } from './icons.js';
import { lang, loadLang, pickLang, t, translate } from './i18n.js';

/** @typedef {import('./dashapi.js').Session} Session */
/** @typedef {import('./dashapi.js').Invitation} Invitation */

/** @param {string} id @returns {any} */
const $ = (id) => document.getElementById(id);

/**
 * @param {string} tag @param {Record<string, string>} [attrs] @param {(Node|string)[]} [kids]
 * @returns {any}
 */
function h(tag, attrs = {}, kids = []) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v);
  }
  el.append(...kids);
  return el;
}

/** @param {unknown} err */
function explain(err) {
  if (err instanceof APIError) {
    if (err.status === 0) return t('dash.unreachable');
    if (err.status === 401) return t('dash.badKey');
    return err.message || t('dash.failed', { status: err.status });
  }
  return String(err);
}

/** @param {string} text */
function alertMsg(text) {
  $('alert').textContent = text;
  $('alert').hidden = !text;
}

/** @param {string} text @param {HTMLInputElement} input */
async function copy(text, input) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch { /* not allowed here (plain http, no focus): fall back to selecting the text */ }
  input.focus();
  input.select();
  try {
    return document.execCommand('copy');
  } catch {
    return false;
  }
}

/** @param {string} iso @param {number} status */
function since(iso, status) {
  const start = iso ? new Date(iso) : null;
  if (!start || Number.isNaN(start.getTime())) return '';
  const min = Math.max(0, Math.round((Date.now() - start.getTime()) / 60000));
  const at = start.toLocaleTimeString(lang(), { hour: '2-digit', minute: '2-digit' });
  return status === 1 ? t('dash.startedAt', { time: at, min }) : at;
}

/** @param {string} kind */
const roleOf = (kind) => (kind === 'user' ? 'user' : kind === 'device' ? 'device' : 'participant');

class Dashboard {
  constructor() {
    /** @type {Map<number, HTMLElement>} */
    this.cards = new Map();
    /** @type {ReturnType<typeof setInterval>|undefined} */
    this.poll = undefined;
    this.pollFailed = false;
    this.me = clinician.uuid();
    $('my-name').value = clinician.name();
    $('my-name').addEventListener('change', () => clinician.setName($('my-name').value.trim()));
    $('login-form').addEventListener('submit', (/** @type {Event} */ ev) => {
      ev.preventDefault();
      auth.set($('login-key').value.trim());
      this.enter();
    });
    $('logout').addEventListener('click', () => this.logout());
    $('add-patient').addEventListener('click', () => this.addPatientRow(true));
    $('new-form').addEventListener('submit', (/** @type {Event} */ ev) => {
      ev.preventDefault();
      this.start();
    });
    $('refresh').addEventListener('click', () => this.refresh());
    this.addPatientRow(false);
    this.preview = new Preview({
      video: $('preview-video'), camera: $('preview-camera'), mic: $('preview-mic'),
      meter: $('meter'), toggle: $('preview-toggle'), message: $('preview-msg'),
    });
  }

  async enter() {
    if (!auth.get()) return this.showLogin();
    try {
      const sessions = await listSessions();
      $('login').hidden = true;
      $('app').hidden = false;
      $('logout').hidden = false;
      alertMsg('');
      this.render(sessions);
      clearInterval(this.poll);
      this.poll = setInterval(() => document.visibilityState === 'visible' && this.refresh(), 3000);
    } catch (err) {
      if (err instanceof APIError && err.status === 401) auth.clear();
      this.showLogin();
      alertMsg(explain(err));
    }
  }

  showLogin() {
    clearInterval(this.poll);
    $('login').hidden = false;
    $('app').hidden = true;
    $('logout').hidden = true;
    $('login-key').focus();
  }

  logout() {
    auth.clear();
    this.preview.stop();
    for (const c of this.cards.values()) c.remove();
    this.cards.clear();
    this.showLogin();
  }

  async refresh() {
    try {
      this.render(await listSessions());
      if (this.pollFailed) alertMsg('');
      this.pollFailed = false;
    } catch (err) {
      if (err instanceof APIError && err.status === 401) this.logout();
      alertMsg(explain(err));
      this.pollFailed = true;
    }
  }

  /** @param {boolean} focus */
  addPatientRow(focus) {
    const label = h('input', { type: 'text', maxlength: '64', 'data-testid': 'patient-label', 'aria-label': t('dash.patientName') });
    label.placeholder = t('dash.patientName');
    const sel = h('select', { 'aria-label': t('dash.language') }, [new Option('Français', 'fr'), new Option('English', 'en')]);
    sel.value = lang();
    const del = h('button', { type: 'button', class: 'btn-icon btn-small', 'aria-label': t('dash.removeRow'), title: t('dash.removeRow') }, [icon('close')]);
    const li = h('li', { 'data-uuid': newUUID() }, [label, sel, del]);
    del.addEventListener('click', () => li.remove());
    $('new-patients').append(li);
    if (focus) label.focus();
  }

  async start() {
    const rows = [...$('new-patients').children];
    const participants = rows.map((li) => li.dataset.uuid);
    for (const li of rows) labels.set(li.dataset.uuid, li.querySelector('input').value.trim(), li.querySelector('select').value);
    clinician.setName($('my-name').value.trim());
    $('start').disabled = true;
    try {
      const res = await manage('start', {
        users: [this.me], participants, creator: this.me, name: $('session-name').value.trim(),
      });
      $('new-patients').replaceChildren();
      this.addPatientRow(false);
      $('session-name').value = '';
      await this.refresh();
      const card = res.session && this.cards.get(res.session.id_session);
      if (card) {
        card.scrollIntoView({ block: 'nearest' });
        /** @type {HTMLElement|null} */ (card.querySelector('[data-testid="copy-link"]'))?.focus();
      }
    } catch (err) {
      alertMsg(explain(err));
    } finally {
      $('start').disabled = false;
    }
  }

  /** @param {Session[]} sessions */
  render(sessions) {
    const running = sessions.filter((s) => s.session_status === 1).sort((a, b) => b.id_session - a.id_session);
    const seen = new Set();
    const list = $('sessions');
    /** @type {ChildNode|null} */
    let at = list.firstChild;
    for (const s of running) {
      seen.add(s.id_session);
      const card = this.cards.get(s.id_session) ?? this.buildCard(s);
      this.cards.set(s.id_session, card);
      this.updateCard(card, s);
      // Move a card only when it is out of place: moving a node drops the
      // focus and the selection of whatever the clinician is typing in.
      if (card !== at) list.insertBefore(card, at);
      at = card.nextSibling;
    }
    for (const [id, card] of this.cards) {
      if (!seen.has(id)) {
        card.remove();
        this.cards.delete(id);
      }
    }
    $('no-sessions').hidden = running.length > 0;
  }

  /** @param {Session} s */
  buildCard(s) {
    const title = h('h3');
    const meta = h('p', { class: 'muted meta' });
    const join = h('a', { class: 'btn btn-primary', target: '_blank', rel: 'noopener noreferrer', 'data-testid': 'join-therapist' }, [icon('cam'), t('dash.join')]);
    const stop = h('button', { type: 'button', class: 'btn btn-danger', 'data-testid': 'stop-session' }, [t('dash.stop')]);
    stop.addEventListener('click', () => this.stop(s.id_session, stop));
    const rows = h('tbody');
    const table = h('table', { class: 'people' }, [
      h('thead', {}, [h('tr', {}, [t('dash.person'), t('dash.role'), t('dash.presence'), t('dash.link'), ''].map((x) => h('th', { scope: 'col', text: x })))]),
      rows,
    ]);
    const label = h('input', { type: 'text', maxlength: '64', 'aria-label': t('dash.patientName'), 'data-testid': 'invite-label' });
    label.placeholder = t('dash.patientName');
    const kind = h('select', { 'aria-label': t('dash.role') }, [
      new Option(t('role.participant'), 'participant'), new Option(t('role.user'), 'user'), new Option(t('role.device'), 'device'),
    ]);
    const lng = h('select', { 'aria-label': t('dash.language') }, [new Option('Français', 'fr'), new Option('English', 'en')]);
    lng.value = lang();
    const invite = h('form', { class: 'row invite' }, [label, kind, lng,
      h('button', { type: 'submit', class: 'btn', 'data-testid': 'invite' }, [icon('plus'), t('dash.invite')])]);
    invite.addEventListener('submit', (/** @type {Event} */ ev) => {
      ev.preventDefault();
      this.invite(s.id_session, kind.value, label.value.trim(), lng.value).then((ok) => { if (ok) label.value = ''; });
    });
    const card = h('article', { class: 'session-card', 'data-testid': 'session-card', 'data-id': String(s.id_session) }, [
      h('div', { class: 'row between' }, [h('div', {}, [title, meta]), h('div', { class: 'row' }, [join, stop])]),
      h('div', { class: 'table-wrap' }, [table]),
      invite,
    ]);
    Object.assign(card, { refs: { title, meta, join, rows } });
    return card;
  }

  /** @param {HTMLElement} card @param {Session} s */
  updateCard(card, s) {
    const { title, meta, join, rows } = /** @type {any} */ (card).refs;
    title.textContent = s.session_name || t('dash.sessionN', { id: s.id_session });
    meta.textContent = since(s.session_start_datetime || '', s.session_status);
    const invitations = s.session_invitations || [];
    const mine = invitations.find((i) => i.kind === 'user' && i.uuid === this.me);
    join.hidden = !mine;
    if (mine) join.href = personalLink(mine.session_url, clinician.name(), lang());
    /** @type {Map<string, {id: string, name: string}>} */
    const online = new Map((s.session_peers || []).map((p) => [p.uuid, p]));
    const keys = new Set();
    for (const inv of invitations) {
      const key = `${inv.kind}:${inv.uuid}`;
      keys.add(key);
      let row = rows.querySelector(`tr[data-key="${CSS.escape(key)}"]`);
      if (!row) {
        row = this.buildRow(s.id_session, inv, inv.uuid === this.me);
        rows.append(row);
      }
      const peer = online.get(inv.uuid);
      const presence = row.querySelector('.presence');
      presence.dataset.connected = String(!!peer);
      presence.textContent = peer ? t('dash.connected') : t('dash.notConnected');
      const lab = labels.get(inv.uuid);
      const name = inv.uuid === this.me ? clinician.name() : lab.label;
      row.querySelector('.who').textContent = inv.uuid === this.me ? t('dash.you') : name || peer?.name || `${inv.uuid.slice(0, 8)}…`;
      const link = personalLink(inv.session_url, name, inv.uuid === this.me ? lang() : lab.lang);
      const input = row.querySelector('input');
      if (input.value !== link) input.value = link;
    }
    for (const row of [...rows.children]) if (!keys.has(row.dataset.key)) row.remove();
  }

  /** @param {number} id @param {Invitation} inv @param {boolean} self */
  buildRow(id, inv, self) {
    const input = h('input', { type: 'text', readonly: '', class: 'link', 'aria-label': t('dash.link'), 'data-testid': 'link-input' });
    const copyBtn = h('button', { type: 'button', class: 'btn', 'data-testid': 'copy-link' }, [icon('copy'), h('span', { text: t('dash.copy') })]);
    copyBtn.addEventListener('click', async () => {
      const ok = await copy(input.value, input);
      const span = copyBtn.querySelector('span');
      span.textContent = ok ? t('dash.copied') : t('dash.copyHint');
      copyBtn.dataset.copied = String(ok);
      setTimeout(() => { span.textContent = t('dash.copy'); }, 2500);
    });
    const cells = [
      h('td', { class: 'who' }),
      h('td', { text: t(`role.${roleOf(inv.kind)}`) }),
      h('td', { class: 'presence', 'data-testid': 'presence' }),
      h('td', { class: 'link-cell' }, [input, copyBtn]),
      h('td'),
    ];
    if (!self) {
      const rm = h('button', { type: 'button', class: 'btn', 'data-testid': 'remove' }, [t('dash.remove')]);
      rm.addEventListener('click', () => this.remove(id, inv, rm));
      cells[4].append(rm);
    }
    return h('tr', { 'data-key': `${inv.kind}:${inv.uuid}`, 'data-uuid': inv.uuid, 'data-kind': inv.kind, 'data-testid': 'invitee' }, cells);
  }

  /** @param {number} id @param {string} kind @param {string} label @param {string} lng */
  async invite(id, kind, label, lng) {
    const uuid = newUUID();
    labels.set(uuid, label, lng);
    const lists = { participant: 'participants', user: 'users', device: 'devices' };
    try {
      await manage('invite', { id, [lists[/** @type {'participant'} */ (kind)] || 'participants']: [uuid] });
      await this.refresh();
      return true;
    } catch (err) {
      alertMsg(explain(err));
      return false;
    }
  }

  /** @param {number} id @param {Invitation} inv @param {HTMLButtonElement} btn */
  async remove(id, inv, btn) {
    if (!this.confirmTwice(btn, 'dash.removeConfirm')) return;
    const key = inv.kind === 'user' ? 'users' : inv.kind === 'device' ? 'devices' : 'participants';
    try {
      await manage('remove', { id, [key]: [inv.uuid] });
      await this.refresh();
    } catch (err) {
      alertMsg(explain(err));
    }
  }

  /** @param {number} id @param {HTMLButtonElement} btn */
  async stop(id, btn) {
    if (!this.confirmTwice(btn, 'dash.stopConfirm')) return;
    try {
      await manage('stop', { id });
      await this.refresh();
    } catch (err) {
      alertMsg(explain(err));
    }
  }

  /**
   * A destructive button asks "click again to confirm" for a few seconds instead of a modal dialog.
   * @param {HTMLButtonElement} btn @param {string} key @returns {boolean} true on the second click
   */
  confirmTwice(btn, key) {
    if (btn.dataset.armed === 'true') return true;
    const text = btn.textContent || '';
    btn.dataset.armed = 'true';
    btn.textContent = t(key);
    setTimeout(() => {
      btn.dataset.armed = 'false';
      btn.textContent = text;
    }, 4000);
    return false;
  }
}

async function main() {
  const params = new URLSearchParams(location.search);
  await loadLang(pickLang(params.get('lang'), navigator.languages || [navigator.language]));
  translate(document);
  fillIcons(document);
  document.title = t('dash.title');
  const dash = new Dashboard();
  await dash.enter();
}

main().catch((err) => {
  console.error(err);
  alertMsg(String(err));
});
