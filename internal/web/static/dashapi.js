// dashapi.js: the dashboard's calls to the JSON API (relative URLs, so the page works at /rehab/
// behind the gateway and at / on the service port) and what it keeps in the browser.

/**
 * @typedef {object} Invitation
 * @property {'user'|'participant'|'device'} kind
 * @property {string} uuid
 * @property {string} session_url personal link of this invitee
 *
 * @typedef {object} Session
 * @property {number} id_session
 * @property {string} session_uuid
 * @property {string} [session_name]
 * @property {number} session_status 1 in progress, 2 completed
 * @property {string} [session_start_datetime]
 * @property {number} [session_duration]
 * @property {string[]} session_users
 * @property {string[]} session_participants
 * @property {string[]} session_devices
 * @property {string} [session_creator_uuid]
 * @property {Invitation[]} [session_invitations]
 * @property {{id: string, name: string, uuid: string, role: string}[]} [session_peers]
 */

const KEY = 'rehab.apiKey';

/** An error the API answered, with its public text. */
export class APIError extends Error {
  /** @param {number} status @param {string} text */
  constructor(status, text) {
    super(text);
    this.status = status;
  }
}

export const auth = {
  get() { return sessionStorage.getItem(KEY) || ''; },
  /** @param {string} k */
  set(k) { sessionStorage.setItem(KEY, k); },
  clear() { sessionStorage.removeItem(KEY); },
};

/**
 * @param {string} method @param {string} path relative to the page, e.g. "api/sessions"
 * @param {any} [body]
 */
async function call(method, path, body) {
  /** @type {Record<string, string>} */
  const headers = { Authorization: `Bearer ${auth.get()}`, Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
  } catch {
    throw new APIError(0, '');
  }
  let data = null;
  try {
    data = await res.json();
  } catch { /* empty or not JSON */ }
  if (!res.ok || data?.status === 'error') {
    throw new APIError(res.status, typeof data?.error_text === 'string' ? data.error_text : '');
  }
  return data;
}

/** @returns {Promise<Session[]>} */
export async function listSessions() {
  const data = await call('GET', 'api/sessions');
  return Array.isArray(data?.sessions) ? data.sessions : [];
}

/** @param {number} id @returns {Promise<Session>} */
export function getSession(id) {
  return call('GET', `api/sessions/${encodeURIComponent(id)}`);
}

/**
 * session_manage: start, stop, invite or remove. The three lists are always sent ([] = none).
 * @param {'start'|'stop'|'invite'|'remove'} action
 * @param {{id?: number, users?: string[], participants?: string[], devices?: string[], creator?: string, name?: string}} a
 * @returns {Promise<{status: string, session?: Session}>}
 */
export function manage(action, a) {
  /** @type {Record<string, any>} */
  const m = {
    action, id_session: a.id || 0,
    session_users: a.users || [], session_participants: a.participants || [], session_devices: a.devices || [],
  };
  if (action === 'start') {
    m.session_creator_user_uuid = a.creator;
    if (a.name) m.session_name = a.name;
  }
  return call('POST', 'api/sessions/manager', { session_manage: m });
}

/** A random v4 uuid, also on plain-http pages where crypto.randomUUID does not exist. */
export function newUUID() {
  if (typeof crypto.randomUUID === 'function' && isSecureContext) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** This browser's clinician: a uuid kept for good, and a display name. */
export const clinician = {
  uuid() {
    let id = localStorage.getItem('rehab.clinician.uuid');
    if (!id) {
      id = newUUID();
      localStorage.setItem('rehab.clinician.uuid', id);
    }
    return id;
  },
  name() { return localStorage.getItem('rehab.clinician.name') || ''; },
  /** @param {string} n */
  setName(n) { localStorage.setItem('rehab.clinician.name', n); },
};

/**
 * Names and languages the clinician gave to invitees. They stay in this browser only: the server
 * knows invitees by uuid.
 */
export const labels = {
  /** @returns {Record<string, {label: string, lang: string}>} */
  all() {
    try {
      return JSON.parse(localStorage.getItem('rehab.labels') || '{}') || {};
    } catch {
      return {};
    }
  },
  /** @param {string} uuid */
  get(uuid) { return this.all()[uuid] || { label: '', lang: '' }; },
  /** @param {string} uuid @param {string} label @param {string} lang */
  set(uuid, label, lang) {
    const all = this.all();
    all[uuid] = { label: label.slice(0, 64), lang };
    localStorage.setItem('rehab.labels', JSON.stringify(all));
  },
};

/**
 * The personal link to give an invitee, with the display name and language the clinician chose and,
 * for a patient, the therapist's name (their waiting room says who is coming).
 * @param {string} url @param {{name?: string, lang?: string, therapist?: string}} add
 */
export function personalLink(url, add) {
  let u;
  try {
    u = new URL(url, location.href);
  } catch {
    return url;
  }
  for (const [k, v] of Object.entries(add)) if (v && !u.searchParams.has(k)) u.searchParams.set(k, v);
  return u.href;
}
