// nbconductor's widget front end: shows the HTML the kernel renders and adds behaviour.
//
// The kernel sends a view's HTML in the `html` trait (the same HTML as its static
// fallback). This module puts it on the page and adds what HTML alone cannot do:
// clocks that tick and countdowns (so the kernel sends nothing while time passes),
// local times, <details> and scroll positions kept across updates, clicks on
// elements marked data-nbc-action (sent back as {action, value} messages), and the
// history table's filter bar. Nothing is kept here that the kernel does not have:
// after a page reload the view re-renders from the model alone.

const STATUS_ORDER = ["running", "completed", "failed", "cancelled", "terminated", "timed_out", "continued_as_new"];

function formatDuration(seconds) {
  // Mirrors nbconductor.widgets.markup.format_duration.
  seconds = Math.max(0, seconds);
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  let minutes = Math.floor(Math.round(seconds) / 60);
  const sec = Math.round(seconds) % 60;
  if (minutes < 60) return `${minutes} min ${sec} s`;
  let hours = Math.floor(minutes / 60);
  minutes %= 60;
  if (hours < 24) return `${hours} h ${minutes} min`;
  const days = Math.floor(hours / 24);
  hours %= 24;
  return `${days} d ${hours} h`;
}

function formatAgo(seconds) {
  // Mirrors nbconductor.widgets.markup.format_ago.
  seconds = Math.max(0, seconds);
  for (const [size, unit] of [[86400, "d"], [3600, "h"], [60, "min"]]) {
    if (seconds >= size) return `${Math.floor(seconds / size)} ${unit} ago`;
  }
  return `${Math.floor(seconds)} s ago`;
}

function tick(root) {
  const now = Date.now();
  let live = 0;
  for (const el of root.querySelectorAll("[data-nbc-ago]")) {
    el.textContent = formatAgo((now - Date.parse(el.dataset.nbcAgo)) / 1000);
    live++;
  }
  for (const el of root.querySelectorAll("[data-nbc-since]")) {
    el.textContent = formatDuration((now - Date.parse(el.dataset.nbcSince)) / 1000);
    live++;
  }
  for (const el of root.querySelectorAll("[data-nbc-until]")) {
    const left = (Date.parse(el.dataset.nbcUntil) - now) / 1000;
    el.textContent = left > 0 ? `in ${formatDuration(left)}` : "due";
    live++;
  }
  return live;
}

function localTimes(root) {
  for (const el of root.querySelectorAll("time[data-nbc-time]")) {
    const when = new Date(el.dataset.nbcTime);
    if (!Number.isNaN(when.getTime())) el.textContent = when.toLocaleString();
  }
}

function paint(body, html) {
  // Keep what the reader opened or scrolled across the update.
  const open = new Set();
  for (const d of body.querySelectorAll("details[data-nbc-key]")) {
    if (d.open) open.add(d.dataset.nbcKey);
  }
  const scroll = {};
  for (const el of body.querySelectorAll("[data-nbc-scroll]")) {
    const atEnd = el.scrollTop + el.clientHeight >= el.scrollHeight - 4;
    scroll[el.dataset.nbcScroll] = atEnd ? "end" : el.scrollTop;
  }
  body.innerHTML = html;
  for (const d of body.querySelectorAll("details[data-nbc-key]")) {
    if (open.has(d.dataset.nbcKey)) d.open = true;
  }
  for (const el of body.querySelectorAll("[data-nbc-scroll]")) {
    const where = scroll[el.dataset.nbcScroll];
    if (where === "end") el.scrollTop = el.scrollHeight;
    else if (where !== undefined) el.scrollTop = where;
  }
  localTimes(body);
}

function element(tag, attrs = {}, children = []) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") el.textContent = value;
    else el.setAttribute(key, value);
  }
  for (const child of children) el.append(child);
  return el;
}

function toLocalInput(iso) {
  // An ISO instant as the value of an <input type=datetime-local> (local wall time).
  if (!iso) return "";
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return "";
  const local = new Date(when.getTime() - when.getTimezoneOffset() * 60000);
  return local.toISOString().slice(0, 16);
}

function filterBar(model) {
  // The history table's filters. They send {action: "query", value: {...}}; the kernel
  // answers with the `query` trait, which this bar then shows.
  const bar = element("div", { class: "nbc-filters", "data-testid": "nbc-filters" });
  const statuses = element("span", { class: "nbc-filter-statuses" });
  const workflow = element("select", { "data-testid": "nbc-filter-workflow", title: "workflow" });
  const search = element("input", {
    type: "search", placeholder: "id or tag contains…", "data-testid": "nbc-filter-search",
  });
  const range = element("select", { "data-testid": "nbc-filter-range", title: "started" });
  const since = element("input", { type: "datetime-local", "data-testid": "nbc-filter-since" });
  const until = element("input", { type: "datetime-local", "data-testid": "nbc-filter-until" });
  const pageSize = element("select", { "data-testid": "nbc-filter-page-size", title: "rows per page" });
  const rangeLabels = { any: "any time", "1h": "last hour", "24h": "last 24 hours", "7d": "last 7 days", custom: "between…" };
  bar.append(statuses, workflow, search, range, since, until, pageSize);

  const send = (value) => model.send({ action: "query", value });
  let timer = null;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => send({ search: search.value }), 250);
  });
  workflow.addEventListener("change", () => send({ workflow: workflow.value }));
  range.addEventListener("change", () => {
    if (range.value !== "custom") send({ range: range.value });
    show();
  });
  const sendTimes = () => send({
    since: since.value ? new Date(since.value).toISOString() : "",
    until: until.value ? new Date(until.value).toISOString() : "",
  });
  since.addEventListener("change", sendTimes);
  until.addEventListener("change", sendTimes);
  pageSize.addEventListener("change", () => send({ page_size: Number(pageSize.value) }));

  function options() {
    const o = model.get("options") || {};
    statuses.replaceChildren();
    for (const [value, title] of o.statuses || []) {
      const box = element("input", { type: "checkbox", value, "data-testid": `nbc-filter-status-${value}` });
      box.addEventListener("change", () => {
        const chosen = [...statuses.querySelectorAll("input:checked")].map((b) => b.value);
        send({ status: chosen });
      });
      statuses.append(element("label", { class: "nbc-status-choice" }, [box, ` ${title}`]));
    }
    workflow.replaceChildren(element("option", { value: "", text: "all workflows" }));
    for (const name of o.workflows || []) workflow.append(element("option", { value: name, text: name }));
    range.replaceChildren(...(o.ranges || Object.keys(rangeLabels)).map(
      (r) => element("option", { value: r, text: rangeLabels[r] || r })));
    pageSize.replaceChildren(...(o.page_sizes || [50]).map(
      (n) => element("option", { value: String(n), text: `${n} per page` })));
    show();
  }

  function show() {
    const q = model.get("query") || {};
    const focused = document.activeElement;
    for (const box of statuses.querySelectorAll("input")) box.checked = (q.status || []).includes(box.value);
    if (focused !== search) search.value = q.search || "";
    workflow.value = q.workflow || "";
    if (focused !== range) range.value = q.range || "any";
    if (focused !== since) since.value = toLocalInput(q.since);
    if (focused !== until) until.value = toLocalInput(q.until);
    pageSize.value = String(q.page_size || 50);
    const custom = range.value === "custom";
    since.hidden = !custom;
    until.hidden = !custom;
  }

  model.on("change:options", options);
  model.on("change:query", show);
  options();
  return { bar, dispose: () => { clearTimeout(timer); model.off("change:options", options); model.off("change:query", show); } };
}

// How often a view asks the kernel whether it still serves it, and how long without an
// answer makes it say it is disconnected (a restarted kernel never answers; a kernel
// busy with a blocking cell answers late, and the view comes back when it does).
const PING_MS = 5000;
const SILENCE_MS = 15000;

function watchKernel(model, el, onChange) {
  let answered = Date.now();
  let disconnected = false;
  const banner = element("div", { class: "nbc-disconnected-banner", "data-testid": "nbc-disconnected" }, [
    "Disconnected: no kernel serves this view (restarted or shut down). It shows the last " +
      "state it had and its buttons do nothing; run the cell again for a live view.",
  ]);
  const container = () =>
    el.closest(".nbc-execution-view, .nbc-history-view, .nbc-schedules-view") || el;
  const set = (value) => {
    if (value === disconnected) return;
    disconnected = value;
    el.classList.toggle("nbc-disconnected", value);
    const root = container();
    root.classList.toggle("nbc-disconnected", value);
    for (const control of root.querySelectorAll("button, input, select, textarea")) {
      if (value) {
        if (!control.disabled) { control.dataset.nbcDisabledByPing = "1"; control.disabled = true; }
      } else if (control.dataset.nbcDisabledByPing) {
        delete control.dataset.nbcDisabledByPing;
        control.disabled = false;
      }
    }
    if (value) el.prepend(banner); else banner.remove();
    onChange(value);
  };
  const onMessage = (msg) => {
    if (msg && msg.pong !== undefined) { answered = Date.now(); set(false); }
  };
  model.on("msg:custom", onMessage);
  const timer = setInterval(() => {
    try { model.send({ action: "ping", value: Date.now() }); } catch (e) { set(true); return; }
    if (Date.now() - answered > SILENCE_MS) set(true);
  }, PING_MS);
  return {
    get disconnected() { return disconnected; },
    dispose: () => { clearInterval(timer); model.off("msg:custom", onMessage); banner.remove(); },
  };
}

function detailPlacer(el, body) {
  // The history table's opened execution view (the `.nbc-detail` box beside this
  // panel) is moved into a row just under the selected row, so that it opens where
  // the reader clicked rather than below the pager; with no selected row on the page
  // it goes back to its place under the table.
  let detail = null;
  let home = null;
  return () => {
    const view = el.closest(".nbc-history-view");
    if (!view) return;
    if (detail === null) {
      detail = view.querySelector(":scope > .nbc-detail");
      if (detail === null) return;
      home = detail.parentNode;
    }
    const row = body.querySelector("tr.nbc-row[data-selected]");
    if (row) {
      const cell = element("td", { colspan: String(row.children.length), class: "nbc-detail-cell" });
      row.after(element("tr", { class: "nbc-detail-row", "data-testid": "nbc-detail-row" }, [cell]));
      cell.append(detail);
    } else if (detail.parentNode !== home) {
      home.append(detail);
    }
  };
}

function render({ model, el }) {
  el.classList.add("nbc-panel", `nbc-panel-${model.get("kind")}`);
  const body = element("div", { class: "nbc-body" });
  let filters = null;
  if (model.get("kind") === "history") {
    filters = filterBar(model);
    el.append(filters.bar);
  }
  el.append(body);

  let clock = null;
  const startClock = () => {
    // A clock only while something on the view ticks: a closed execution costs nothing.
    if (tick(body) > 0) {
      if (clock === null) clock = setInterval(() => { if (tick(body) === 0) stopClock(); }, 1000);
    } else stopClock();
  };
  const stopClock = () => { if (clock !== null) { clearInterval(clock); clock = null; } };
  const placeDetail = model.get("kind") === "history" ? detailPlacer(el, body) : () => {};
  const update = () => {
    paint(body, model.get("html"));
    placeDetail();
    if (!kernel.disconnected) startClock();
  };
  // A view whose kernel is gone stops its clocks: "running for 43 s" would be a lie.
  const kernel = watchKernel(model, el, (gone) => { if (gone) stopClock(); else startClock(); });

  body.addEventListener("click", (event) => {
    const target = event.target.closest("[data-nbc-action]");
    if (!target || !body.contains(target) || target.disabled) return;
    event.preventDefault();
    model.send({ action: target.dataset.nbcAction, value: target.dataset.nbcValue ?? null });
  });

  model.on("change:html", update);
  update();
  return () => {
    stopClock();
    kernel.dispose();
    model.off("change:html", update);
    if (filters) filters.dispose();
  };
}

export default { render };
