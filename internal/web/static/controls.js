// controls.js: the bottom toolbar (microphone, camera, sound, screen share, second camera,
// settings, leave) and the settings dialog with the device pickers.

import { setIcon } from './icons.js';
import { t } from './i18n.js';
import { $ } from './dom.js';

/** @typedef {import('./localmedia.js').LocalMedia} LocalMedia */
/** @typedef {import('./tiles.js').Tiles} Tiles */


const canPickSpeaker = typeof HTMLMediaElement !== 'undefined' && 'setSinkId' in HTMLMediaElement.prototype;

export class Controls {
  /**
   * @param {LocalMedia} media
   * @param {Tiles} tiles
   * @param {{leave: () => void, changed: () => void, toast: (text: string) => void}} hooks
   */
  constructor(media, tiles, hooks) {
    this.media = media;
    this.tiles = tiles;
    this.hooks = hooks;
    this.dialog = $('settings', HTMLDialogElement);
    $('btn-mic').addEventListener('click', () => media.setMic(!media.micOn));
    $('btn-cam').addEventListener('click', () => this.busy('btn-cam', () => media.setCam(!media.camOn)));
    $('btn-speaker').addEventListener('click', () => {
      media.speakerOn = !media.speakerOn;
      tiles.setSpeaker(media.speakerOn);
      hooks.changed();
    });
    $('btn-screen').addEventListener('click', () => this.busy('btn-screen', async () => {
      if (media.screen) media.stopScreen();
      else if (!(await media.startScreen())) hooks.toast(t('ctl.screenFailed'));
    }));
    $('btn-second').addEventListener('click', () => this.busy('btn-second', async () => {
      if (media.second) media.stopSecond();
      else await this.startSecond();
    }));
    $('btn-settings').addEventListener('click', () => this.openSettings());
    $('btn-leave').addEventListener('click', () => hooks.leave());
    $('sel-camera').addEventListener('change', (/** @type {Event} */ ev) => {
      media.switchCamera(/** @type {HTMLSelectElement} */ (ev.target).value);
    });
    $('sel-mic').addEventListener('change', (/** @type {Event} */ ev) => {
      media.switchMic(/** @type {HTMLSelectElement} */ (ev.target).value);
    });
    $('sel-speaker').addEventListener('change', (/** @type {Event} */ ev) => {
      media.speakerId = /** @type {HTMLSelectElement} */ (ev.target).value;
      tiles.setSink(media.speakerId);
    });
    $('sel-second').addEventListener('change', async (/** @type {Event} */ ev) => {
      const id = /** @type {HTMLSelectElement} */ (ev.target).value;
      if (id) await media.startSecond(id);
      else media.stopSecond();
    });
    $('field-speaker').hidden = !canPickSpeaker;
    $('btn-screen').hidden = !media.canShareScreen;
  }

  /** Run an async action with its button disabled meanwhile. @param {string} id @param {() => Promise<unknown>} fn */
  async busy(id, fn) {
    const b = $(id, HTMLButtonElement);
    b.disabled = true;
    try {
      await fn();
    } finally {
      b.disabled = false;
      this.paint();
    }
  }

  async startSecond() {
    const cams = this.media.list('videoinput').filter((c) => c.deviceId !== this.media.videoId);
    if (cams.length === 0) {
      this.hooks.toast(t('ctl.noSecond'));
      return;
    }
    if (!(await this.media.startSecond(cams[0].deviceId))) this.hooks.toast(t('ctl.secondFailed'));
  }

  async openSettings() {
    await this.media.refreshDevices();
    this.fill('sel-camera', this.media.list('videoinput'), this.media.videoId, 'settings.noCamera');
    this.fill('sel-mic', this.media.list('audioinput'), this.media.audioId, 'settings.noMic');
    this.fill('sel-speaker', this.media.list('audiooutput'), this.media.speakerId || 'default', 'settings.default');
    const second = this.media.second?.getVideoTracks()[0]?.getSettings().deviceId || '';
    this.fill('sel-second', this.media.list('videoinput'), second, 'settings.none', true);
    if (typeof this.dialog.showModal === 'function') this.dialog.showModal();
  }

  /**
   * @param {string} id @param {MediaDeviceInfo[]} devices @param {string} selected
   * @param {string} emptyKey @param {boolean} [withNone] add an "off" entry first
   */
  fill(id, devices, selected, emptyKey, withNone = false) {
    const sel = $(id, HTMLSelectElement);
    const opts = devices.map((d, i) => new Option(d.label || `${t(emptyKey)} ${i + 1}`, d.deviceId));
    if (withNone || opts.length === 0) opts.unshift(new Option(t(withNone ? 'settings.none' : emptyKey), ''));
    sel.replaceChildren(...opts);
    sel.value = opts.some((o) => o.value === selected) ? selected : opts[0].value;
    sel.disabled = devices.length === 0;
  }

  /** Reflect the local state on the buttons. */
  paint() {
    const m = this.media;
    this.toggle('btn-mic', m.hasMic && m.micOn, 'mic', m.micOn ? 'ctl.micOff' : 'ctl.micOn', !m.hasMic);
    this.toggle('btn-cam', !!m.camTrack && m.camOn, 'cam', m.camOn ? 'ctl.camOff' : 'ctl.camOn', !m.hasCamera);
    this.toggle('btn-speaker', m.speakerOn, 'speaker', m.speakerOn ? 'ctl.speakerOff' : 'ctl.speakerOn', false);
    this.toggle('btn-screen', !!m.screen, 'screen', m.screen ? 'ctl.screenStop' : 'ctl.screenStart', false, true);
    this.toggle('btn-second', !!m.second, 'second', m.second ? 'ctl.secondStop' : 'ctl.secondStart',
      !m.second && (!m.hasCamera || m.list('videoinput').length < 2), true);
  }

  /**
   * @param {string} id @param {boolean} on @param {string} ic @param {string} label
   * @param {boolean} disabled @param {boolean} [positive] "on" is the unusual state (sharing)
   */
  toggle(id, on, ic, label, disabled, positive = false) {
    const b = $(id, HTMLButtonElement);
    b.setAttribute('aria-pressed', String(on));
    b.classList.toggle('off', !on && !positive);
    b.classList.toggle('active', on && positive);
    b.disabled = disabled;
    setIcon(b, on || positive ? ic : `${ic}-off`);
    b.title = t(label); // the visible label stays the name; aria-pressed tells the state
  }
}
