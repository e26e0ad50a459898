// The operator console: sign in with a key and secret, then read the account, page and filter the
// records and send a test message, all through the public JSON API.
//
// The secret lives in this script's memory and in sessionStorage (this tab only, gone when it is
// closed); never in localStorage or a cookie. Everything the API returns is written with
// textContent, never as HTML. Every API error is shown next to what the person did.
'use strict';

(() => {
  const STORAGE_KEY = 'smsedge.console.credentials';
  const STATUS_LABELS = { pending: '待确认', success: '成功', failed: '失败' };
  const VERIFICATION_LABELS = { approved: '已认证', pending: '审核中', rejected: '未通过' };

  const $ = (id) => document.getElementById(id);
  const ZONE = document.getElementById('main').dataset.timezone;
  const state = { key: null, secret: null, page: 1, total: 0, query: {} };

  const {
    request, describe, showError, clearError, reported, cell, fillTable, showPage, busy, yuan,
  } = window.SmsEdge; // pages.js
  const timeCell = (text) => window.SmsEdge.timeCell(text, ZONE);

  // --- the API -------------------------------------------------------------------------------

  function api(path, { method = 'GET', query = {}, body } = {}) {
    const headers = { 'X-API-Key': state.key, 'X-API-Secret': state.secret };
    return request(path, { method, query, body, headers });
  }

  // --- showing things ------------------------------------------------------------------------

  function statusCell(status) {
    const td = document.createElement('td');
    const badge = document.createElement('span');
    badge.className = `status-badge status-${status}`;
    badge.textContent = STATUS_LABELS[status] || status;
    badge.title = status;
    td.appendChild(badge);
    return td;
  }

  function recordRow(record) {
    const row = document.createElement('tr');
    row.dataset.status = record.status;
    row.append(
      cell(record.id), cell(record.phone), cell(record.template_id), statusCell(record.status),
      cell(record.provider), timeCell(record.created_at), cell(record.error || '', 'error-text'),
    );
    return row;
  }

  function renderRecords(data) {
    fillTable($('records'), data.records, recordRow, '暂无记录');
    state.page = data.page;
    state.total = data.total;
    showPage(data, { info: $('page-info'), prev: $('prev-page'), next: $('next-page') });
  }

  function renderAccount(data) {
    $('balance').textContent = yuan(data.balance);
    $('total_sent').textContent = String(data.total_sent);
    $('today_sent').textContent = String(data.today_sent);
    const status = data.verification_status;
    $('verification_status').textContent = `${VERIFICATION_LABELS[status] || status}(${status})`;
  }

  // --- loading -------------------------------------------------------------------------------

  async function loadAccount() {
    const payload = await api('/api/account/info');
    renderAccount(payload.data);
  }

  async function refreshAccount() {
    await reported($('account-error'), loadAccount);
  }

  async function loadRecords(page) {
    const table = $('records');
    table.setAttribute('aria-busy', 'true');
    await reported($('records-error'), async () => {
      const payload = await api('/api/sms/records', { query: { ...state.query, page } });
      renderRecords(payload.data);
    });
    table.setAttribute('aria-busy', 'false');
  }

  function readFilters() {
    const form = $('filters');
    const value = (name) => form.elements[name].value.trim();
    state.query = {
      status: value('status'), start_time: value('start_time'), end_time: value('end_time'),
      per_page: value('per_page'),
    };
  }

  // --- signing in and out --------------------------------------------------------------------

  function showDashboard(signedIn) {
    $('signin-panel').hidden = signedIn;
    $('dashboard').hidden = !signedIn;
  }

  async function signIn(key, secret, { moveFocus = true } = {}) {
    state.key = key;
    state.secret = secret;
    try {
      await loadAccount();
    } catch (error) {
      forget();
      throw error;
    }
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify({ key, secret }));
    $('current-key').textContent = key;
    $('api_secret').value = '';
    clearError($('signin-error'));
    showDashboard(true);
    // The form that had focus is gone: take the reader to what they signed in for.
    if (moveFocus) $('account-title').focus();
    readFilters();
    await loadRecords(1);
  }

  function forget() {
    state.key = null;
    state.secret = null;
    sessionStorage.removeItem(STORAGE_KEY);
  }

  function signOut() {
    forget();
    $('records').querySelector('tbody').replaceChildren();
    for (const id of ['balance', 'total_sent', 'today_sent', 'verification_status']) $(id).textContent = '—';
    $('send-result').hidden = true;
    showDashboard(false);
    $('api_key').focus();
  }

  // --- test send -----------------------------------------------------------------------------

  function sendBody(form) {
    const body = { phone: form.elements.phone.value.trim(), template_id: form.elements.template_id.value.trim() };
    const rawParams = form.elements.params.value.trim();
    if (rawParams) {
      let params;
      try {
        params = JSON.parse(rawParams);
      } catch (error) {
        throw new Error('模板参数必须是合法的 JSON 对象,例如 {"code": "1234"}');
      }
      if (params === null || typeof params !== 'object' || Array.isArray(params)) {
        throw new Error('模板参数必须是 JSON 对象,例如 {"code": "1234"}');
      }
      body.params = params;
    }
    if (form.elements.provider.value) body.provider = form.elements.provider.value;
    return body;
  }

  async function testSend(form) {
    const result = $('send-result');
    let body;
    try {
      body = sendBody(form);
    } catch (error) {
      result.className = 'result error';
      result.textContent = error.message;
      result.hidden = false;
      return; // nothing was sent: nothing to refresh
    }
    await busy($('send-submit'), async () => {
      try {
        const payload = await api('/api/sms/send', { method: 'POST', body });
        const data = payload.data;
        result.className = 'result success';
        result.textContent = `${payload.message}:${data.phone} · 服务商 ${data.provider || '默认'} · message_id ${data.message_id}`;
        form.elements.phone.value = ''; // the full number is not kept on screen
      } catch (error) {
        result.className = 'result error';
        result.textContent = describe(error);
      } finally {
        result.hidden = false;
      }
      await Promise.all([refreshAccount(), loadRecords(1)]);
    });
  }

  // --- wiring --------------------------------------------------------------------------------

  function bind() {
    $('signin-form').addEventListener('submit', async (event) => {
      event.preventDefault();
      const form = event.currentTarget;
      const key = form.elements.api_key.value.trim();
      const secret = form.elements.api_secret.value;
      if (!key || !secret) {
        showError($('signin-error'), new Error('请输入 API Key 和 API Secret'));
        return;
      }
      try {
        await signIn(key, secret);
      } catch (error) {
        showError($('signin-error'), error);
      }
    });
    $('signout').addEventListener('click', signOut);
    $('filters').addEventListener('submit', (event) => {
      event.preventDefault();
      readFilters();
      loadRecords(1);
    });
    $('filters').addEventListener('reset', () => {
      // After the browser has put the fields back to their defaults.
      setTimeout(() => { readFilters(); loadRecords(1); }, 0);
    });
    $('prev-page').addEventListener('click', () => loadRecords(Math.max(1, state.page - 1)));
    $('next-page').addEventListener('click', () => loadRecords(state.page + 1));
    $('send-form').addEventListener('submit', (event) => {
      event.preventDefault();
      testSend(event.currentTarget);
    });
  }

  async function resume() {
    let saved = null;
    try {
      saved = JSON.parse(sessionStorage.getItem(STORAGE_KEY) || 'null');
    } catch (error) {
      saved = null;
    }
    if (!saved || !saved.key || !saved.secret) return;
    $('api_key').value = saved.key;
    try {
      await signIn(saved.key, saved.secret, { moveFocus: false }); // a reload keeps the browser's focus
    } catch (error) {
      showError($('signin-error'), error);
    }
  }

  bind();
  resume();
})();
