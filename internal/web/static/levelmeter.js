// levelmeter.js: a live microphone level, so a person sees that their microphone works (the
// dashboard's camera check and the patient's waiting room).

export class LevelMeter {
  /** @param {HTMLElement} el gets the CSS variable --level (0…1) and data-active while sound is heard */
  constructor(el) {
    this.el = el;
    /** @type {AudioContext|null} */
    this.audio = null;
    /** @type {MediaStreamTrack|null} */
    this.track = null;
    this.raf = 0;
    /** The loudest level seen since start. */
    this.peak = 0;
    /** Called once per start when a clear sound is heard. @type {(() => void)|null} */
    this.onHeard = null;
    // Browsers start an AudioContext suspended until the person touches the page.
    this.resume = () => { this.audio?.resume().catch(() => {}); };
    addEventListener('pointerdown', this.resume, { capture: true });
    addEventListener('keydown', this.resume, { capture: true });
  }

  /** Follow the first audio track of stream (nothing when it has none). @param {MediaStream} stream */
  start(stream) {
    const track = stream.getAudioTracks()[0] || null;
    if (track === this.track && this.audio) return;
    this.stop();
    this.peak = 0;
    if (!track) return;
    try {
      this.audio = new AudioContext();
      const an = this.audio.createAnalyser();
      an.fftSize = 512;
      this.audio.createMediaStreamSource(new MediaStream([track])).connect(an);
      this.track = track;
      const buf = new Uint8Array(an.fftSize);
      const loop = () => {
        an.getByteTimeDomainData(buf);
        let peak = 0;
        for (const x of buf) peak = Math.max(peak, Math.abs(x - 128));
        const level = Math.min(1, peak / 64);
        if (level > 0.1 && this.peak <= 0.1) this.onHeard?.();
        this.peak = Math.max(this.peak, level);
        this.el.style.setProperty('--level', level.toFixed(3));
        this.el.dataset.active = String(level > 0.05);
        this.raf = requestAnimationFrame(loop);
      };
      loop();
    } catch { /* no Web Audio: no meter, the rest works */ }
  }

  stop() {
    cancelAnimationFrame(this.raf);
    this.audio?.close().catch(() => {});
    this.audio = null;
    this.track = null;
    this.el.style.setProperty('--level', '0');
    this.el.dataset.active = 'false';
  }
}
