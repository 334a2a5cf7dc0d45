// localmedia.js: the local camera, microphone, second camera and screen share of this page.
// It only captures; media.js sends. Every change is reported through onTrack(stream, kind, track).

/** @typedef {import('./media.js').StreamName} StreamName */
/** @typedef {'ok'|'denied'|'camera-denied'|'no-camera'|'no-device'|'busy'|'unsupported'} StartResult */

const VIDEO = { width: { ideal: 960 }, height: { ideal: 540 }, frameRate: { ideal: 24, max: 30 } };
/**
 * The own preview in a small tile shows the camera at most this many frames per second: each frame a
 * page paints costs its browser about as much as decoding one (docs/performance.md, "fourth round"),
 * and a small preview needs no more than a thumbnail. What is sent keeps the camera's rate.
 */
const PREVIEW_FPS = 15;
const AUDIO = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };

/** @param {unknown} err @returns {string} */
const errName = (err) => (err && typeof err === 'object' && 'name' in err ? String(err.name) : 'Error');

export class LocalMedia {
  /**
   * @param {(stream: StreamName, kind: 'audio'|'video', track: MediaStreamTrack|null) => void} onTrack
   * @param {() => void} onChange local state changed (devices, mute, sharing…)
   */
  constructor(onTrack, onChange) {
    this.onTrack = onTrack;
    this.onChange = onChange;
    /** The main camera and microphone, shown in the local preview. */
    this.camera = new MediaStream();
    /** The camera's video at PREVIEW_FPS (a clone of its track), for the preview in a small tile. */
    this.preview = new MediaStream();
    /** @type {MediaStream|null} */
    this.second = null;
    /** @type {MediaStream|null} */
    this.screen = null;
    this.micOn = true;
    this.camOn = true;
    this.speakerOn = true;
    this.hasMic = false;
    this.hasCamera = false;
    this.audioId = '';
    this.videoId = '';
    this.speakerId = '';
    /** @type {MediaDeviceInfo[]} */
    this.devices = [];
  }

  /** @param {'audioinput'|'videoinput'|'audiooutput'} kind */
  list(kind) {
    return this.devices.filter((d) => d.kind === kind && d.deviceId !== '');
  }

  async refreshDevices() {
    try {
      this.devices = await navigator.mediaDevices.enumerateDevices();
    } catch {
      this.devices = [];
    }
  }

  /**
   * Open the camera and microphone. Falls back to audio only when there is no usable camera.
   * @returns {Promise<StartResult>}
   */
  async start() {
    if (!navigator.mediaDevices?.getUserMedia) return 'unsupported';
    await this.refreshDevices();
    // Before permission the devices have no ids, but their kinds are listed.
    const wantVideo = this.devices.length === 0 || this.devices.some((d) => d.kind === 'videoinput');
    let result = /** @type {StartResult} */ ('ok');
    let stream = null;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: AUDIO, video: wantVideo ? VIDEO : false });
      if (!wantVideo) result = 'no-camera';
    } catch (err) {
      // No camera, a busy camera or a blocked camera: audio alone still lets the session go on.
      const name = errName(err);
      const denied = name === 'NotAllowedError' || name === 'SecurityError';
      try {
        stream = await navigator.mediaDevices.getUserMedia({ audio: AUDIO });
        if (denied) result = 'camera-denied';
        else result = name === 'NotReadableError' || name === 'AbortError' ? 'busy' : 'no-camera';
      } catch (err2) {
        const n2 = errName(err2);
        return denied || n2 === 'NotAllowedError' || n2 === 'SecurityError' ? 'denied' : 'no-device';
      }
    }
    for (const t of stream.getTracks()) this.setCameraTrack(t);
    await this.refreshDevices();
    this.onChange();
    return result;
  }

  /** @param {MediaStreamTrack} track */
  setCameraTrack(track) {
    for (const old of this.camera.getTracks()) {
      if (old.kind === track.kind) {
        old.stop();
        this.camera.removeTrack(old);
      }
    }
    this.camera.addTrack(track);
    if (track.kind === 'video') this.clonePreview(track);
    const id = track.getSettings().deviceId || '';
    if (track.kind === 'audio') {
      this.hasMic = true;
      this.audioId = id;
      track.enabled = this.micOn;
    } else {
      this.hasCamera = true;
      this.videoId = id;
    }
    track.addEventListener('ended', () => this.onChange());
    this.onTrack('camera', /** @type {'audio'|'video'} */ (track.kind), track);
  }

  /**
   * A light copy of the camera for the preview: the camera's constraints with a lower frame rate, so
   * the browser drops frames for this track only, without reopening the camera.
   * @param {MediaStreamTrack} track
   */
  clonePreview(track) {
    this.stopPreview();
    const clone = track.clone();
    const own = track.getConstraints();
    const rate = track.getSettings().frameRate || 0;
    clone.applyConstraints({ ...own, frameRate: { max: PREVIEW_FPS } }).then(() => {
      // A browser that cannot give a clone a rate of its own would slow the camera itself: undo.
      if ((track.getSettings().frameRate || 0) < rate) return clone.applyConstraints(own);
    }).catch(() => {});
    this.preview.addTrack(clone);
  }

  /** With the camera's capture: a live clone would keep the camera open (its light on). */
  stopPreview() {
    for (const t of this.preview.getTracks()) {
      t.stop();
      this.preview.removeTrack(t);
    }
  }

  get micTrack() {
    return this.camera.getAudioTracks()[0] || null;
  }

  get camTrack() {
    return this.camera.getVideoTracks()[0] || null;
  }

  /** @param {boolean} on */
  setMic(on) {
    this.micOn = on;
    const t = this.micTrack;
    if (t) t.enabled = on;
    this.onChange();
  }

  /**
   * Camera off stops the capture (the camera light goes off); on opens it again.
   * @param {boolean} on
   */
  async setCam(on) {
    this.camOn = on;
    if (!on) {
      const t = this.camTrack;
      if (t) {
        t.stop();
        this.camera.removeTrack(t);
      }
      this.stopPreview();
      this.onTrack('camera', 'video', null);
      this.onChange();
      return;
    }
    if (!this.camTrack) await this.openCamera(this.videoId);
    this.onChange();
  }

  /** @param {string} deviceId @returns {Promise<boolean>} */
  async openCamera(deviceId) {
    // Stop the old capture first: phones cannot open their two cameras at once (NotReadableError).
    const old = this.camTrack;
    if (old) {
      old.stop();
      this.camera.removeTrack(old);
    }
    this.stopPreview();
    try {
      const video = deviceId ? { ...VIDEO, deviceId: { exact: deviceId } } : VIDEO;
      const s = await navigator.mediaDevices.getUserMedia({ video });
      this.setCameraTrack(s.getVideoTracks()[0]);
      return true;
    } catch (err) {
      console.warn('camera', err);
      this.onTrack('camera', 'video', null);
      return false;
    }
  }

  /** Switch to another camera (a deviceId, or 'next' to cycle). @param {string} deviceId */
  async switchCamera(deviceId) {
    const cams = this.list('videoinput');
    if (deviceId === 'next') {
      if (cams.length < 2) return false;
      const i = cams.findIndex((c) => c.deviceId === this.videoId);
      deviceId = cams[(i + 1) % cams.length].deviceId;
    }
    this.videoId = deviceId;
    if (!this.camOn) {
      this.onChange();
      return true;
    }
    const ok = await this.openCamera(deviceId);
    this.onChange();
    return ok;
  }

  /** @param {string} deviceId */
  async switchMic(deviceId) {
    try {
      const s = await navigator.mediaDevices.getUserMedia({ audio: { ...AUDIO, deviceId: { exact: deviceId } } });
      this.setCameraTrack(s.getAudioTracks()[0]);
    } catch (err) {
      console.warn('microphone', err);
    }
    this.onChange();
  }

  /** Open a second camera (another angle on the exercise). @param {string} deviceId */
  async startSecond(deviceId) {
    this.stopSecond(false);
    try {
      const video = deviceId ? { ...VIDEO, deviceId: { exact: deviceId } } : VIDEO;
      this.second = await navigator.mediaDevices.getUserMedia({ video });
      const t = this.second.getVideoTracks()[0];
      t.addEventListener('ended', () => this.stopSecond());
      this.onTrack('second', 'video', t);
      return true;
    } catch (err) {
      console.warn('second camera', err);
      return false;
    } finally {
      this.onChange();
    }
  }

  stopSecond(notify = true) {
    if (this.second) for (const t of this.second.getTracks()) t.stop();
    this.second = null;
    this.onTrack('second', 'video', null);
    if (notify) this.onChange();
  }

  get canShareScreen() {
    return !!navigator.mediaDevices?.getDisplayMedia;
  }

  /** Share a screen or window, with its sound where the browser allows it. */
  async startScreen() {
    if (!this.canShareScreen) return false;
    try {
      this.screen = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15 } }, audio: true });
    } catch (err) {
      console.warn('screen share', err);
      this.screen = null;
      this.onChange();
      return false;
    }
    const v = this.screen.getVideoTracks()[0] || null;
    if (v) v.addEventListener('ended', () => this.stopScreen()); // the browser's "Stop sharing" bar
    this.onTrack('screen', 'video', v);
    this.onTrack('screen', 'audio', this.screen.getAudioTracks()[0] || null);
    this.onChange();
    return true;
  }

  stopScreen() {
    if (this.screen) for (const t of this.screen.getTracks()) t.stop();
    this.screen = null;
    this.onTrack('screen', 'video', null);
    this.onTrack('screen', 'audio', null);
    this.onChange();
  }

  /** Release every capture (the session is over). */
  stopAll() {
    for (const t of this.camera.getTracks()) t.stop();
    this.stopPreview();
    this.stopSecond(false);
    if (this.screen) for (const t of this.screen.getTracks()) t.stop();
    this.screen = null;
  }

  /** The state shared with the others on topic `status`. */
  status() {
    return {
      mic: this.hasMic && this.micOn,
      cam: !!this.camTrack && this.camOn,
      speaker: this.speakerOn,
      screen: !!this.screen,
      second: !!this.second,
      hasMic: this.hasMic,
      hasCamera: this.hasCamera,
      cameras: this.list('videoinput').length,
    };
  }
}
