// The submission page, live: server-sent events from /submissions/<id>/events (server/live_feed.py) update the
// status, queue place, elapsed time, log and training curves in place; the verdict brings the finished page's
// content in without moving the reader. Where the stream is refused or EventSource is missing, the page polls
// /submissions/<id>.json every few seconds instead. Without JavaScript the page shows everything at load time.
"use strict";

(function () {
  const POLL_MS = 2500;
  const FOLLOW_SLACK_PX = 24;       // this close to the bottom of the log counts as "at the newest line"
  const LOG_KEEP_CHARS = 20000;     // as much as the worker keeps (server/job_store.py LIVE_LOG_CHARS)

  let root = null;                  // #submission
  let source = null;                // the EventSource while streaming
  let pollTimer = null;
  let elapsedBase = null;           // [seconds elapsed at a known moment, Date.now() then]
  let epochCount = null;
  let finishing = false;

  const $ = (id) => document.getElementById(id);

  function pad(n) { return String(n).padStart(2, "0"); }

  function clock(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    return seconds >= 60 ? Math.floor(seconds / 60) + " min " + pad(seconds % 60) + " s" : seconds + " s";
  }

  function localClock(iso) {
    const when = new Date(iso);
    return isNaN(when.getTime()) ? "" : pad(when.getHours()) + ":" + pad(when.getMinutes());
  }

  function setText(element, value) {
    if (element && element.textContent !== value) element.textContent = value;
  }

  // ---- the log box: follows its newest line unless the reader scrolled up ----

  function logBox() { return $("log"); }

  function atBottom(box) {
    return box.scrollHeight - box.scrollTop - box.clientHeight <= FOLLOW_SLACK_PX;
  }

  function watchLog() {
    const box = logBox();
    if (!box) return;
    box.dataset.follow = "1";
    box.scrollTop = box.scrollHeight;
    box.addEventListener("scroll", function () {
      box.dataset.follow = atBottom(box) ? "1" : "0";
      if (box.dataset.follow === "1") $("log-follow").hidden = true;
    });
    const newest = $("log-newest");
    if (newest) newest.addEventListener("click", function () {
      box.scrollTop = box.scrollHeight;
      box.dataset.follow = "1";
      $("log-follow").hidden = true;
    });
  }

  function showLog(text) {
    const box = logBox();
    if (!box || box.textContent === text) return;
    const follow = box.dataset.follow !== "0";
    const keep = box.scrollTop;
    box.textContent = text;
    if (follow) {
      box.scrollTop = box.scrollHeight;
    } else {
      box.scrollTop = keep;
      $("log-follow").hidden = false;
    }
  }

  function onLog(change) {
    const box = logBox();
    if (!box) return;
    const waiting = box.dataset.placeholder === "1";   // the "(waiting for output…)" placeholder goes
    delete box.dataset.placeholder;
    if ("replace" in change) return showLog(change.replace);
    let text = (waiting ? "" : box.textContent) + change.append;
    const keep = change.keep || LOG_KEEP_CHARS;
    if (text.length > keep) text = text.slice(text.length - keep);
    showLog(text);
  }

  // ---- status, queue place, elapsed time ----

  function onStatus(state) {
    root.dataset.status = state.status;
    const status = $("status");
    status.className = "status status-" + state.status;
    setText($("status-word"), state.status);
    let place = "";
    if (state.queue_position) {
      place = " — number " + state.queue_position + " in the queue";
      if (state.eta) place += ", expected to start at " + localClock(state.eta);
    }
    setText($("queue-place"), place);
    elapsedBase = state.status === "running" && typeof state.elapsed === "number" ? [state.elapsed, Date.now()] : null;
    tick();
  }

  function tick() {
    const element = $("elapsed");
    if (!element) return;
    if (!elapsedBase) return setText(element, "");
    const seconds = elapsedBase[0] + (Date.now() - elapsedBase[1]) / 1000;
    const limit = Number(root.dataset.limit);
    setText(element, " — running for " + clock(seconds) + (limit ? " of the " + clock(limit) + " limit" : ""));
    element.classList.toggle("over", Boolean(limit) && seconds > limit);
  }

  // ---- the training curves ----

  function onEpochs(update) {
    const section = $("epochs");
    if (!section) return;
    epochCount = update.count;
    section.innerHTML = update.html;  // drawn and escaped on the server (server/figures.py)
  }

  function fetchCurves() {
    return fetch(root.dataset.curves, { credentials: "same-origin" })
      .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
      .then((html) => onEpochs({ count: epochCount, html: html }));
  }

  // ---- the verdict: the finished page's content, the reader stays where they were ----

  function onVerdict() {
    if (finishing) return;
    finishing = true;
    stop();
    const x = window.scrollX, y = window.scrollY;
    const box = logBox();
    const logFollowing = !box || box.dataset.follow !== "0";
    const logTop = box ? box.scrollTop : 0;
    fetch(root.dataset.page, { credentials: "same-origin" })
      .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
      .then((html) => {
        const fresh = new DOMParser().parseFromString(html, "text/html").getElementById("submission");
        if (!fresh) return;
        root.replaceWith(document.importNode(fresh, true));
        document.dispatchEvent(new CustomEvent("workshop:updated"));  // event.js: local times, before measuring
        start();
        const newBox = logBox();
        if (newBox && !logFollowing) { newBox.scrollTop = logTop; newBox.dataset.follow = "0"; }
        window.scrollTo(x, y);
      })
      .catch((status) => {
        if (status === 404) return note("this submission no longer exists");  // deleted meanwhile
        finishing = false;
        window.setTimeout(onVerdict, POLL_MS);
      });
  }

  // ---- the stream, and polling where there is none ----

  function note(words) {
    const element = $("live-note");
    if (!element) return;
    element.hidden = !words;
    setText(element, words ? "(" + words + ")" : "");
  }

  function listen() {
    source = new EventSource(root.dataset.events);
    const handle = (handler) => (event) => handler(JSON.parse(event.data));
    source.addEventListener("open", () => note("updates live"));
    source.addEventListener("status", handle(onStatus));
    source.addEventListener("log", handle(onLog));
    source.addEventListener("epochs", handle(onEpochs));
    source.addEventListener("verdict", () => onVerdict());
    source.addEventListener("error", () => {
      if (source && source.readyState === EventSource.CLOSED) {  // refused (too many live pages): poll instead
        source = null;
        poll();
      }
    });
  }

  function poll() {
    note("checks every few seconds");
    fetch(root.dataset.json, { credentials: "same-origin" })
      .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
      .then((state) => {
        const elapsed = elapsedBase ? elapsedBase[0] + (Date.now() - elapsedBase[1]) / 1000 : 0;  // the JSON has none
        onStatus({ status: state.status, queue_position: state.queue_position, eta: state.eta, elapsed: elapsed });
        if (state.log && logBox()) { delete logBox().dataset.placeholder; showLog(state.log); }
        const count = (state.history || []).length;
        const changed = count !== epochCount;
        epochCount = count;
        if (["done", "failed", "cancelled"].includes(state.status)) return onVerdict();
        return changed && count ? fetchCurves() : null;
      })
      .catch((status) => { if (status === 404) finishing = true; })  // deleted: nothing more to ask
      .finally(() => { if (!finishing) pollTimer = window.setTimeout(poll, POLL_MS); });
  }

  function stop() {
    if (source) { source.close(); source = null; }
    if (pollTimer) { window.clearTimeout(pollTimer); pollTimer = null; }
  }

  function start() {
    root = $("submission");
    if (!root) return;
    finishing = false;
    watchLog();
    const elapsed = $("elapsed");
    elapsedBase = elapsed && elapsed.dataset.elapsed ? [Number(elapsed.dataset.elapsed), Date.now()] : null;
    if (!root.dataset.events) return;  // finished: nothing more will change
    epochCount = document.querySelectorAll("#history-table tr").length - 1;
    if (epochCount < 0) epochCount = 0;
    if (window.EventSource) listen(); else poll();
  }

  document.addEventListener("DOMContentLoaded", function () {
    start();
    window.setInterval(tick, 1000);
  });
})();
