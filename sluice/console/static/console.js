// Shared by every console page: the admin key (sessionStorage), admin API calls, DOM building, small SVG charts.
// Text always goes into the DOM through textContent, never innerHTML, so request data cannot inject markup.

const KEY = 'sluice.adminKey';

export function adminKey() {
  return sessionStorage.getItem(KEY);
}

export function signIn(key) {
  sessionStorage.setItem(KEY, key);
}

export function signOut() {
  sessionStorage.removeItem(KEY);
  location.assign('/console/login');
}

function toLogin() {
  const next = encodeURIComponent(location.pathname + location.search);
  location.assign(`/console/login?next=${next}`);
}

export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = error?.code ?? 'http_error';
    this.field = error?.field ?? null;
    this.detail = error ?? {};
  }
}

/** Call the admin API with the stored key; a refused key sends the browser to the sign-in page. */
export async function api(path, { method = 'GET', body, key } = {}) {
  const headers = { Authorization: `Bearer ${key ?? adminKey()}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if ((response.status === 401 || response.status === 403) && key === undefined) {
    sessionStorage.removeItem(KEY);
    toLogin();
    throw new ApiError(response.status, { code: 'signed_out', message: 'sign in again' });
  }
  if (response.status === 204) return null;
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, data?.error);
  return data;
}

/** `h('td', {class: 'x', onclick: fn}, 'text', child)`: an element; strings become text nodes. */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else if (name === 'dataset') Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

export function showError(error, where = $('#page-error')) {
  if (!where) return;
  where.textContent = error ? (error.message ?? String(error)) : '';
  where.hidden = !error;
}

export function fmtMs(value) {
  if (value === null || value === undefined) return '—';
  return value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${Math.round(value)} ms`;
}

/** Dollars: cents above $1, three significant digits below (a request costs fractions of a cent). */
export function usd(value) {
  if (!value) return '$0';
  return value >= 1 ? `$${value.toFixed(2)}` : `$${value.toPrecision(3)}`;
}

export function fmtTime(iso) {
  if (!iso) return '—';
  const date = new Date(iso);
  return date.toLocaleString(undefined, { hour12: false });
}

export function pretty(value) {
  return JSON.stringify(value, null, 2);
}

export function badge(status) {
  return h('span', { class: `badge ${status}` }, status);
}

/** Run `fn` now and every `ms` while the tab is visible; returns a stop function. */
export function every(ms, fn) {
  let timer = null;
  let stopped = false;
  const tick = async () => {
    if (stopped) return;
    if (!document.hidden) {
      try { await fn(); } catch (error) { showError(error); }
    }
    timer = setTimeout(tick, ms);
  };
  tick();
  return () => { stopped = true; clearTimeout(timer); };
}

const SVG = 'http://www.w3.org/2000/svg';

function s(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * An inline SVG chart of `series` ([{label, values, kind: 'line'|'bar'}]) over `labels` (x axis, e.g. minutes).
 * Null values leave gaps. The y axis runs from 0 to the largest value, labelled with `format`.
 */
export function chart(series, labels, { format = (v) => String(v), height = 140 } = {}) {
  const width = 560;
  const pad = { left: 56, right: 8, top: 10, bottom: 22 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const all = series.flatMap((one) => one.values.filter((v) => v !== null && v !== undefined));
  const max = Math.max(1, ...all); // counts and milliseconds: an empty chart still has a sane axis
  const n = Math.max(1, labels.length);
  const x = (i) => pad.left + (plotW * (i + 0.5)) / n;
  const y = (v) => pad.top + plotH - (plotH * v) / max;
  const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img' });
  for (const frac of [0, 0.5, 1]) {
    const value = max * frac;
    svg.append(s('line', { x1: pad.left, x2: width - pad.right, y1: y(value), y2: y(value), class: 'grid' }));
    svg.append(s('text', { x: pad.left - 6, y: y(value) + 4, 'text-anchor': 'end', class: 'axis' },
      all.length ? format(value) : ''));
  }
  for (const i of [0, Math.floor((n - 1) / 2), n - 1]) {
    if (labels[i]) svg.append(s('text', { x: x(i), y: height - 6, 'text-anchor': 'middle', class: 'axis' }, labels[i]));
  }
  series.forEach((one, index) => {
    const cls = `series s${index}`;
    if (one.kind === 'bar') {
      const barW = Math.max(1, plotW / n - 2);
      one.values.forEach((v, i) => {
        if (!v) return;
        const bar = s('rect', { x: x(i) - barW / 2, y: y(v), width: barW, height: pad.top + plotH - y(v), class: cls });
        bar.append(s('title', {}, `${labels[i]}: ${format(v)}`));
        svg.append(bar);
      });
      return;
    }
    let path = '';
    one.values.forEach((v, i) => {
      if (v === null || v === undefined) return;
      const prev = one.values[i - 1];
      const next = one.values[i + 1];
      path += `${prev === null || prev === undefined ? 'M' : 'L'}${x(i).toFixed(1)},${y(v).toFixed(1)} `;
      if (v && (prev == null || next == null || n <= 30)) { // a dot where a line alone would not show the point
        const dot = s('circle', { cx: x(i), cy: y(v), r: 2.2, class: cls });
        dot.append(s('title', {}, `${one.label} ${labels[i]}: ${format(v)}`));
        svg.append(dot);
      }
    });
    if (path) svg.append(s('path', { d: path, class: cls, fill: 'none' }));
  });
  const legend = h('div', { class: 'legend' },
    series.map((one, index) => h('span', { class: `key s${index}` }, one.label)));
  return h('figure', { class: 'chart-box' }, svg, legend);
}

/** Every console page except the sign-in page calls this first. */
export function requireSignIn() {
  if (!adminKey()) {
    toLogin();
    return false;
  }
  $('#signout')?.addEventListener('click', signOut);
  return true;
}
