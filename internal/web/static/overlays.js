// overlays.js: the countdown/stopwatch and the repetition counter a therapist shows on a patient's
// screen (topics control.timer and control.counter; payloads in docs/frontend.md).

/**
 * @typedef {object} TimerState payload of control.timer
 * @property {'countdown'|'stopwatch'} mode
 * @property {'running'|'paused'|'stopped'} state
 * @property {number} duration countdown length in seconds
 * @property {number} elapsed seconds elapsed when the message was sent
 * @property {string} [label]
 */
/**
 * @typedef {object} CounterState payload of control.counter
 * @property {'show'|'hide'} state
 * @property {number} value
 * @property {string} [label]
 */

/** @param {number} s seconds */
export function clock(s) {
  const v = Math.max(0, Math.floor(s));
  const h = Math.floor(v / 3600);
  const m = Math.floor((v % 3600) / 60);
  const sec = v % 60;
  const mm = String(m).padStart(2, '0');
  const ss = String(sec).padStart(2, '0');
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** A short beep through WebAudio (no sound file to load). */
function beep() {
  try {
    const ctx = new AudioContext();
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.2, ctx.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.001, ctx.currentTime + 0.6);
    osc.connect(gain).connect(ctx.destination);
    osc.start();
    osc.stop(ctx.currentTime + 0.6);
    osc.onended = () => ctx.close();
  } catch { /* no sound: the display still shows 00:00 */ }
}

export class Overlays {
  /**
   * @param {{timer: HTMLElement, timerTitle: HTMLElement, timerValue: HTMLElement,
   *          counter: HTMLElement, counterTitle: HTMLElement, counterValue: HTMLElement}} els
   */
  constructor(els) {
    this.els = els;
    /** @type {TimerState|null} */
    this.timer = null;
    this.startedAt = 0;
    /** @type {ReturnType<typeof setInterval>|undefined} */
    this.tick = undefined;
    this.rang = false;
  }

  /** @param {unknown} data */
  showTimer(data) {
    const d = /** @type {TimerState} */ (data);
    if (!d || typeof d !== 'object' || d.state === 'stopped') {
      this.timer = null;
      clearInterval(this.tick);
      this.els.timer.hidden = true;
      return;
    }
    this.timer = {
      mode: d.mode === 'stopwatch' ? 'stopwatch' : 'countdown',
      state: d.state === 'paused' ? 'paused' : 'running',
      duration: Math.max(0, Number(d.duration) || 0),
      elapsed: Math.max(0, Number(d.elapsed) || 0),
      label: typeof d.label === 'string' ? d.label.slice(0, 40) : '',
    };
    this.startedAt = Date.now() - this.timer.elapsed * 1000;
    this.rang = this.timer.mode === 'countdown' && this.timer.elapsed >= this.timer.duration;
    this.els.timerTitle.textContent = this.timer.label || '';
    this.els.timer.hidden = false;
    clearInterval(this.tick);
    this.paint();
    if (this.timer.state === 'running') this.tick = setInterval(() => this.paint(), 250);
  }

  paint() {
    const tm = this.timer;
    if (!tm) return;
    const elapsed = tm.state === 'running' ? (Date.now() - this.startedAt) / 1000 : tm.elapsed;
    if (tm.mode === 'stopwatch') {
      this.els.timerValue.textContent = clock(elapsed);
      return;
    }
    const left = tm.duration - elapsed;
    this.els.timerValue.textContent = clock(Math.ceil(Math.max(0, left)));
    const done = left <= 0;
    this.els.timer.classList.toggle('done', done);
    if (done && !this.rang) {
      this.rang = true;
      clearInterval(this.tick);
      beep();
    }
  }

  /** @param {unknown} data */
  showCounter(data) {
    const d = /** @type {CounterState} */ (data);
    if (!d || typeof d !== 'object' || d.state !== 'show') {
      this.els.counter.hidden = true;
      return;
    }
    this.els.counterTitle.textContent = typeof d.label === 'string' ? d.label.slice(0, 40) : '';
    const v = Math.trunc(Number(d.value) || 0);
    if (this.els.counterValue.textContent !== String(v)) {
      this.els.counterValue.textContent = String(v);
      this.els.counter.classList.remove('bump');
      void this.els.counter.offsetWidth; // restart the animation
      this.els.counter.classList.add('bump');
    }
    this.els.counter.hidden = false;
  }

  clear() {
    this.showTimer(null);
    this.showCounter(null);
  }
}
