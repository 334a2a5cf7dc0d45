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
 * @property {string} [session_creator_name] the creating clinician's display name
 * @property {Record<string, Person>} [session_invitees] names and languages by uuid (personal data, kept by the service)
 *
 * @typedef {object} Person
 * @property {string} name
 * @property {string} [lang]
 *
 * @typedef {object} FeedEvent one change the service pushes: what changed, never who
 * @property {'session'|'presence'} type
 * @property {number} id_session
 * @property {string} change
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
 * session_manage: start, stop, invite or remove. The three lists are always sent ([] = none). The
 * names and languages of the invitees (and the creator's name) go to the service, which keeps them
 * for every clinician's dashboard.
 * @param {'start'|'stop'|'invite'|'remove'} action
 * @param {{id?: number, users?: string[], participants?: string[], devices?: string[], creator?: string, creatorName?: string,
 *   name?: string, people?: ({uuid: string} & Person)[]}} a
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
    if (a.creatorName) m.session_creator_name = a.creatorName;
    if (a.name) m.session_name = a.name;
  }
  const people = (a.people || []).filter((p) => p.name);
  if (people.length) m.session_invitees = people.map((p) => ({ uuid: p.uuid, name: p.name.slice(0, 64), lang: p.lang || undefined }));
  return call('POST', 'api/sessions/manager', { session_manage: m });
}

/**
 * Follow the service's event stream (Server-Sent Events read through fetch, so the key travels in a
 * header, never in a URL). onOpen runs once subscribed, onEvent for each change. It resolves when the
 * stream ends (the service stops, or this page fell behind) and rejects with an APIError when it
 * cannot start.
 * @param {AbortSignal} signal @param {() => void} onOpen @param {(ev: FeedEvent) => void} onEvent
 */
export async function follow(signal, onOpen, onEvent) {
  let res;
  try {
    res = await fetch('api/events', { headers: { Authorization: `Bearer ${auth.get()}`, Accept: 'text/event-stream' }, cache: 'no-store', signal });
  } catch {
    throw new APIError(0, '');
  }
  if (!res.ok || !res.body) throw new APIError(res.status, '');
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    let chunk;
    try {
      chunk = await reader.read();
    } catch {
      return; // the connection dropped, or the page aborted
    }
    if (chunk.done) return;
    buf += chunk.value;
    for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let event = 'message';
      let data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      if (event === 'hello') onOpen();
      else if (data) {
        try {
          onEvent(JSON.parse(data));
        } catch { /* not ours: ignore */ }
      }
    }
  }
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

/** Drop what earlier versions kept in the browser: patients' names now stay on the service only. */
export function forgetLocalNames() {
  localStorage.removeItem('rehab.labels');
}

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
