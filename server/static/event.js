// The event's live bits: deadline countdowns, UTC times shown in the browser's local time, the browser's UTC
// offset for the instructor's deadline forms, and a confirmation before revealing a private board.
(function () {
  "use strict";
  if (window.workshopEventLoaded) return; // base.html loads this on every page; some pages name it again
  window.workshopEventLoaded = true;

  function pad(n) { return String(n).padStart(2, "0"); }

  function words(seconds) {
    var d = Math.floor(seconds / 86400), h = Math.floor(seconds % 86400 / 3600);
    var m = Math.floor(seconds % 3600 / 60), s = Math.floor(seconds % 60);
    if (d > 0) return d + " d " + h + " h " + pad(m) + " min";
    if (h > 0) return h + " h " + pad(m) + " min " + pad(s) + " s";
    return m + " min " + pad(s) + " s";
  }

  function tick() {
    document.querySelectorAll("[data-deadline]").forEach(function (el) {
      var left = (Date.parse(el.dataset.deadline) - Date.now()) / 1000;
      if (isNaN(left)) return;
      if (left > 0) {
        el.textContent = "closes in " + words(left);
        el.classList.toggle("soon", left < 600);
      } else {
        el.textContent = "the deadline has passed";
        el.classList.add("passed");
        var button = document.getElementById("submit");
        if (button) button.disabled = true;
      }
    });
  }

  // <time class="local-time" datetime="...Z">14:05 UTC</time> becomes "14:05 (your time)"; data-seconds keeps
  // the seconds. The server stores naive UTC: a datetime without a zone is read as UTC, not as local time.
  function localTimes() {
    document.querySelectorAll("time.local-time").forEach(function (el) {
      var iso = el.getAttribute("datetime") || "";
      if (/T\d\d:\d\d(:\d\d(\.\d+)?)?$/.test(iso)) iso += "Z";
      var when = new Date(iso);
      if (isNaN(when.getTime())) return;
      var today = new Date().toDateString() === when.toDateString();
      var clock = pad(when.getHours()) + ":" + pad(when.getMinutes());
      if (el.hasAttribute("data-seconds")) clock += ":" + pad(when.getSeconds());
      el.title = when.toISOString().replace(".000Z", "Z").replace("T", " ") + " (UTC)";
      el.textContent = (today ? "" : when.toLocaleDateString([], { weekday: "short", day: "numeric", month: "short" }) + " ")
        + clock + " (your time)";
      el.classList.add("localised");
    });
  }

  function offsets() {
    document.querySelectorAll("input[name=utc_offset]").forEach(function (el) {
      el.value = String(-new Date().getTimezoneOffset());
    });
  }

  function confirmations() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    });
  }

  document.addEventListener("workshop:updated", localTimes);  // a page replaced part of itself (submission.js)
  document.addEventListener("DOMContentLoaded", function () {
    localTimes();
    offsets();
    confirmations();
    tick();
    if (document.querySelector("[data-deadline]")) window.setInterval(tick, 1000);
  });
})();
