// The status page's figures, refreshed in place from /status.json every 30 s (never by reloading
// the page: a reload would take a reader's focus and place away, WCAG 2.2.1). A pause button stops
// it; the "updated at" line is a polite live region. Every text comes formatted from the server and
// is written with textContent. `?refresh=N` on the page's address sets another interval (seconds).
'use strict';

(() => {
  const SVG = 'http://www.w3.org/2000/svg';
  const main = document.getElementById('main');
  const toggle = document.getElementById('refresh-toggle');
  const $ = (id) => document.getElementById(id);
  const requested = Number(new URLSearchParams(window.location.search).get('refresh'));
  const seconds = requested >= 1 ? requested : Number(main.dataset.refreshSeconds) || 30;
  const PAUSED = ';自动刷新已暂停';
  let timer = null;

  const paused = () => toggle.getAttribute('aria-pressed') === 'true';

  function pill(ok, good, bad) {
    const span = document.createElement('span');
    span.className = `pill ${ok ? 'ok' : 'bad'}`;
    span.textContent = ok ? good : bad;
    return span;
  }

  function cell(text, className) {
    const td = document.createElement('td');
    td.textContent = String(text);
    if (className) td.className = className;
    return td;
  }

  function carrierRow(carrier) {
    const row = document.createElement('tr');
    row.dataset.carrier = carrier.name;
    const name = document.createElement('code');
    name.textContent = carrier.name;
    const first = document.createElement('td');
    first.appendChild(name);
    const circuit = document.createElement('td');
    circuit.className = 'circuit';
    circuit.appendChild(pill(!carrier.circuit_open, '闭合 (closed)', '断开 (open)'));
    // The template's column order: what a reader checks first (a phone shows only the first few).
    row.append(first, cell(carrier.success_rate, 'success-rate'), cell(carrier.avg, 'latency'), circuit,
      cell(carrier.p95, 'p95'), cell(carrier.calls, 'calls'), cell(carrier.last, 'last'), cell(carrier.role),
      cell(carrier.plugin));
    return row;
  }

  // What each route sent, by provider: "dear 1 · mid 2", or 0.
  function routeTaken(route) {
    const taken = document.querySelector(`#routes tr[data-route="${CSS.escape(route.name)}"] .taken`);
    if (!taken) return; // a reload changed the routes: the page shows them once reloaded
    const parts = Object.entries(route.taken).map(([provider, count], index) => {
      const span = document.createElement('span');
      span.dataset.provider = provider;
      span.textContent = `${provider} ${count}`;
      return index ? [' · ', span] : [span];
    }).flat();
    taken.replaceChildren(...(parts.length ? parts : ['0']));
  }

  function drawChart(chart) {
    const figure = $(`chart-${chart.key}`);
    if (!figure) return;
    figure.querySelector('path.series').setAttribute('d', chart.path);
    figure.querySelector('desc').textContent = chart.summary;
    const svg = figure.querySelector('svg');
    for (const old of svg.querySelectorAll('circle.point')) old.remove();
    for (const [x, y] of chart.points) {
      const point = document.createElementNS(SVG, 'circle');
      point.setAttribute('class', 'point');
      point.setAttribute('cx', x);
      point.setAttribute('cy', y);
      point.setAttribute('r', '2');
      svg.appendChild(point);
    }
    for (const name of ['latest', 'total', 'peak']) figure.querySelector(`.${name}`).textContent = chart[name];
  }

  function render(data) {
    const overall = $('overall');
    overall.className = `overall ${data.healthy ? 'ok' : 'bad'}`;
    overall.textContent = data.healthy ? '全部正常' : '部分异常';
    $('carriers').querySelector('tbody').replaceChildren(...data.carriers.map(carrierRow));
    data.routes.forEach(routeTaken);
    data.charts.forEach(drawChart);
    for (const [row, key] of [['store', 'store'], ['ratelimit', 'limiter']]) {
      const health = document.querySelector(`tr[data-dependency="${row}"] .health`);
      health.replaceChildren(pill(data[key].ok, '正常', '不可用'));
    }
    document.querySelector('tr[data-dependency="callbacks"] .queue').textContent = data.callbacks
      ? `待发送 ${data.callbacks.queue_depth} 条,最早 ${data.callbacks.oldest_age_seconds} 秒` : '未知';
    $('pid').textContent = String(data.pid); // with several workers, another process may have answered
    const updated = $('updated-at');
    updated.dateTime = data.updated.iso;
    updated.textContent = data.updated.text;
    note(paused() ? PAUSED : '');
  }

  // After the time: a failed update, or that updates are paused (in the live region: announced).
  function note(text, isError = false) {
    $('refresh-note').textContent = text;
    $('refresh-note').className = isError ? 'error' : '';
  }

  async function refresh() {
    try {
      const response = await fetch(main.dataset.source, {
        headers: { Accept: 'application/json' }, cache: 'no-store', credentials: 'omit',
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      render(await response.json());
    } catch (error) {
      const why = error instanceof TypeError ? '网络错误' : error.message; // fetch's own is English
      note(`;更新失败(${why}),${seconds} 秒后重试`, true);
    }
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      await refresh();
      if (!paused()) schedule();
    }, seconds * 1000);
  }

  toggle.addEventListener('click', () => {
    const pausing = !paused();
    toggle.setAttribute('aria-pressed', String(pausing));
    if (pausing) {
      clearTimeout(timer);
      timer = null;
      note(PAUSED);
    } else {
      refresh().then(schedule);
    }
  });
  toggle.hidden = false;
  schedule();
})();
