// The projector: snapshots from /projector/feed (server-sent events) update the board in place; new best scores
// flash; the reveal plays from the last place to the first; the page rotates through exercises unless ?exercise=.
"use strict";

(function () {
  const ROTATE_MS = 20000;
  const REVEAL_STEP_MS = 600;
  const HIGHLIGHT_MS = 6000;
  const HOLD_AFTER_REVEAL_MS = 60000;
  const POLL_MS = 3000;

  const body = document.body;
  const stay = body.dataset.stay || null;
  const $ = (id) => document.getElementById(id);

  let latest = null;            // the latest snapshot
  let shownSlug = stay;         // the exercise on the screen
  let rotateAt = Date.now() + ROTATE_MS;
  const previous = {};          // slug -> {revealed, scores: {name: public score}} of the last snapshot
  const improved = {};          // slug -> {name: time it improved}
  let revealing = null;         // slug whose reveal is playing

  function text(element, value) {
    if (element.textContent !== value) element.textContent = value;
  }

  function score(value) {
    return typeof value === "number" ? value.toFixed(4) : "—";
  }

  function move(change) {
    if (change > 0) return ["▲" + change, "up"];
    if (change < 0) return ["▼" + -change, "down"];
    return ["=", "same"];
  }

  function entryOf(slug) {
    return latest && latest.exercises.find((entry) => entry.slug === slug);
  }

  function noteChanges(snapshot) {
    const now = Date.now();
    const newlyRevealed = [];
    for (const entry of snapshot.exercises) {
      const board = entry.board;
      const before = previous[entry.slug];
      const scores = {};
      for (const row of board.rows) scores[row.display_name] = row.public_score;
      if (before && !board.revealed) {
        improved[entry.slug] = improved[entry.slug] || {};
        for (const [name, value] of Object.entries(scores)) {
          if (!(name in before.scores) || value > before.scores[name]) improved[entry.slug][name] = now;
        }
      }
      if (before && board.revealed && !before.revealed) newlyRevealed.push(entry.slug);
      previous[entry.slug] = { revealed: board.revealed, scores: scores };
    }
    return newlyRevealed;
  }

  function headings(revealed) {
    return revealed
      ? ["Rank", "Name", "Final score", "Public score", "Move"]
      : ["Rank", "Name", "Best score", "Submissions"];
  }

  function cellsOf(row, revealed) {
    if (revealed) {
      const [label, kind] = move(row.rank_change);
      return [[String(row.private_rank), "rank"], [row.display_name, "name"], [score(row.private_score), "score"],
              [score(row.public_score) + " (#" + row.rank + ")", "public"], [label, "move " + kind]];
    }
    return [[String(row.rank), "rank"], [row.display_name, "name"], [score(row.public_score), "score"],
            [String(row.submissions), "count"]];
  }

  function rowElement(tbody, name, count) {
    let tr = Array.from(tbody.children).find((candidate) => candidate.dataset.name === name);
    if (!tr || tr.children.length !== count) {
      if (tr) tr.remove();
      tr = document.createElement("tr");
      tr.dataset.name = name;
      for (let i = 0; i < count; i++) tr.appendChild(document.createElement("td"));
    }
    return tr;
  }

  function renderRows(entry, revealed) {
    const tbody = $("board-rows");
    const head = headings(revealed);
    const headText = head.join("|");
    if ($("board-head").dataset.columns !== headText) {
      const tr = document.createElement("tr");
      for (const label of head) {
        const th = document.createElement("th");
        th.textContent = label;
        tr.appendChild(th);
      }
      $("board-head").replaceChildren(tr);
      $("board-head").dataset.columns = headText;
    }
    const marks = improved[entry.slug] || {};
    const keep = new Set();
    entry.board.rows.forEach((row, index) => {
      const tr = rowElement(tbody, row.display_name, head.length);
      cellsOf(row, revealed).forEach(([value, kind], i) => {
        text(tr.children[i], value);
        if (tr.children[i].className !== kind) tr.children[i].className = kind;
      });
      const fresh = !revealed && marks[row.display_name] && Date.now() - marks[row.display_name] < HIGHLIGHT_MS;
      tr.classList.toggle("improved", Boolean(fresh));
      tr.classList.toggle("podium", (revealed ? row.private_rank : row.rank) <= 3);
      if (tbody.children[index] !== tr) tbody.insertBefore(tr, tbody.children[index] || null);
      keep.add(tr);
    });
    for (const tr of Array.from(tbody.children)) if (!keep.has(tr)) tr.remove();
  }

  function playReveal(entry) {
    revealing = entry.slug;
    shownSlug = entry.slug;
    rotateAt = Date.now() + HOLD_AFTER_REVEAL_MS;
    $("board-rows").replaceChildren();
    renderFrame(true);
    const rows = Array.from($("board-rows").children);
    rows.forEach((tr) => tr.classList.add("pending"));
    rows.reverse().forEach((tr, step) => {
      setTimeout(() => {
        tr.classList.remove("pending");
        tr.classList.add("shown");
        if (step === rows.length - 1) {
          revealing = null;
          rotateAt = Date.now() + HOLD_AFTER_REVEAL_MS;
        }
      }, REVEAL_STEP_MS * (step + 1));
    });
    if (!rows.length) revealing = null;
  }

  function chooseSlug() {
    if (stay || !latest) return;
    const slugs = latest.exercises.map((entry) => entry.slug);
    const withScores = latest.exercises.filter((entry) => entry.board.rows.length).map((entry) => entry.slug);
    const pool = withScores.length ? withScores : slugs;
    if (!pool.includes(shownSlug)) {
      shownSlug = pool[0];
      rotateAt = Date.now() + ROTATE_MS;
    } else if (Date.now() >= rotateAt && !revealing) {
      shownSlug = pool[(pool.indexOf(shownSlug) + 1) % pool.length];
      rotateAt = Date.now() + ROTATE_MS;
      $("board-rows").replaceChildren();
    }
  }

  function renderRotation() {
    const list = $("rotation");
    const items = latest.exercises.map((entry) => entry.slug + (entry.slug === shownSlug ? "*" : "")).join("|");
    if (list.dataset.items === items) return;
    list.dataset.items = items;
    list.replaceChildren(...latest.exercises.map((entry) => {
      const li = document.createElement("li");
      li.textContent = entry.title;
      if (entry.slug === shownSlug) li.className = "current";
      return li;
    }));
  }

  function renderFrame(force) {
    if (!latest) return;
    chooseSlug();
    const entry = entryOf(shownSlug) || latest.exercises[0];
    if (!entry) return;
    const board = entry.board;
    text($("exercise-title"), entry.title + (board.dataset !== "synthetic" ? " · " + board.dataset : ""));
    $("frozen-badge").hidden = !board.frozen;
    $("revealed-badge").hidden = !board.revealed;
    $("board-empty").hidden = board.rows.length > 0;
    const more = board.total_rows - board.rows.length;
    $("board-more").hidden = more <= 0;
    text($("board-more"), "… and " + more + " more on the leaderboard");
    text($("queue-length"), String(latest.queue_length));
    $("announcement").hidden = !latest.announcement;
    text($("announcement"), latest.announcement || "");
    renderRotation();
    renderCountdown(entry);
    if (revealing === entry.slug && !force) return;  // the reveal owns the table while it plays
    renderRows(entry, board.revealed);
  }

  function renderCountdown(entry) {
    $("deadline").hidden = entry.open && !entry.deadline;
    text($("countdown-label"), entry.open ? "Closes in" : "Submissions");
    let label = "Closed";
    if (entry.deadline && entry.open) {
      const left = Math.max(0, Math.floor((Date.parse(entry.deadline) - Date.now()) / 1000));
      const hours = Math.floor(left / 3600);
      const minutes = String(Math.floor((left % 3600) / 60)).padStart(2, "0");
      const seconds = String(left % 60).padStart(2, "0");
      label = (hours ? hours + ":" : "") + minutes + ":" + seconds;
    }
    text($("countdown"), label);
    $("countdown").classList.toggle("urgent", Boolean(entry.deadline) && entry.open &&
      Date.parse(entry.deadline) - Date.now() < 5 * 60 * 1000);
  }

  function receive(snapshot) {
    const firstPaint = latest === null;
    const newlyRevealed = noteChanges(snapshot);
    latest = snapshot;
    const toPlay = newlyRevealed.find((slug) => !stay || slug === stay);
    if (!firstPaint && toPlay) {
      playReveal(entryOf(toPlay));
      return;
    }
    renderFrame(false);
  }

  function poll() {
    fetch(body.dataset.snapshot, { credentials: "same-origin" })
      .then((response) => (response.ok ? response.json() : null))
      .then((snapshot) => snapshot && receive(snapshot))
      .catch(() => {})
      .finally(() => setTimeout(poll, POLL_MS));
  }

  function connect() {
    const source = new EventSource(body.dataset.feed);
    source.onmessage = (event) => {
      $("connection").hidden = true;
      receive(JSON.parse(event.data));
    };
    source.onerror = () => {
      $("connection").hidden = false;
      if (source.readyState === EventSource.CLOSED) poll();  // refused (too many streams): poll instead
    };
  }

  setInterval(() => renderFrame(false), 1000);  // countdown, rotation, highlights fading
  connect();
})();
