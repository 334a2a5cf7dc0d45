// tools.js: the therapist's tools panel: countdown/stopwatch, repetition counter, mute all.
// Only the page of a "user" (therapist) builds it; the server refuses control.* from anyone else.

import { t } from './i18n.js';
import { $ } from './dom.js';

/** @typedef {import('./protocol.js').Peer} Peer */
/** @typedef {import('./overlays.js').TimerState} TimerState */
/** @typedef {import('./overlays.js').CounterState} CounterState */


export class TherapistTools {
  /**
   * @param {(topic: string, data: any, to?: string) => boolean} send
   * @param {() => Peer[]} peers the other peers, now
   * @param {(topic: string, data: any) => void} showLocal mirror what the patients see
   */
  constructor(send, peers, showLocal) {
    this.send = send;
    this.peers = peers;
    this.showLocal = showLocal;
    this.target = $('tool-target', HTMLSelectElement);
    this.timer = { mode: /** @type {'countdown'|'stopwatch'} */ ('countdown'), state: 'stopped', duration: 60, startedAt: 0, before: 0, label: '' };
    this.counter = { state: /** @type {'show'|'hide'} */ ('hide'), value: 0, label: '' };
    $('timer-start').addEventListener('click', () => this.timerStart());
    $('timer-pause').addEventListener('click', () => this.timerPause());
    $('timer-stop').addEventListener('click', () => this.timerStop());
    for (const r of document.querySelectorAll('input[name="timer-mode"]')) {
      r.addEventListener('change', () => this.paintMode());
    }
    $('counter-plus').addEventListener('click', () => this.count(1));
    $('counter-minus').addEventListener('click', () => this.count(-1));
    $('counter-reset').addEventListener('click', () => this.count(-this.counter.value));
    $('counter-show').addEventListener('click', () => this.counterShow(true));
    $('counter-hide').addEventListener('click', () => this.counterShow(false));
    $('counter-label').addEventListener('change', () => this.counterSend());
    $('mute-all').addEventListener('click', () => this.muteAll());
    this.target.addEventListener('change', () => {
      this.timerSend();
      this.counterSend();
    });
    this.paintMode();
    this.refreshTargets();
  }

  /** Keep the "show to" list in step with who is here. */
  refreshTargets() {
    const keep = this.target.value;
    const opts = [new Option(t('tools.allPatients'), '')];
    for (const p of this.peers()) {
      if (p.role === 'user') continue;
      opts.push(new Option(`${p.name || t(`role.${p.role}`)} (${t(`role.${p.role}`)})`, p.id));
    }
    this.target.replaceChildren(...opts);
    this.target.value = opts.some((o) => o.value === keep) ? keep : '';
  }

  /** Everyone who should see the tools now. @returns {string[]} peer ids */
  recipients() {
    if (this.target.value) return [this.target.value];
    return this.peers().filter((p) => p.role !== 'user').map((p) => p.id);
  }

  /** @param {string} topic @param {any} data @param {string} [only] one new peer */
  push(topic, data, only) {
    const to = only ? [only] : this.recipients();
    for (const id of to) this.send(topic, data, id);
    if (!only) this.showLocal(topic, data);
  }

  paintMode() {
    const mode = /** @type {HTMLInputElement|null} */ (document.querySelector('input[name="timer-mode"]:checked'));
    $('timer-duration').hidden = mode?.value === 'stopwatch';
  }

  /** @returns {TimerState} */
  timerPayload() {
    const tm = this.timer;
    const elapsed = tm.before + (tm.state === 'running' ? (Date.now() - tm.startedAt) / 1000 : 0);
    return {
      mode: tm.mode, state: /** @type {TimerState['state']} */ (tm.state), duration: tm.duration,
      elapsed: Math.round(elapsed * 10) / 10, label: tm.label,
    };
  }

  timerStart() {
    const tm = this.timer;
    if (tm.state !== 'paused') {
      const mode = /** @type {HTMLInputElement|null} */ (document.querySelector('input[name="timer-mode"]:checked'));
      tm.mode = mode?.value === 'stopwatch' ? 'stopwatch' : 'countdown';
      const min = Math.max(0, Math.min(180, Number($('timer-min', HTMLInputElement).value) || 0));
      const sec = Math.max(0, Math.min(59, Number($('timer-sec', HTMLInputElement).value) || 0));
      tm.duration = min * 60 + sec || 60;
      tm.before = 0;
      tm.label = String($('timer-label', HTMLInputElement).value || '').trim().slice(0, 40);
    }
    tm.state = 'running';
    tm.startedAt = Date.now();
    this.timerSend();
  }

  timerPause() {
    const tm = this.timer;
    if (tm.state !== 'running') return;
    tm.before += (Date.now() - tm.startedAt) / 1000;
    tm.state = 'paused';
    this.timerSend();
  }

  timerStop() {
    this.timer.state = 'stopped';
    this.timer.before = 0;
    this.timerSend();
  }

  /** @param {string} [only] */
  timerSend(only) {
    if (only && this.timer.state === 'stopped') return;
    this.push('control.timer', this.timerPayload(), only);
  }

  /** @param {number} delta */
  count(delta) {
    this.counter.value = Math.max(0, this.counter.value + delta);
    $('counter-own').textContent = String(this.counter.value);
    if (this.counter.state === 'show') this.counterSend();
  }

  /** @param {boolean} show */
  counterShow(show) {
    this.counter.state = show ? 'show' : 'hide';
    this.counterSend();
  }

  /** @param {string} [only] */
  counterSend(only) {
    if (only && this.counter.state === 'hide') return;
    this.counter.label = String($('counter-label', HTMLInputElement).value || '').trim().slice(0, 40);
    /** @type {CounterState} */
    const data = { state: this.counter.state, value: this.counter.value, label: this.counter.label };
    this.push('control.counter', data, only);
  }

  muteAll() {
    for (const p of this.peers()) if (p.role !== 'user') this.send('control.mute', { kind: 'mic', on: false }, p.id);
  }

  /** A peer joined: show it what the others see, if it is one of the targets. @param {Peer} peer */
  peerJoined(peer) {
    this.refreshTargets();
    if (peer.role === 'user' || this.target.value) return;
    this.timerSend(peer.id);
    this.counterSend(peer.id);
  }
}
