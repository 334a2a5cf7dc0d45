// preview.js: the dashboard's camera and microphone check before joining a session.

import { t } from './i18n.js';

export class Preview {
  /**
   * @param {{video: HTMLVideoElement, camera: HTMLSelectElement, mic: HTMLSelectElement,
   *          meter: HTMLElement, toggle: HTMLButtonElement, message: HTMLElement}} els
   */
  constructor(els) {
    this.els = els;
    /** @type {MediaStream|null} */
    this.stream = null;
    /** @type {AudioContext|null} */
    this.audio = null;
    this.raf = 0;
    els.toggle.addEventListener('click', () => (this.stream ? this.stop() : this.start()));
    els.camera.addEventListener('change', () => this.stream && this.start());
    els.mic.addEventListener('change', () => this.stream && this.start());
    this.paint();
  }

  async start() {
    this.stop();
    const md = navigator.mediaDevices;
    if (!md?.getUserMedia) {
      this.els.message.textContent = t('media.unsupported');
      return;
    }
    const cam = this.els.camera.value;
    const mic = this.els.mic.value;
    try {
      this.stream = await md.getUserMedia({
        video: cam ? { deviceId: { exact: cam } } : { width: { ideal: 960 } },
        audio: mic ? { deviceId: { exact: mic } } : true,
      });
      this.els.message.textContent = '';
    } catch (err) {
      const name = err && typeof err === 'object' && 'name' in err ? err.name : '';
      this.els.message.textContent = t(name === 'NotAllowedError' ? 'screen.media-denied.title' : 'media.no-device');
      this.paint();
      return;
    }
    this.els.video.srcObject = this.stream;
    this.meter();
    await this.fillDevices();
    this.paint();
  }

  stop() {
    cancelAnimationFrame(this.raf);
    if (this.audio) this.audio.close().catch(() => {});
    this.audio = null;
    if (this.stream) for (const tr of this.stream.getTracks()) tr.stop();
    this.stream = null;
    this.els.video.srcObject = null;
    this.els.meter.style.setProperty('--level', '0');
    this.paint();
  }

  async fillDevices() {
    const devices = await navigator.mediaDevices.enumerateDevices();
    const fill = (/** @type {HTMLSelectElement} */ sel, /** @type {string} */ kind, /** @type {string} */ current) => {
      const list = devices.filter((d) => d.kind === kind && d.deviceId);
      sel.replaceChildren(...list.map((d, i) => new Option(d.label || `${kind} ${i + 1}`, d.deviceId)));
      if (current) sel.value = current;
    };
    const v = this.stream?.getVideoTracks()[0]?.getSettings().deviceId || '';
    const a = this.stream?.getAudioTracks()[0]?.getSettings().deviceId || '';
    fill(this.els.camera, 'videoinput', v);
    fill(this.els.mic, 'audioinput', a);
  }

  /** A live microphone level, so the clinician sees the microphone works. */
  meter() {
    if (!this.stream || this.stream.getAudioTracks().length === 0) return;
    try {
      this.audio = new AudioContext();
      const src = this.audio.createMediaStreamSource(this.stream);
      const an = this.audio.createAnalyser();
      an.fftSize = 512;
      src.connect(an);
      const buf = new Uint8Array(an.fftSize);
      const loop = () => {
        an.getByteTimeDomainData(buf);
        let peak = 0;
        for (const x of buf) peak = Math.max(peak, Math.abs(x - 128));
        this.els.meter.style.setProperty('--level', String(Math.min(1, peak / 64)));
        this.raf = requestAnimationFrame(loop);
      };
      loop();
    } catch { /* no meter: the preview still works */ }
  }

  paint() {
    const on = !!this.stream;
    this.els.toggle.textContent = t(on ? 'dash.previewStop' : 'dash.previewStart');
    this.els.toggle.setAttribute('aria-pressed', String(on));
    this.els.video.parentElement?.classList.toggle('off', !on);
  }
}
