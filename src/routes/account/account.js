// The account page: logs in with the public client's password grant, lists the user's live
// sessions and ends them, all through the public API. The tokens live in this module's
// memory only (no storage, no cookie), so a reload asks to log in again; the access token is
// refreshed with the refresh token before it expires.

const CLIENT = 'Basic ' + btoa('egov-user-client:');

/** The signed-in session: tokens, when they expire (epoch ms), and the user; null when out. */
let current = null;
let refreshTimer = 0;
/** The refresh in flight, so concurrent callers share one. */
let refreshing = null;

const $ = (id) => document.getElementById(id);

const form = $('login-form');
const signIn = $('sign-in');
const account = $('account');

// ---- talking to the server -------------------------------------------------------------

/** A request to this server; a network failure answers `{status: 0}`. */
async function call(path, { method = 'GET', headers = {}, body } = {}) {
  try {
    const res = await fetch(path, { method, headers, body, cache: 'no-store', credentials: 'omit' });
    let json = null;
    if (res.status !== 204) {
      try {
        json = await res.json();
      } catch {
        json = null;
      }
    }
    return { status: res.status, body: json, retryAfter: res.headers.get('Retry-After') };
  } catch {
    return { status: 0, body: null, retryAfter: null };
  }
}

function tokenRequest(fields) {
  return call('/user/oauth/token', {
    method: 'POST',
    headers: { Authorization: CLIENT, 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields),
  });
}

/** Keeps a token response: the pair, their expiry, the user; and plans the next refresh. */
function keep(body) {
  const now = Date.now();
  current = {
    access: body.access_token,
    refresh: body.refresh_token,
    accessExpires: now + body.expires_in * 1000,
    refreshExpires: now + body.refresh_expires_in * 1000,
    user: body.UserRequest || current?.user || {},
  };
  clearTimeout(refreshTimer);
  // Well before expiry: a minute early for long tokens, a quarter early for short ones; at
  // least daily, as a timer cannot wait longer than 24.8 days.
  const lead = body.expires_in > 120 ? 60 : body.expires_in / 4;
  const wait = Math.min(Math.max(1, body.expires_in - lead), 86400);
  refreshTimer = setTimeout(() => refresh(), wait * 1000);
}

/** Trades the refresh token for a new pair; true if the session goes on. */
function refresh() {
  if (!current) return Promise.resolve(false);
  if (!refreshing) {
    refreshing = (async () => {
      const sent = current.refresh;
      const res = await tokenRequest({ grant_type: 'refresh_token', refresh_token: sent });
      if (!current || current.refresh !== sent) return Boolean(current);
      if (res.status === 200) {
        keep(res.body);
        return true;
      }
      if (res.status === 400 || res.status === 401) {
        ended('Your session has ended. Log in again to see your sessions.');
        return false;
      }
      // An outage: try again shortly while the access token still works.
      clearTimeout(refreshTimer);
      refreshTimer = setTimeout(() => refresh(), 5000);
      return Date.now() < current.accessExpires;
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

/** A call with the access token, refreshed first if it is about to expire, and once more on a 401. */
async function authed(path, options = {}) {
  if (!current) return { status: 401, body: null };
  if (Date.now() > current.accessExpires - 5000 && !(await refresh())) {
    return { status: 401, body: null };
  }
  // Logged out meanwhile: nothing to send.
  const send = () =>
    current
      ? call(path, { ...options, headers: { Authorization: 'Bearer ' + current.access } })
      : { status: 401, body: null };
  let res = await send();
  if (res.status === 401 && current && (await refresh())) res = await send();
  if (res.status === 401 && current) {
    ended('Your session has ended. Log in again to see your sessions.');
  }
  return res;
}

// Timers sleep in background tabs and suspended laptops: catch up when the page is seen again.
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && current && Date.now() > current.accessExpires - 60000) {
    refresh();
  }
});

// ---- messages ----------------------------------------------------------------------------

/** Shows `text` in an alert or status region; set anew so a repeated message is announced. */
function say(element, text) {
  const said = String(Number(element.dataset.said || 0) + 1);
  element.dataset.said = said;
  element.textContent = '';
  if (!text) return;
  setTimeout(() => {
    // Unless something newer was said meanwhile.
    if (element.dataset.said === said) element.textContent = text;
  }, 30);
}

function loginProblem(res) {
  const description = res.body?.error_description || '';
  switch (res.status) {
    case 0:
      return 'The server could not be reached. Check your connection and try again.';
    case 400:
      if (description === 'Account locked') {
        return 'This account is locked after too many failed logins. Try again later, or ask an administrator to unlock it.';
      }
      if (description === 'Please activate your account') {
        return 'This account is not active. Ask an administrator to activate it.';
      }
      if (res.body?.error === 'invalid_grant') {
        return 'The user name or password is wrong. Check them, and the tenant and user type if you gave them, then try again.';
      }
      return `The server refused the login: ${description || 'bad request'}.`;
    case 401:
      return 'This server does not accept logins from this page: its public client is turned off.';
    case 429: {
      const seconds = Number.parseInt(res.retryAfter || '', 10);
      const wait = Number.isFinite(seconds) ? `${seconds} seconds` : 'a minute';
      return `Too many login attempts from your network. Wait ${wait} and try again.`;
    }
    case 503:
      return 'The server cannot log you in right now. Try again in a moment.';
    default:
      return `The login failed (error ${res.status}). Try again in a moment.`;
  }
}

function trouble(res, doing) {
  if (res.status === 0) return `Could not ${doing}: the server could not be reached. Try again.`;
  if (res.status === 503) return `Could not ${doing}: the server is unavailable right now. Try again in a moment.`;
  return `Could not ${doing} (error ${res.status}). Try again.`;
}

// ---- devices and times -------------------------------------------------------------------

// The stored user agent keeps its start and end (`Mozilla/5.0 (Linux; Android 10;...Mobile
// Safari/537.36`): the platform is at the start, the browser at the end.
const BROWSERS = [
  [/Edg(?:e|A|iOS)?\//, 'Edge'],
  [/OPR\/|Opera/, 'Opera'],
  [/SamsungBrowser\//, 'Samsung Internet'],
  [/Firefox\/|FxiOS\//, 'Firefox'],
  [/CriOS\/|Chrome\/|Chromium\//, 'Chrome'],
  // Blink's engine tag: a Chromium browser whose name fell in the cut-out middle.
  [/Safari\/537\.36/, 'Chrome'],
  [/Safari\//, 'Safari'],
];
const SYSTEMS = [
  [/Windows/, 'Windows'],
  [/Android/, 'Android'],
  [/iPhone/, 'iPhone'],
  [/iPad/, 'iPad'],
  [/CrOS/, 'ChromeOS'],
  [/Macintosh|Mac OS X/, 'macOS'],
  [/Linux|X11/, 'Linux'],
];

/** A readable device, e.g. "Firefox on Windows", "curl", "Unknown device"; and whether it is a phone. */
export function device(ua) {
  const text = (ua || '').trim();
  if (!text) return { name: 'Unknown device', phone: false };
  const phone = /Mobile|Android|iPhone|iPad/.test(text);
  const find = (table) => table.find(([pattern]) => pattern.test(text))?.[1];
  if (!text.startsWith('Mozilla/')) {
    // A program rather than a browser: its product name (`curl/8.5.0` → curl).
    const product = text.split(/[/\s]/)[0];
    return { name: product || 'Unknown device', phone };
  }
  const browser = find(BROWSERS);
  const system = find(SYSTEMS);
  if (browser && system) return { name: `${browser} on ${system}`, phone };
  if (browser) return { name: browser, phone };
  if (system) return { name: `A browser on ${system}`, phone };
  return { name: 'Unknown browser', phone };
}

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
const UNITS = [
  ['year', 365 * 86400],
  ['month', 30 * 86400],
  ['week', 7 * 86400],
  ['day', 86400],
  ['hour', 3600],
  ['minute', 60],
  ['second', 1],
];

function ago(ms) {
  const seconds = (ms - Date.now()) / 1000;
  const [unit, size] = UNITS.find(([, s]) => Math.abs(seconds) >= s) || UNITS[UNITS.length - 1];
  if (unit === 'second' && Math.abs(seconds) < 30) return seconds < 0 ? 'just now' : 'in a few seconds';
  return relative.format(Math.round(seconds / size), unit);
}

/** A time as "Dec 7, 4:19 AM" over "2 hours ago", the year only when it is not this one. */
function when(ms) {
  const date = new Date(ms);
  const thisYear = date.getFullYear() === new Date().getFullYear();
  const format = new Intl.DateTimeFormat(undefined, {
    year: thisYear ? undefined : 'numeric',
    month: 'short',
    day: 'numeric',
    hour: 'numeric',
    minute: '2-digit',
  });
  const time = el('time', '', format.format(date));
  time.dateTime = date.toISOString();
  const span = el('span');
  span.append(time, el('span', 'ago muted', ago(ms)));
  return span;
}

// ---- rendering ---------------------------------------------------------------------------

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function fact(list, term, value) {
  const row = el('div', 'fact');
  row.append(el('dt', '', term));
  const dd = el('dd');
  dd.append(value);
  row.append(dd);
  list.append(row);
}

function entry(session) {
  const item = el('li', session.current ? 'session current' : 'session');
  item.dataset.id = session.id;
  const { name, phone } = device(session.userAgent);
  const head = el('div', 'session-head');
  head.append(el('span', phone ? 'device-icon phone' : 'device-icon desktop'));
  const title = el('h2', 'device', name);
  title.id = `device-${session.id}`;
  head.append(title);
  if (session.current) head.append(el('span', 'badge', 'This device'));
  item.append(head);
  item.append(el('p', 'client muted', `via ${session.clientId}`));

  const facts = el('dl', 'facts');
  fact(facts, 'Address', session.ip || 'unknown');
  fact(facts, 'Started', when(session.created));
  const refreshed = session.lastRefreshed > session.created;
  fact(facts, 'Last refreshed', refreshed ? when(session.lastRefreshed) : 'Not yet');
  if (session.expires) fact(facts, 'Expires', when(session.expires));
  item.append(facts);

  if (!session.current) {
    const end = el('button', 'danger end', 'End');
    end.type = 'button';
    end.setAttribute('aria-describedby', title.id);
    end.addEventListener('click', () => endOne(session, end));
    item.append(end);
  }
  return item;
}

let shown = [];

function render(sessions, focusIndex) {
  shown = [...sessions].sort((a, b) => b.created - a.created);
  $('sessions').replaceChildren(...shown.map(entry));
  const others = shown.filter((s) => !s.current).length;
  const count = shown.length === 1 ? '1 live session' : `${shown.length} live sessions`;
  $('sessions-summary').textContent = `${count}, newest first.`;
  $('end-others').disabled = others === 0;
  if (focusIndex !== undefined) {
    const buttons = [...document.querySelectorAll('#sessions .end')];
    const target = buttons[Math.min(focusIndex, buttons.length - 1)] || $('sessions-title');
    target.focus();
  }
}

// ---- what the buttons do -----------------------------------------------------------------

/** Reloads the list; `focusIndex` puts the focus back on the nth "End" button afterwards. */
async function load(focusIndex) {
  const res = await authed('/user/sessions');
  if (!current) return false;
  if (res.status !== 200) {
    say($('account-alert'), trouble(res, 'load your sessions'));
    return false;
  }
  say($('account-alert'), '');
  render(res.body.sessions || [], focusIndex);
  return true;
}

async function endOne(session, button) {
  const index = [...document.querySelectorAll('#sessions .end')].indexOf(button);
  button.disabled = true;
  const res = await authed(`/user/sessions/${encodeURIComponent(session.id)}`, { method: 'DELETE' });
  if (!current) return;
  const { name } = device(session.userAgent);
  if (res.status === 204 || res.status === 404) {
    say($('account-status'), res.status === 204 ? `Ended the session on ${name}.` : `The session on ${name} had already ended.`);
  } else {
    say($('account-alert'), trouble(res, `end the session on ${name}`));
  }
  await load(index);
}

async function endOthers() {
  $('end-others').disabled = true;
  let count = 0;
  let failed = null;
  // The list shows the latest sessions only: go again while ending makes progress.
  for (let round = 0; round < 10 && !failed; round += 1) {
    const others = shown.filter((s) => !s.current);
    if (others.length === 0) break;
    const results = await Promise.all(
      others.map((s) => authed(`/user/sessions/${encodeURIComponent(s.id)}`, { method: 'DELETE' })),
    );
    if (!current) return;
    count += results.filter((r) => r.status === 204).length;
    failed = results.find((r) => r.status !== 204 && r.status !== 404) || null;
    if (!(await load())) break;
  }
  $('end-others').disabled = !shown.some((s) => !s.current);
  if (failed) say($('account-alert'), trouble(failed, 'end every other session'));
  say($('account-status'), count === 1 ? 'Ended 1 other session.' : `Ended ${count} other sessions.`);
  $('sessions-title').focus();
}

async function logout() {
  if (!current) return;
  const res = await call('/user/_logout', {
    method: 'POST',
    headers: { Authorization: 'Bearer ' + current.access },
  });
  if (res.status !== 200) {
    say($('account-alert'), trouble(res, 'log you out'));
    return;
  }
  ended('');
  say($('login-status'), 'You have logged out.');
}

// ---- the two views -----------------------------------------------------------------------

/** Forgets the tokens and shows the sign-in form, with `message` in its alert if any. */
function ended(message) {
  current = null;
  clearTimeout(refreshTimer);
  shown = [];
  $('sessions').replaceChildren();
  say($('account-alert'), '');
  say($('account-status'), '');
  form.password.value = '';
  account.hidden = true;
  signIn.hidden = false;
  say($('login-alert'), message);
  say($('login-status'), '');
  form.username.focus();
}

function signedIn() {
  const user = current.user;
  $('who-name').textContent = user.name || user.userName || '';
  const tenant = user.tenantId ? `tenant ${user.tenantId}` : '';
  $('who-detail').textContent = [user.userName, tenant].filter(Boolean).join(' · ');
  say($('login-alert'), '');
  signIn.hidden = true;
  account.hidden = false;
  $('sessions-title').focus();
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const alert = $('login-alert');
  const username = form.username.value.trim();
  const password = form.password.value;
  if (!username || !password) {
    say(alert, 'Enter your user name and password.');
    (username ? form.password : form.username).focus();
    return;
  }
  const fields = { grant_type: 'password', username, password };
  const tenant = form.tenant.value.trim();
  if (tenant) fields.tenantId = tenant;
  if (form['user-type'].value) fields.userType = form['user-type'].value;
  const button = $('login');
  button.disabled = true;
  say(alert, '');
  say($('login-status'), '');
  const res = await tokenRequest(fields);
  button.disabled = false;
  if (res.status !== 200) {
    say(alert, loginProblem(res));
    form.password.focus();
    form.password.select();
    return;
  }
  keep(res.body);
  form.password.value = '';
  signedIn();
  await load();
});

$('refresh').addEventListener('click', async () => {
  if (await load()) say($('account-status'), 'The list is up to date.');
});
$('end-others').addEventListener('click', () => endOthers());
$('logout').addEventListener('click', () => logout());

// The form works once this module runs: before, Enter must not post a password anywhere.
$('login').disabled = false;
