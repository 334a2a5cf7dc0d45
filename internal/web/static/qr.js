// qr.js: a QR code of a patient's link, drawn locally as SVG (no outside service: the link holds
// the patient's key). The encoder is the vendored, MIT-licensed qrcode-generator.

import qrcode from './vendor/qrcode-generator/qrcode.js';

const SVG = 'http://www.w3.org/2000/svg';

/**
 * The dark modules of text's QR code (error correction M: readable with a smudge or a glare), or
 * throws when the text is too long for a QR code.
 * @param {string} text ASCII (a URL's href is always ASCII)
 * @returns {boolean[][]}
 */
export function qrMatrix(text) {
  const qr = qrcode(0, 'M'); // 0: the smallest version that fits
  qr.addData(text, 'Byte');
  qr.make();
  const n = qr.getModuleCount();
  return Array.from({ length: n }, (_, r) => Array.from({ length: n }, (_, c) => qr.isDark(r, c)));
}

/**
 * An <svg> of text's QR code with the standard 4-module quiet zone, as one path of unit squares.
 * @param {string} text @param {string} label what the picture shows, for screen readers
 * @returns {SVGSVGElement}
 */
export function qrSVG(text, label) {
  const m = qrMatrix(text);
  const size = m.length + 8;
  let d = '';
  m.forEach((row, r) => row.forEach((dark, c) => { if (dark) d += `M${c + 4} ${r + 4}h1v1h-1z`; }));
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${size} ${size}`);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label);
  svg.setAttribute('shape-rendering', 'crispEdges');
  svg.classList.add('qr');
  const bg = document.createElementNS(SVG, 'rect');
  bg.setAttribute('width', String(size));
  bg.setAttribute('height', String(size));
  bg.setAttribute('fill', '#fff');
  const path = document.createElementNS(SVG, 'path');
  path.setAttribute('d', d);
  path.setAttribute('fill', '#000');
  svg.append(bg, path);
  return svg;
}
