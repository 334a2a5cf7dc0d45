// preview.js: the dashboard's camera and microphone check before joining a session.

import { t } from './i18n.js';
import { LevelMeter } from './levelmeter.js';

export class Preview {
  /**
   * @param {{video: HTMLVideoElement, camera: HTMLSelectElement, mic: HTMLSelectElement,
   *          meter: HTMLElement, toggle: HTMLButtonElement, message: HTMLElement}} els
   */
  constructor(els) {
    this.els = els;
    /** @type {MediaStream|null} */
    this.stream = null;
    this.meter = new LevelMeter(els.meter);
    els.toggle.addEventListener('click', () => (this.stream ? this.stop() : this.start()));
    els.camera.addEventListener('change', () => this.stream && this.start());
    els.mic.addEventListener('change', () => this.stream && this.start());
    this.paint();
    this.fillIfAllowed();
  }

  /**
   * Fill the device lists at once when the browser already lets this page use the camera and the
   * microphone (the devices then have labels): no need to press "Test" to choose them.
   */
  async fillIfAllowed() {
    try {
      const devices = await navigator.mediaDevices.enumerateDevices();
      if (devices.some((d) => d.label)) await this.fillDevices(devices);
    } catch { /* no mediaDevices (plain http): the lists stay empty until a test */ }
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
    this.meter.start(this.stream);
    await this.fillDevices();
    this.paint();
  }

  stop() {
    this.meter.stop();
    if (this.stream) for (const tr of this.stream.getTracks()) tr.stop();
    this.stream = null;
    this.els.video.srcObject = null;
    this.paint();
  }

  /** @param {MediaDeviceInfo[]} [known] */
  async fillDevices(known) {
    const devices = known || await navigator.mediaDevices.enumerateDevices();
    const fill = (/** @type {HTMLSelectElement} */ sel, /** @type {string} */ kind, /** @type {string} */ current) => {
      const list = devices.filter((d) => d.kind === kind && d.deviceId);
      const keep = current || sel.value;
      sel.replaceChildren(...list.map((d, i) => new Option(d.label || `${kind} ${i + 1}`, d.deviceId)));
      if (keep && list.some((d) => d.deviceId === keep)) sel.value = keep;
    };
    const v = this.stream?.getVideoTracks()[0]?.getSettings().deviceId || '';
    const a = this.stream?.getAudioTracks()[0]?.getSettings().deviceId || '';
    fill(this.els.camera, 'videoinput', v);
    fill(this.els.mic, 'audioinput', a);
  }

  paint() {
    const on = !!this.stream;
    this.els.toggle.textContent = t(on ? 'dash.previewStop' : 'dash.previewStart');
    this.els.toggle.setAttribute('aria-pressed', String(on));
    this.els.video.parentElement?.classList.toggle('off', !on);
  }
}
