// dashboard.js: the clinician dashboard at /rehab/: sign in with the API key, check the camera,
// start a session, invite and remove patients, send their personal links (copy, QR code, e-mail), see
// who is connected and who is waiting, stop. A banner says when the service does not answer.
// Names and languages of the people come from the service (any clinician sees them on any device);
// changes arrive on the service's event stream, so the page does not poll.

import { APIError, auth, clinician, follow, forgetLocalNames, listSessions, manage, newUUID, personalLink } from './dashapi.js';
import { Preview } from './preview.js';
import { fillIcons, icon } from './icons.js';
import { lang, loadLang, pickLang, t, translate, translatorFor } from './i18n.js';
import { qrSVG } from './qr.js';
import { $, find, h } from './dom.js';

/** @typedef {import('./dashapi.js').Session} Session */
/** @typedef {import('./dashapi.js').Invitation} Invitation */


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

/** The service did not answer (network down, service stopped, or a proxy saying so). @param {unknown} err */
const unreachable = (err) => err instanceof APIError && (err.status === 0 || err.status === 502 || err.status === 503 || err.status === 504);

/** @param {string|undefined} iso @returns {string} the local time, "" if none */
function timeOf(iso) {
  const d = iso ? new Date(iso) : null;
  return d && !Number.isNaN(d.getTime()) ? d.toLocaleTimeString(lang(), { hour: '2-digit', minute: '2-digit' }) : '';
}

/**
 * Ask before something that cannot be undone, naming what it acts on. Cancel has the focus.
 * @param {string} title @param {string} text @param {string} ok label of the confirming button
 * @returns {Promise<boolean>}
 */
function confirmDialog(title, text, ok) {
  const d = $('confirm', HTMLDialogElement);
  $('confirm-title').textContent = title;
  $('confirm-text').textContent = text;
  $('confirm-ok').textContent = ok;
  d.returnValue = '';
  return new Promise((resolve) => {
    d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true });
    d.showModal();
    find(d, 'button[value="cancel"]').focus();
  });
}

/**
 * @typedef {object} CardRefs the parts of a session card that change
 * @property {HTMLHeadingElement} title @property {HTMLParagraphElement} meta @property {HTMLAnchorElement} join
 * @property {HTMLTableSectionElement} rows @property {HTMLParagraphElement} waiting
 * @property {Session} session the last state shown
 */
/** @typedef {(key: string, vars?: Record<string, string|number>) => string} Translator */

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
    /** @type {WeakMap<HTMLElement, CardRefs>} */
    this.refs = new WeakMap();
    /** Ends the event stream of this sign-in. @type {AbortController|undefined} */
    this.liveCtl = undefined;
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.soonTimer = undefined;
    this.pollFailed = false;
    /** When the service stopped answering (0: it answers). */
    this.downSince = 0;
    this.starting = false;
    /** Texts in each patient language, for the e-mails. @type {Record<string, Translator>} */
    this.mailTexts = { en: t, fr: t };
    this.me = clinician.uuid();
    forgetLocalNames();
    $('my-name', HTMLInputElement).value = clinician.name();
    $('my-name').addEventListener('change', () => {
      clinician.setName($('my-name', HTMLInputElement).value.trim());
      if (!$('app').hidden) this.refresh(); // the links carry this name
    });
    $('login-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      auth.set($('login-key', HTMLInputElement).value.trim());
      this.enter();
    });
    $('logout').addEventListener('click', () => this.logout());
    $('add-patient').addEventListener('click', () => this.addPatientRow(true));
    $('new-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.start();
    });
    $('new-patients').addEventListener('input', (ev) => {
      if (ev.target instanceof HTMLInputElement && ev.target.value.trim()) ev.target.removeAttribute('aria-invalid');
    });
    $('refresh').addEventListener('click', () => this.refresh());
    this.addPatientRow(false);
    this.preview = new Preview({
      video: $('preview-video', HTMLVideoElement), camera: $('preview-camera', HTMLSelectElement), mic: $('preview-mic', HTMLSelectElement),
      meter: $('meter'), toggle: $('preview-toggle', HTMLButtonElement), message: $('preview-msg'),
    });
  }

  async enter() {
    if (!auth.get()) return this.showLogin();
    Promise.all([translatorFor('en'), translatorFor('fr')]).then(([en, fr]) => { this.mailTexts = { en, fr }; });
    try {
      const sessions = await listSessions();
      this.reachable();
      $('login').hidden = true;
      $('app').hidden = false;
      $('logout').hidden = false;
      alertMsg('');
      this.render(sessions);
      this.live();
    } catch (err) {
      if (unreachable(err)) {
        // Keep the key: the service is down, not the key wrong. Try again until it answers.
        this.unreachable();
        setTimeout(() => this.enter(), 3000);
        return;
      }
      if (err instanceof APIError && err.status === 401) auth.clear();
      this.showLogin();
      alertMsg(explain(err));
    }
  }

  showLogin() {
    this.stopLive();
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
      this.reachable();
      if (this.pollFailed) alertMsg('');
      this.pollFailed = false;
    } catch (err) {
      if (unreachable(err)) {
        this.unreachable();
        return;
      }
      if (err instanceof APIError && err.status === 401) this.logout();
      alertMsg(explain(err));
      this.pollFailed = true;
    }
  }

  /**
   * Follow the service's changes for as long as signed in. When the stream ends or cannot start, read
   * the sessions once (which shows the banner if the service does not answer) and try again, after a
   * pause that starts small and grows to 5 s, with jitter so that many dashboards do not come back at
   * the same instant. That is the only polling, and only while the stream is down.
   */
  async live() {
    this.stopLive();
    const ctl = new AbortController();
    this.liveCtl = ctl;
    let pause = 250;
    while (!ctl.signal.aborted) {
      try {
        await follow(ctl.signal, () => {
          pause = 250;
          this.refresh();
        }, () => this.soon());
      } catch (err) {
        if (err instanceof APIError && err.status === 401) {
          this.logout();
          return;
        }
      }
      if (ctl.signal.aborted) return;
      await this.refresh();
      await new Promise((resolve) => setTimeout(resolve, pause * (0.5 + Math.random())));
      pause = Math.min(pause * 2, 5000);
    }
  }

  stopLive() {
    this.liveCtl?.abort();
    this.liveCtl = undefined;
    clearTimeout(this.soonTimer);
  }

  /** Read the sessions again soon: a burst of changes (a start invites everyone) costs one request. */
  soon() {
    clearTimeout(this.soonTimer);
    this.soonTimer = setTimeout(() => this.refresh(), 50);
  }

  /** Show, and keep showing, that the service does not answer: what is on screen may be stale. */
  unreachable() {
    if (!this.downSince) this.downSince = Date.now();
    const b = $('unreachable');
    b.textContent = t('dash.down', { time: timeOf(new Date(this.downSince).toISOString()) });
    b.hidden = false;
    document.body.dataset.reachable = 'false';
  }

  reachable() {
    this.downSince = 0;
    $('unreachable').hidden = true;
    document.body.dataset.reachable = 'true';
  }

  /** @param {boolean} focus */
  addPatientRow(focus) {
    const label = h('input', { type: 'text', maxlength: '64', 'data-testid': 'patient-label', 'aria-label': t('dash.patientName') });
    label.placeholder = t('dash.patientName');
    const sel = h('select', { 'aria-label': t('dash.language') }, [new Option('Français', 'fr'), new Option('English', 'en')]);
    sel.value = lang();
    const del = h('button', { type: 'button', class: 'btn-icon', 'aria-label': t('dash.removeRow'), title: t('dash.removeRow') }, [icon('close')]);
    const li = h('li', { 'data-uuid': newUUID() }, [label, sel, del]);
    del.addEventListener('click', () => li.remove());
    $('new-patients').append(li);
    if (focus) label.focus();
  }

  /**
   * The patients of the form, or null after showing why the form cannot be sent: no patient, or a
   * line without a name (an unnamed patient cannot be told apart, and a second press of Start on a
   * just-emptied form must not start a second session).
   * @returns {{uuid: string, name: string, lang: string}[]|null}
   */
  checkForm() {
    const rows = [...$('new-patients').querySelectorAll('li')].map((li) => ({
      li, input: find(li, 'input', HTMLInputElement), lang: find(li, 'select', HTMLSelectElement).value,
    }));
    const empty = rows.filter((r) => !r.input.value.trim());
    for (const r of rows) {
      const bad = empty.includes(r);
      if (bad) r.input.setAttribute('aria-invalid', 'true');
      else r.input.removeAttribute('aria-invalid');
      r.input.setAttribute('aria-describedby', bad ? 'new-error' : '');
    }
    const err = rows.length === 0 ? t('dash.needPatient') : empty.length > 0 ? t('dash.emptyRow') : '';
    $('new-error').textContent = err;
    $('new-error').hidden = !err;
    if (err) {
      (empty[0]?.input || $('add-patient')).focus();
      return null;
    }
    return rows.map((r) => ({ uuid: r.li.dataset.uuid || newUUID(), name: r.input.value.trim(), lang: r.lang }));
  }

  async start() {
    if (this.starting) return; // a double press sends one request
    const patients = this.checkForm();
    if (!patients) return;
    this.starting = true;
    $('start', HTMLButtonElement).disabled = true;
    clinician.setName($('my-name', HTMLInputElement).value.trim());
    const name = $('session-name', HTMLInputElement).value.trim() || defaultTitle(patients.map((p) => p.name), new Date());
    try {
      const res = await manage('start', {
        users: [this.me], participants: patients.map((p) => p.uuid), creator: this.me, creatorName: clinician.name(), name,
        people: [{ uuid: this.me, name: clinician.name(), lang: lang() }, ...patients],
      });
      $('new-patients').replaceChildren();
      this.addPatientRow(false);
      $('session-name', HTMLInputElement).value = '';
      await this.refresh();
      const card = res.session && this.cards.get(res.session.id_session);
      if (card) {
        card.scrollIntoView({ block: 'nearest' });
        card.querySelector('button')?.focus();
      }
    } catch (err) {
      alertMsg(explain(err));
    } finally {
      this.starting = false;
      $('start', HTMLButtonElement).disabled = false;
    }
  }

  /** @param {Session[]} sessions */
  render(sessions) {
    const running = sessions.filter((s) => s.session_status === 1).sort((a, b) => b.id_session - a.id_session);
    const seen = new Set();
    const list = $('sessions');
    /** @type {ChildNode|null} */
    let at = list.firstChild;
    let waiting = 0;
    for (const s of running) {
      seen.add(s.id_session);
      const card = this.cards.get(s.id_session) ?? this.buildCard(s);
      this.cards.set(s.id_session, card);
      waiting += this.updateCard(card, s);
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
    // Seen from another tab too: the tab's title counts the people waiting.
    document.title = waiting ? `(${waiting}) ${t('dash.title')}` : t('dash.title');
  }

  /** @param {Session} s */
  buildCard(s) {
    const title = h('h3');
    const meta = h('p', { class: 'muted meta' });
    const waiting = h('p', { class: 'waiting', role: 'status', 'data-testid': 'waiting' });
    const join = h('a', { class: 'btn btn-primary', target: '_blank', rel: 'noopener noreferrer', 'data-testid': 'join-therapist' }, [icon('cam'), t('dash.join')]);
    join.addEventListener('click', (ev) => {
      if (join.dataset.member === 'true') return; // the link opens the page
      ev.preventDefault();
      this.joinAsTherapist(s.id_session);
    });
    const stop = h('button', { type: 'button', class: 'btn btn-danger', 'data-testid': 'stop-session' }, [t('dash.stop')]);
    stop.addEventListener('click', () => this.stop(s.id_session));
    const rows = h('tbody');
    const table = h('table', { class: 'people' }, [
      h('thead', {}, [h('tr', {}, [t('dash.person'), t('dash.role'), t('dash.presence'), t('dash.link'), t('dash.actions')].map((x) => h('th', { scope: 'col', text: x })))]),
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
    invite.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.invite(s.id_session, kind.value, label.value.trim(), lng.value).then((ok) => { if (ok) label.value = ''; });
    });
    const card = h('article', { class: 'session-card', 'data-testid': 'session-card', 'data-id': String(s.id_session) }, [
      h('div', { class: 'row between' }, [h('div', {}, [title, meta]), h('div', { class: 'row' }, [join, stop])]),
      waiting,
      h('div', { class: 'table-wrap' }, [table]),
      invite,
    ]);
    this.refs.set(card, { title, meta, join, rows, waiting, session: s });
    return card;
  }

  /**
   * The session's title: its name, else its patients' names and start time.
   * @param {Session} s
   */
  titleOf(s) {
    if (s.session_name) return s.session_name;
    const names = (s.session_participants || []).map((u) => personOf(s, u).name).filter(Boolean);
    const at = timeOf(s.session_start_datetime);
    return names.length ? defaultTitle(names, s.session_start_datetime ? new Date(s.session_start_datetime) : null)
      : [t('dash.sessionN', { id: s.id_session }), at].filter(Boolean).join(' · ');
  }

  /**
   * Who an invitee is, as a clinician named them (the service keeps the names).
   * @param {Session|undefined} s @param {Invitation} inv @param {{name: string}|undefined} [peer]
   */
  nameOf(s, inv, peer) {
    if (inv.uuid === this.me) return clinician.name() || personOf(s, inv.uuid).name || t('dash.you');
    return personOf(s, inv.uuid).name || peer?.name || `${t(`role.${roleOf(inv.kind)}`)} ${inv.uuid.slice(0, 4)}`;
  }

  /** The session's therapist, as patients should see them: this clinician, else its creator. @param {Session} s */
  therapistOf(s) {
    return clinician.name() || s.session_creator_name || '';
  }

  /**
   * Join a session this clinician is not a member of (started elsewhere, by a colleague or on another
   * device): invite themselves as a therapist, then open their page.
   * @param {number} id
   */
  async joinAsTherapist(id) {
    try {
      const res = await manage('invite', { id, users: [this.me], people: [{ uuid: this.me, name: clinician.name(), lang: lang() }] });
      const mine = (res.session?.session_invitations || []).find((i) => i.kind === 'user' && i.uuid === this.me);
      if (mine) window.open(personalLink(mine.session_url, { name: clinician.name(), lang: lang() }), '_blank', 'noopener');
      await this.refresh();
    } catch (err) {
      alertMsg(explain(err));
    }
  }

  /**
   * @param {HTMLElement} card @param {Session} s
   * @returns {number} how many people are waiting for a therapist in this session
   */
  updateCard(card, s) {
    const refs = this.refs.get(card);
    if (!refs) return 0;
    refs.session = s;
    const { title, meta, join, rows, waiting } = refs;
    title.textContent = this.titleOf(s);
    meta.textContent = since(s.session_start_datetime || '', s.session_status);
    const invitations = s.session_invitations || [];
    const mine = invitations.find((i) => i.kind === 'user' && i.uuid === this.me);
    join.dataset.member = String(!!mine);
    if (mine) join.href = personalLink(mine.session_url, { name: clinician.name(), lang: lang() });
    else join.href = '#'; // not a member yet: the click invites this clinician first
    if (mine) join.removeAttribute('role');
    else join.setAttribute('role', 'button');
    const peers = s.session_peers || [];
    /** @type {Map<string, {id: string, name: string, role: string}>} */
    const online = new Map(peers.map((p) => [p.uuid, p]));
    // Patients and devices that are in while no therapist is: they are in the waiting room.
    const therapistIn = peers.some((p) => p.role === 'user');
    const waitingFor = therapistIn ? [] : invitations.filter((i) => i.kind !== 'user' && online.has(i.uuid));
    const keys = new Set();
    for (const inv of invitations) {
      const key = `${inv.kind}:${inv.uuid}`;
      keys.add(key);
      let row = /** @type {HTMLTableRowElement|null} */ (rows.querySelector(`tr[data-key="${CSS.escape(key)}"]`));
      if (!row) {
        row = this.buildRow(s.id_session, inv, inv.uuid === this.me);
        rows.append(row);
      }
      const peer = online.get(inv.uuid);
      const presence = find(row, '.presence');
      const state = !peer ? 'out' : waitingFor.includes(inv) ? 'waiting' : 'in';
      presence.dataset.connected = String(!!peer);
      presence.dataset.state = state;
      presence.textContent = t({ out: 'dash.notConnected', waiting: 'dash.waitingState', in: 'dash.connected' }[state]);
      this.updateRow(row, s, inv, peer);
    }
    for (const row of [...rows.querySelectorAll('tr')]) if (!keys.has(row.dataset.key || '')) row.remove();
    waiting.hidden = waitingFor.length === 0;
    waiting.textContent = waitingFor.length ? t('dash.waiting', { names: waitingFor.map((i) => this.nameOf(s, i, online.get(i.uuid))).join(', ') }) : '';
    card.dataset.waiting = String(waitingFor.length > 0);
    return waitingFor.length;
  }

  /**
   * The name, link, QR code and e-mail of one invitee.
   * @param {HTMLTableRowElement} row @param {Session} s @param {Invitation} inv @param {{name: string}|undefined} peer
   */
  updateRow(row, s, inv, peer) {
    const self = inv.uuid === this.me;
    const person = personOf(s, inv.uuid);
    const lab = { label: person.name, lang: person.lang || '' };
    const name = this.nameOf(s, inv, peer);
    find(row, '.who').textContent = self ? t('dash.you') : name;
    const lng = self ? lang() : lab.lang || lang();
    const therapist = this.therapistOf(s);
    const link = personalLink(inv.session_url, {
      name: self ? clinician.name() : lab.label, lang: lng, therapist: inv.kind === 'user' ? '' : therapist,
    });
    const input = find(row, 'input', HTMLInputElement);
    if (input.value !== link) input.value = link;
    row.dataset.name = name;
    const mail = /** @type {HTMLAnchorElement|null} */ (row.querySelector('[data-testid="mail-link"]'));
    if (mail) {
      const tr = this.mailTexts[lng] || t;
      const vars = { name: lab.label || '', therapist: therapist || tr('mail.yourTherapist'), link };
      const body = tr(lab.label ? 'mail.body' : 'mail.bodyNoName', vars);
      mail.href = `mailto:?subject=${encodeURIComponent(tr('mail.subject', vars))}&body=${encodeURIComponent(body)}`;
    }
  }

  /** @param {number} id @param {Invitation} inv @param {boolean} self */
  buildRow(id, inv, self) {
    const input = h('input', { type: 'text', readonly: '', class: 'link', 'aria-label': t('dash.link'), 'data-testid': 'link-input' });
    const copyBtn = h('button', { type: 'button', class: 'btn', 'data-testid': 'copy-link' }, [icon('copy'), h('span', { text: t('dash.copy') })]);
    copyBtn.addEventListener('click', async () => {
      const ok = await copy(input.value, input);
      const span = find(copyBtn, 'span');
      span.textContent = ok ? t('dash.copied') : t('dash.copyHint');
      copyBtn.dataset.copied = String(ok);
      setTimeout(() => { span.textContent = t('dash.copy'); }, 2500);
    });
    const row = h('tr', { 'data-key': `${inv.kind}:${inv.uuid}`, 'data-uuid': inv.uuid, 'data-kind': inv.kind, 'data-testid': 'invitee' });
    const actions = h('td', { class: 'actions' });
    if (!self) {
      const qr = h('button', { type: 'button', class: 'btn', 'data-testid': 'qr-link' }, [icon('qr'), h('span', { text: t('dash.qr') })]);
      qr.addEventListener('click', () => this.showQR(row.dataset.name || '', input.value));
      const mail = h('a', { class: 'btn', 'data-testid': 'mail-link' }, [icon('mail'), h('span', { text: t('dash.mail') })]);
      const rm = h('button', { type: 'button', class: 'btn', 'data-testid': 'remove' }, [t('dash.remove')]);
      rm.addEventListener('click', () => this.remove(id, inv));
      actions.append(h('div', { class: 'row' }, [qr, mail, rm]));
    }
    row.append(
      h('td', { class: 'who' }),
      h('td', { text: t(`role.${roleOf(inv.kind)}`) }),
      h('td', { class: 'presence', 'data-testid': 'presence' }),
      h('td', { class: 'link-cell' }, [input, copyBtn]),
      actions,
    );
    return row;
  }

  /** The link as a QR code, for a patient to scan with their phone. @param {string} name @param {string} link */
  showQR(name, link) {
    $('qr-title').textContent = t('dash.qrTitle', { name });
    try {
      $('qr-code').replaceChildren(qrSVG(link, t('dash.qrLabel', { name })));
    } catch {
      $('qr-code').replaceChildren(h('p', { text: t('dash.qrTooLong') }));
    }
    $('qr', HTMLDialogElement).showModal();
  }

  /** @param {number} id @param {string} kind @param {string} label @param {string} lng */
  async invite(id, kind, label, lng) {
    const uuid = newUUID();
    const lists = { participant: 'participants', user: 'users', device: 'devices' };
    try {
      await manage('invite', { id, [lists[/** @type {'participant'} */ (kind)] || 'participants']: [uuid], people: [{ uuid, name: label, lang: lng }] });
      await this.refresh();
      return true;
    } catch (err) {
      alertMsg(explain(err));
      return false;
    }
  }

  /** @param {number} id */
  sessionTitle(id) {
    const card = this.cards.get(id);
    const s = card && this.refs.get(card)?.session;
    return s ? this.titleOf(s) : t('dash.sessionN', { id });
  }

  /** @param {number} id @param {Invitation} inv */
  async remove(id, inv) {
    const card = this.cards.get(id);
    const name = this.nameOf(card && this.refs.get(card)?.session, inv);
    const ok = await confirmDialog(t('dash.removeTitle', { name, session: this.sessionTitle(id) }), t('dash.removeText', { name }), t('dash.removeOk'));
    if (!ok) return;
    const key = inv.kind === 'user' ? 'users' : inv.kind === 'device' ? 'devices' : 'participants';
    try {
      await manage('remove', { id, [key]: [inv.uuid] });
      await this.refresh();
    } catch (err) {
      alertMsg(explain(err));
    }
  }

  /** @param {number} id */
  async stop(id) {
    const card = this.cards.get(id);
    const s = card && this.refs.get(card)?.session;
    const others = (s?.session_invitations || []).filter((i) => i.uuid !== this.me).map((i) => this.nameOf(s, i));
    const ok = await confirmDialog(t('dash.stopTitle', { session: this.sessionTitle(id) }),
      others.length ? t('dash.stopText', { names: others.join(', ') }) : t('dash.stopTextAlone'), t('dash.stopOk'));
    if (!ok) return;
    try {
      await manage('stop', { id });
      await this.refresh();
    } catch (err) {
      alertMsg(explain(err));
    }
  }
}

/**
 * What the service knows of one person of a session: name and language, empty if none.
 * @param {Session|undefined} s @param {string} uuid @returns {{name: string, lang?: string}}
 */
function personOf(s, uuid) {
  return s?.session_invitees?.[uuid] || { name: '' };
}

/**
 * A readable default session name: the patients' names and the start time ("A. Roy, B. Côté · 14:05").
 * @param {string[]} names @param {Date|null} at
 */
function defaultTitle(names, at) {
  let who = names.join(', ');
  if (who.length > 160) who = `${who.slice(0, 159)}…`;
  const time = at && !Number.isNaN(at.getTime()) ? at.toLocaleTimeString(lang(), { hour: '2-digit', minute: '2-digit' }) : '';
  return [who, time].filter(Boolean).join(' · ');
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
