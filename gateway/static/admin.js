// The admin console: sign in with an admin token, then manage accounts (create, top up, limits,
// providers, verification, disable, rotate a secret), look a message up and read the audit log,
// all through /admin/api.
//
// The token lives in this script's memory and in sessionStorage (this tab only); never in
// localStorage or a cookie. A one-time secret is shown once, in the marked box, and forgotten when
// the box is closed or the next action starts. Everything the API returns is written as text.
'use strict';

(() => {
  const STORAGE_KEY = 'smsedge.admin.token';
  const API = '/admin/api';
  const AUDIT_PER_PAGE = 20;
  const STATUS_LABELS = { pending: '待确认', success: '成功', failed: '失败' };
  const VERIFICATION_LABELS = { approved: '已认证', pending: '审核中', rejected: '未通过' };
  const ACTION_LABELS = {
    create: '创建', topup: '充值', update: '修改', disable: '禁用', enable: '启用', 'rotate-secret': '轮换 Secret', 'callback-secret': '轮换回调密钥', 'callback-replay': '重发回调',
  };
  const FIELD_LABELS = {
    balance: '余额', verification_status: '实名认证', disabled: '已禁用', ratelimit: '限流', providers: '服务商',
    name: '名称', api_key: 'API Key', total_sent: '累计发送',
  };

  const $ = (id) => document.getElementById(id);
  const ZONE = $('main').dataset.timezone;
  const {
    FormError, request, showError, clearError, reported, cell, fillTable, showPage, zonedTime, copyText, busy, yuan,
  } = window.SmsEdge; // pages.js
  const state = { token: null, accounts: [], selected: null, auditPage: 1, topUpKey: null };

  // A call to /admin/api with the token. A token refused once signed in (retired by a reload of
  // the config) signs the page out, saying why at the sign-in form; the caller still gets the error.
  async function api(path, { method = 'GET', query, body, headers = {} } = {}) {
    try {
      return await request(`${API}${path}`, {
        method, query, body, headers: { ...headers, Authorization: `Bearer ${state.token}` },
      });
    } catch (error) {
      if (error.status === 401 && !$('workspace').hidden) {
        signOut();
        showError($('signin-error'), error);
      }
      throw error;
    }
  }

  const accountPath = (key) => `/accounts/${encodeURIComponent(key)}`;
  const findAccount = (key) => state.accounts.find((account) => account.api_key === key) || null;

  // A new Idempotency-Key: crypto.randomUUID where the browser has it (https, localhost).
  function newKey() {
    if (window.crypto && typeof crypto.randomUUID === 'function') return crypto.randomUUID();
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
  }

  // --- showing accounts ----------------------------------------------------------------------

  const limitText = (limit) => (limit ? `${limit.rate}/秒,突发 ${limit.burst}` : '默认');
  const providersText = (providers) => (providers.length ? providers.join(', ') : '全部');
  const verificationText = (status) => `${VERIFICATION_LABELS[status] || status}(${status})`;

  function stateCell(disabled) {
    const td = document.createElement('td');
    const pill = document.createElement('span');
    pill.className = `pill ${disabled ? 'bad' : 'ok'}`;
    pill.textContent = disabled ? '已禁用' : '正常';
    td.appendChild(pill);
    return td;
  }

  function actionCell(account) {
    const td = document.createElement('td');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'manage';
    button.dataset.key = account.api_key;
    button.textContent = '管理';
    button.setAttribute('aria-label', `管理账户 ${account.name}`);
    td.appendChild(button);
    return td;
  }

  function matches(account, needle) {
    if (!needle) return true;
    return account.name.toLowerCase().includes(needle) || account.api_key.toLowerCase().includes(needle);
  }

  function accountRow(account) {
    const row = document.createElement('tr');
    row.dataset.key = account.api_key;
    row.append(
      cell(account.name), cell(account.api_key, 'key'), cell(yuan(account.balance), 'num'),
      cell(verificationText(account.verification_status)), stateCell(account.disabled),
      cell(limitText(account.ratelimit)), cell(providersText(account.providers)),
      cell(account.total_sent, 'num'), actionCell(account),
    );
    return row;
  }

  function renderAccounts() {
    const needle = $('account-search').value.trim().toLowerCase();
    const shown = state.accounts.filter((account) => matches(account, needle));
    fillTable($('accounts'), shown, accountRow, state.accounts.length ? '没有匹配的账户' : '暂无账户');
    const total = state.accounts.length;
    $('accounts-count').textContent = needle ? `显示 ${shown.length} / ${total} 个账户` : `共 ${total} 个账户`;
  }

  async function loadAccounts() {
    const payload = await api('/accounts');
    state.accounts = payload.data.accounts;
    renderAccounts();
    if (state.selected && findAccount(state.selected)) fillPanel(findAccount(state.selected));
  }

  const reloadAccounts = () => reported($('accounts-error'), loadAccounts);

  function replaceAccount(account) {
    const index = state.accounts.findIndex((known) => known.api_key === account.api_key);
    if (index >= 0) state.accounts[index] = account;
    else state.accounts.push(account);
    renderAccounts();
    if (state.selected === account.api_key) fillPanel(account);
  }

  // --- the one-time secret -------------------------------------------------------------------

  function showSecret(key, secret) {
    $('secret-key').textContent = key;
    $('secret-value').textContent = secret;
    $('secret-copied').textContent = '';
    $('secret-box').hidden = false;
    $('secret-title').focus();
  }

  function hideSecret() {
    $('secret-box').hidden = true;
    $('secret-key').textContent = '';
    $('secret-value').textContent = ''; // gone from the page, not only from sight
    $('secret-copied').textContent = '';
  }

  // --- the manage panel ----------------------------------------------------------------------

  function setProviders(form, chosen) {
    for (const box of form.querySelectorAll('input[name="providers"]')) box.checked = chosen.includes(box.value);
  }

  const checkedProviders = (form) => Array.from(form.querySelectorAll('input[name="providers"]:checked'),
    (box) => box.value);

  function fillPanel(account) {
    $('manage-title').textContent = `管理账户:${account.name}`;
    $('manage-key').textContent = account.api_key;
    const form = $('settings-form');
    form.elements.verification_status.value = account.verification_status;
    form.elements.default_limit.checked = !account.ratelimit;
    form.elements.rate.value = account.ratelimit ? account.ratelimit.rate : '';
    form.elements.burst.value = account.ratelimit ? account.ratelimit.burst : '';
    syncLimitFields();
    setProviders(form, account.providers);
    $('toggle-disabled').textContent = account.disabled ? '启用账户' : '禁用账户';
  }

  function syncLimitFields() {
    const form = $('settings-form');
    const byDefault = form.elements.default_limit.checked;
    form.elements.rate.disabled = byDefault;
    form.elements.burst.disabled = byDefault;
  }

  function openPanel(key) {
    const account = findAccount(key);
    if (!account) return;
    hideSecret();
    state.selected = key;
    state.topUpKey = null;
    $('topup-form').reset();
    $('rotate-confirm').hidden = true;
    clearError($('manage-error'));
    $('manage-result').hidden = true;
    fillPanel(account);
    $('manage-panel').hidden = false;
    $('manage-title').focus();
  }

  function closePanel() {
    const key = state.selected;
    state.selected = null;
    $('manage-panel').hidden = true;
    const button = key && document.querySelector(`#accounts button.manage[data-key="${CSS.escape(key)}"]`);
    (button || $('accounts-title')).focus(); // back where the person came from
  }

  function said(text) {
    const result = $('manage-result');
    result.className = 'result success';
    result.textContent = text;
    result.hidden = false;
    clearError($('manage-error'));
  }

  // Runs one change of the selected account; the panel says how it went, the audit log reloads.
  async function change(button, work, options) {
    hideSecret();
    $('manage-result').hidden = true;
    await busy(button, async () => {
      try {
        await work(state.selected);
        loadAudit(1);
      } catch (error) {
        showError($('manage-error'), error);
      }
    }, options);
  }

  // --- reading the forms ---------------------------------------------------------------------

  function number(text, label) {
    const value = Number(text);
    if (text === '' || !Number.isFinite(value)) throw new FormError(`${label}必须是数字`);
    return value;
  }

  // Money as the gateway takes it: at most 3 decimals. Checked on the text, since a float would
  // round 1.00000000000000001 to 1 on its way out; such a number is sent exactly (shortest form).
  function yuanAmount(text, label) {
    const value = number(text, label);
    if (!/^[0-9]+(\.[0-9]{1,3})?$/.test(text)) throw new FormError(`${label}最多 3 位小数,且不能为负数`);
    return value;
  }

  // Rate and burst: both (a limit of the account's own) or neither (the config's default).
  function readLimit(form) {
    const rate = form.elements.rate.value.trim();
    const burst = form.elements.burst.value.trim();
    if (!rate && !burst) return null;
    if (!rate || !burst) throw new FormError('速率和突发容量要么都填,要么都不填');
    return { rate: number(rate, '速率'), burst: number(burst, '突发容量') };
  }

  function settingsChanges(form, account) {
    const changes = {};
    if (form.elements.verification_status.value !== account.verification_status) {
      changes.verification_status = form.elements.verification_status.value;
    }
    const limit = form.elements.default_limit.checked ? null : readLimit(form);
    if (JSON.stringify(limit) !== JSON.stringify(account.ratelimit)) changes.ratelimit = limit;
    const providers = checkedProviders(form);
    if (JSON.stringify(providers) !== JSON.stringify(account.providers)) changes.providers = providers;
    return changes;
  }

  function createBody(form) {
    const name = form.elements.name.value.trim();
    if (!name) throw new FormError('请输入账户名称');
    const balance = form.elements.balance.value.trim();
    const body = {
      name, balance: balance ? yuanAmount(balance, '初始余额') : 0,
      verification_status: form.elements.verification_status.value, providers: checkedProviders(form),
    };
    const limit = readLimit(form);
    if (limit) body.ratelimit = limit;
    return body;
  }

  // --- the actions ---------------------------------------------------------------------------

  async function topUp(form) {
    const amount = form.elements.amount.value.trim();
    const reason = form.elements.reason.value.trim();
    if (!amount || !reason) {
      hideSecret();
      showError($('manage-error'), new FormError('请填写充值金额和原因'));
      return;
    }
    // One key per filled-in form: a second submit of the same form (a double click, a retry after
    // a lost answer) is the same top-up, which the gateway credits once and answers again.
    if (!state.topUpKey) state.topUpKey = newKey();
    const used = state.topUpKey;
    await change($('topup-submit'), async (key) => {
      const body = { amount: yuanAmount(amount, '金额'), reason };
      const payload = await api(`${accountPath(key)}/topup`, {
        method: 'POST', body, headers: { 'Idempotency-Key': used },
      });
      replaceAccount(payload.data);
      if (state.topUpKey === used) { // not a form filled in again meanwhile
        form.reset();
        state.topUpKey = null;
      }
      said(`已充值 ${yuan(body.amount)} 元,当前余额 ${yuan(payload.data.balance)} 元`);
    }, { once: false }); // the key, not the page, makes a second submit harmless
  }

  async function saveSettings(form) {
    await change($('settings-submit'), async (key) => {
      const changes = settingsChanges(form, findAccount(key));
      if (Object.keys(changes).length === 0) {
        said('没有需要保存的修改');
        return;
      }
      const payload = await api(accountPath(key), { method: 'PATCH', body: changes });
      replaceAccount(payload.data);
      said('设置已保存');
    });
  }

  async function toggleDisabled() {
    await change($('toggle-disabled'), async (key) => {
      const disabled = !findAccount(key).disabled;
      const payload = await api(accountPath(key), { method: 'PATCH', body: { disabled } });
      replaceAccount(payload.data);
      said(disabled ? '账户已禁用:它的请求将被拒绝(ACCOUNT_DISABLED)' : '账户已启用');
    });
  }

  async function rotate() {
    $('rotate').focus(); // the confirmation goes away: focus stays in the panel
    $('rotate-confirm').hidden = true;
    await change($('rotate'), async (key) => {
      const payload = await api(`${accountPath(key)}/rotate-secret`, { method: 'POST' });
      said('Secret 已轮换,旧的 Secret 已失效');
      showSecret(payload.data.api_key, payload.data.api_secret);
    });
  }

  async function create(form) {
    hideSecret();
    await busy($('create-submit'), async () => {
      try {
        const payload = await api('/accounts', { method: 'POST', body: createBody(form) });
        const { api_secret: secret, ...account } = payload.data;
        form.reset();
        clearError($('create-error'));
        replaceAccount(account);
        loadAudit(1);
        showSecret(account.api_key, secret);
      } catch (error) {
        showError($('create-error'), error);
      }
    });
  }

  // --- message lookup ------------------------------------------------------------------------

  function entry(list, term, value) {
    const wrap = document.createElement('div');
    const dt = document.createElement('dt');
    const dd = document.createElement('dd');
    dt.textContent = term;
    if (value instanceof Node) dd.appendChild(value);
    else dd.textContent = value === null || value === undefined ? '—' : String(value);
    wrap.append(dt, dd);
    list.appendChild(wrap);
  }

  function renderMessage(data) {
    const list = $('lookup-record');
    const record = data.record;
    list.replaceChildren();
    entry(list, '账户', data.account.name);
    entry(list, 'API Key', data.account.api_key);
    entry(list, 'message_id', record.message_id);
    entry(list, '记录 ID', record.id);
    entry(list, '手机号', record.phone);
    entry(list, '模板', record.template_id);
    entry(list, '服务商', record.provider);
    entry(list, '状态', `${STATUS_LABELS[record.status] || record.status}(${record.status})`);
    entry(list, '价格(元)', yuan(record.price));
    entry(list, '发送时间', zonedTime(record.created_at, ZONE));
    entry(list, '更新时间', zonedTime(record.updated_at, ZONE));
    if (record.error) entry(list, '失败原因', record.error);
    list.hidden = false;
    $('lookup-summary').textContent = `找到消息 ${record.message_id},属于账户 ${data.account.name}`;
  }

  async function lookUp(form) {
    hideSecret();
    const id = form.elements.message_id.value.trim();
    $('lookup-record').hidden = true;
    $('lookup-summary').textContent = '';
    if (!id) {
      showError($('lookup-error'), new FormError('请输入 message_id'));
      return;
    }
    await reported($('lookup-error'), async () => {
      renderMessage((await api(`/messages/${encodeURIComponent(id)}`)).data);
    });
  }

  // --- the audit log -------------------------------------------------------------------------

  // A field's value as the accounts table shows it ("5/秒,突发 10", "全部", "是", "1.50").
  function valueText(field, value) {
    if (value === undefined) return '—';
    if (field === 'balance') return yuan(value);
    if (field === 'ratelimit') return limitText(value);
    if (field === 'providers') return providersText(value);
    if (field === 'verification_status') return verificationText(value);
    if (typeof value === 'boolean') return value ? '是' : '否';
    return typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value);
  }

  // One line a changed field: "余额: 1.50 → 2.50"; a create has only the values it set.
  function changeText(before, after) {
    const was = before || {};
    const now = after || {};
    const fields = [...new Set([...Object.keys(was), ...Object.keys(now)])];
    const created = Object.keys(was).length === 0;
    return fields.map((field) => {
      const label = FIELD_LABELS[field] || field;
      if (created) return `${label}: ${valueText(field, now[field])}`;
      return `${label}: ${valueText(field, was[field])} → ${valueText(field, now[field])}`;
    }).join('\n');
  }

  function auditRow(item) {
    const row = document.createElement('tr');
    row.dataset.action = item.action;
    const time = document.createElement('td');
    time.appendChild(zonedTime(item.time, ZONE));
    row.append(
      time, cell(item.actor, 'nowrap'), cell(ACTION_LABELS[item.action] || item.action, 'nowrap'),
      cell(`${item.account.name}\n${item.account.api_key}`, 'lines'),
      cell(changeText(item.before, item.after), 'lines changes'), cell(item.reason || '', 'reason'),
    );
    return row;
  }

  function renderAudit(data) {
    fillTable($('audit'), data.entries, auditRow, '暂无审计记录');
    state.auditPage = data.page;
    showPage(data, { info: $('audit-info'), prev: $('audit-prev'), next: $('audit-next') });
  }

  function loadAudit(page) {
    return reported($('audit-error'), async () => {
      const payload = await api('/audit', { query: { page, per_page: AUDIT_PER_PAGE } });
      renderAudit(payload.data);
    });
  }

  // --- signing in and out --------------------------------------------------------------------

  function showWorkspace(signedIn) {
    $('signin-panel').hidden = signedIn;
    $('workspace').hidden = !signedIn;
  }

  async function signIn(token, { moveFocus = true } = {}) {
    clearWorkspace();
    state.token = token;
    await loadAccounts().catch((error) => {
      forget(); // a refused token is not kept
      throw error;
    });
    sessionStorage.setItem(STORAGE_KEY, token);
    $('admin_token').value = '';
    clearError($('signin-error'));
    showWorkspace(true);
    if (moveFocus) $('accounts-title').focus(); // the form that had focus is gone
    await loadAudit(1);
  }

  function forget() {
    state.token = null;
    sessionStorage.removeItem(STORAGE_KEY);
  }

  // Nothing of the last session left in the (hidden) workspace: no data, no message.
  function clearWorkspace() {
    hideSecret();
    state.accounts = [];
    state.selected = null;
    $('manage-panel').hidden = true;
    $('accounts').querySelector('tbody').replaceChildren();
    $('audit').querySelector('tbody').replaceChildren();
    $('lookup-record').replaceChildren();
    $('lookup-record').hidden = true;
    $('lookup-summary').textContent = '';
    for (const id of ['accounts-error', 'manage-error', 'create-error', 'lookup-error', 'audit-error']) {
      clearError($(id));
    }
    $('manage-result').hidden = true;
    for (const id of ['search-form', 'create-form', 'topup-form', 'lookup-form']) $(id).reset();
    state.topUpKey = null;
  }

  function signOut() {
    forget();
    clearWorkspace();
    showWorkspace(false);
    $('admin_token').focus();
  }

  // --- wiring --------------------------------------------------------------------------------

  function onSubmit(id, handler) {
    $(id).addEventListener('submit', (event) => {
      event.preventDefault();
      handler(event.currentTarget).catch((error) => showError($('manage-error'), error));
    });
  }

  function bind() {
    onSubmit('signin-form', async (form) => {
      const token = form.elements.admin_token.value.trim();
      if (!token) {
        showError($('signin-error'), new FormError('请输入管理令牌'));
        return;
      }
      try {
        await signIn(token);
      } catch (error) {
        showError($('signin-error'), error);
      }
    });
    $('signout').addEventListener('click', signOut);
    $('account-search').addEventListener('input', renderAccounts);
    $('search-form').addEventListener('submit', (event) => { event.preventDefault(); renderAccounts(); });
    $('accounts-reload').addEventListener('click', reloadAccounts);
    $('accounts').addEventListener('click', (event) => {
      const button = event.target.closest('button.manage');
      if (button) openPanel(button.dataset.key);
    });
    $('manage-close').addEventListener('click', closePanel);
    $('manage-panel').addEventListener('keydown', (event) => {
      if (event.key === 'Escape') closePanel();
    });
    $('topup-form').addEventListener('input', () => { state.topUpKey = null; }); // another top-up now
    onSubmit('topup-form', topUp);
    onSubmit('settings-form', saveSettings);
    $('settings-default-limit').addEventListener('change', syncLimitFields);
    $('toggle-disabled').addEventListener('click', toggleDisabled);
    $('rotate').addEventListener('click', () => {
      hideSecret();
      $('rotate-confirm').hidden = false;
      $('rotate-yes').focus();
    });
    $('rotate-yes').addEventListener('click', rotate);
    $('rotate-no').addEventListener('click', () => {
      $('rotate-confirm').hidden = true;
      $('rotate').focus();
    });
    onSubmit('create-form', create);
    onSubmit('lookup-form', lookUp);
    $('secret-copy').addEventListener('click', async () => {
      $('secret-copied').textContent = await copyText($('secret-value').textContent, $('secret-value'));
    });
    $('secret-dismiss').addEventListener('click', () => {
      hideSecret();
      $('accounts-title').focus();
    });
    $('audit-reload').addEventListener('click', () => loadAudit(state.auditPage));
    $('audit-prev').addEventListener('click', () => loadAudit(Math.max(1, state.auditPage - 1)));
    $('audit-next').addEventListener('click', () => loadAudit(state.auditPage + 1));
  }

  async function resume() {
    const saved = sessionStorage.getItem(STORAGE_KEY);
    if (!saved) return;
    try {
      await signIn(saved, { moveFocus: false }); // a reload keeps the browser's focus
    } catch (error) {
      showError($('signin-error'), error);
    }
  }

  bind();
  resume();
})();
