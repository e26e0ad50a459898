// What the tenant console (console.js) and the admin console (admin.js) share: calling the JSON
// API and saying what went wrong, table cells written as text, times shown with their zone, and
// copying text. Loaded before them; it only defines window.SmsEdge and touches nothing on the page.
'use strict';

window.SmsEdge = (() => {
  class ApiError extends Error {
    constructor(message, code, status, requestId) {
      super(message);
      this.code = code;
      this.status = status;
      this.requestId = requestId;
    }
  }

  // What the page itself refuses before asking the API (an empty field, say): shown as it reads.
  class FormError extends Error {}

  // One call to the gateway's JSON API: the parsed `{success: true, …}` envelope, or an ApiError
  // with the API's message and code (or a network error in Chinese, not fetch's English).
  async function request(path, { method = 'GET', query = {}, body, headers = {} } = {}) {
    const url = new URL(path, window.location.origin);
    for (const [name, value] of Object.entries(query)) {
      if (value !== '' && value !== null && value !== undefined) url.searchParams.set(name, value);
    }
    const sent = { Accept: 'application/json', ...headers };
    if (body !== undefined) sent['Content-Type'] = 'application/json';
    let response;
    try {
      response = await fetch(url, {
        method, headers: sent, cache: 'no-store', credentials: 'omit',
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      throw new ApiError('网络错误:无法连接到网关,请检查网络后重试', 'NETWORK_ERROR', 0, null);
    }
    let payload = null;
    try {
      payload = await response.json();
    } catch (error) {
      payload = null; // not JSON: described by the status below
    }
    if (response.ok && payload && payload.success === true) return payload;
    const requestId = (payload && payload.request_id) || response.headers.get('X-Request-ID');
    let message = (payload && payload.message) || `请求失败(HTTP ${response.status})`;
    const retryAfter = response.headers.get('Retry-After');
    // The gateway's per-number window says when already; only a message that does not gets the hint.
    if (retryAfter && !message.includes('秒后重试')) message += `(请 ${retryAfter} 秒后重试)`;
    throw new ApiError(message, (payload && payload.code) || `HTTP_${response.status}`, response.status,
      requestId);
  }

  function describe(error) {
    if (error instanceof FormError) return error.message;
    if (!(error instanceof ApiError)) return `页面错误:${error.message}`;
    const parts = [error.message];
    if (error.code) parts.push(`[${error.code}]`);
    if (error.requestId) parts.push(`请求 ID ${error.requestId}`);
    return parts.join(' ');
  }

  function showError(element, error) {
    element.textContent = describe(error);
    element.hidden = false;
  }

  function clearError(element) {
    element.textContent = '';
    element.hidden = true;
  }

  // Runs `work`; what it throws is shown in `element` (an alert), which a success clears.
  async function reported(element, work) {
    try {
      await work();
      clearError(element);
    } catch (error) {
      showError(element, error);
    }
  }

  function cell(text, className) {
    const td = document.createElement('td');
    td.textContent = text === null || text === undefined ? '' : String(text);
    if (className) td.className = className;
    return td;
  }

  // A table's body from `items`, one <tr> each from `toRow`; `emptyText` across every column if none.
  function fillTable(table, items, toRow, emptyText) {
    const tbody = table.querySelector('tbody');
    tbody.replaceChildren(...items.map(toRow));
    if (items.length > 0) return;
    const row = document.createElement('tr');
    const empty = cell(emptyText, 'empty');
    empty.colSpan = table.querySelectorAll('thead th').length;
    row.appendChild(empty);
    tbody.appendChild(row);
  }

  // A pager (see the `pager` macro) showing one page of `{page, per_page, total}`.
  function showPage(data, { info, prev, next }) {
    const pages = Math.max(1, Math.ceil(data.total / data.per_page));
    info.textContent = `第 ${data.page} / ${pages} 页 · 共 ${data.total} 条`;
    prev.disabled = data.page <= 1;
    next.disabled = data.page >= pages;
  }

  // Yuan as every page shows money, like gateway.money.yuan_text on the server: two decimals, the
  // third only when the amount has one (a price of 0.045), never rounded away. 1.5 → "1.50".
  function yuan(value) {
    const milli = Math.round(Number(value) * 1000);
    if (!Number.isFinite(milli)) return '—';
    const whole = Math.floor(Math.abs(milli) / 1000);
    const part = String(Math.abs(milli) % 1000).padStart(3, '0');
    return `${milli < 0 ? '-' : ''}${whole}.${milli % 10 === 0 ? part.slice(0, 2) : part}`;
  }

  const pad = (n) => String(n).padStart(2, '0');

  // "2026-11-30 16:50:12", a wall time in `zone` → its UTC offset then ("+08:00"), or null.
  function offsetAt(text, zone) {
    const [date, time] = text.split(' ');
    const wall = Date.parse(`${date}T${time}Z`);
    if (Number.isNaN(wall)) return null;
    let offset = 0;
    for (let i = 0; i < 2; i += 1) { // the offset at (wall time − offset): twice settles DST edges
      const name = new Intl.DateTimeFormat('en-US', { timeZone: zone, timeZoneName: 'longOffset' })
        .formatToParts(new Date(wall - offset)).find((part) => part.type === 'timeZoneName').value;
      const match = /GMT([+-])(\d{2}):(\d{2})/.exec(name);
      const sign = match && match[1] === '-' ? -1 : 1;
      offset = match ? sign * (Number(match[2]) * 60 + Number(match[3])) * 60000 : 0;
    }
    const minutes = Math.abs(offset) / 60000;
    return `${offset < 0 ? '-' : '+'}${pad(Math.floor(minutes / 60))}:${pad(minutes % 60)}`;
  }

  // A <time> reading "2026-11-30 16:50:12 +08:00" whose datetime is the exact instant; `text` is a
  // wall time in `zone` or an ISO 8601 time with its offset. Anything else: the text as it came.
  function zonedTime(text, zone) {
    const iso = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.\d+)?([+-]\d\d:\d\d|Z)$/.exec(text || '');
    let wall = text;
    let offset = null;
    if (iso) {
      wall = `${iso[1]} ${iso[2]}`;
      offset = iso[3] === 'Z' ? '+00:00' : iso[3];
    } else if (text) {
      offset = offsetAt(text, zone);
    }
    if (!offset) return document.createTextNode(text || '');
    const time = document.createElement('time');
    time.dateTime = `${wall.replace(' ', 'T')}${offset}`;
    time.textContent = `${wall} ${offset}`;
    if (zone) time.title = zone;
    return time;
  }

  function timeCell(text, zone) {
    const td = document.createElement('td');
    td.appendChild(zonedTime(text, zone));
    return td;
  }

  // The clipboard where the browser offers it (https, localhost); else the old copy command on a
  // selection of `element`, left selected so Ctrl+C still works. Resolves to what the page should say.
  async function copyText(text, element) {
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(text);
        return '已复制';
      } catch (error) {
        // refused (no permission, no focus): fall back to the selection below
      }
    }
    const range = document.createRange();
    range.selectNodeContents(element);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    let copied = false;
    try {
      copied = document.execCommand('copy');
    } catch (error) {
      copied = false;
    }
    return copied ? '已复制' : '已选中,请按 Ctrl+C 复制';
  }

  // While its request is out a button says so (aria-disabled, not disabled: a disabled button
  // drops the keyboard's focus to <body>). `work` does not run again meanwhile when `once`.
  async function busy(button, work, { once = true } = {}) {
    if (once && button.getAttribute('aria-disabled') === 'true') return;
    button.setAttribute('aria-disabled', 'true');
    try {
      await work();
    } finally {
      button.removeAttribute('aria-disabled');
    }
  }

  return {
    ApiError, FormError, request, describe, showError, clearError, reported, cell, fillTable, showPage, zonedTime, timeCell,
    copyText, busy, yuan,
  };
})();
