// taskorch web console: live board, task and plan pages over server-sent events.
// Everything from the server is put in with textContent or attributes, never as HTML; the one
// exception is a task's Changes section, which the server renders (the page's own template,
// escaped) and the page swaps in whole when it changed or to show another page of the patch.
"use strict";

(function () {
  function field(root, name) {
    return root.querySelector('[data-field="' + name + '"]');
  }

  function setText(root, name, value) {
    var el = field(root, name);
    if (el) el.textContent = value;
  }

  function setBadge(el, status) {
    if (!el) return;
    el.textContent = status;
    el.className = "badge " + status;
  }

  // The Changes section at patch page `offset`, fetched from the server and put in place of
  // the one shown. `wanted` is the changes' fingerprint the stream last reported.
  function changesLoader(root) {
    var loading = false;
    var wanted = null;
    function load(offset) {
      var section = root.querySelector("section.changes[data-fragment]");
      if (!section || loading) return;
      loading = true;
      var url = section.getAttribute("data-fragment") + "?patch=" + encodeURIComponent(offset || "0");
      fetch(url, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (text) {
          var fresh = new DOMParser().parseFromString(text, "text/html").querySelector("section.changes");
          if (fresh) section.replaceWith(document.importNode(fresh, true));
        })
        .catch(function () {})
        .then(function () {
          loading = false;
          var now = root.querySelector("section.changes[data-fragment]");
          if (now && wanted !== null && now.getAttribute("data-version") !== wanted) {
            load(now.getAttribute("data-patch-offset"));
          }
        });
    }
    root.addEventListener("click", function (e) {
      var link = e.target.closest ? e.target.closest("section.changes a[data-patch-offset]") : null;
      if (!link) return;
      e.preventDefault();
      load(link.getAttribute("data-patch-offset"));
    });
    return function (version) {
      wanted = version;
      var section = root.querySelector("section.changes[data-fragment]");
      if (section && section.getAttribute("data-version") !== version) {
        load(section.getAttribute("data-patch-offset"));
      }
    };
  }

  function liveTask(root, url) {
    var changesSeen = changesLoader(root);
    var tail = field(root, "tail");
    var dot = field(root, "live");
    var source = new EventSource(url);
    source.addEventListener("open", function () { if (dot) dot.classList.add("on"); });
    source.addEventListener("error", function () { if (dot) dot.classList.remove("on"); });
    source.addEventListener("reset", function () { tail.textContent = ""; });
    source.addEventListener("event", function (e) {
      var atEnd = tail.scrollTop + tail.clientHeight >= tail.scrollHeight - 4;
      tail.appendChild(document.createTextNode(JSON.parse(e.data) + "\n"));
      if (atEnd) tail.scrollTop = tail.scrollHeight;
    });
    source.addEventListener("log", function (e) {
      var d = JSON.parse(e.data);
      var log = field(root, "runlog");
      var empty = field(root, "runlog-empty");
      var atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      if (d.reset) log.textContent = "";
      log.appendChild(document.createTextNode(d.text));
      if (log.textContent.length > 262144) log.textContent = log.textContent.slice(-131072);
      if (empty && log.textContent) empty.hidden = true;
      if (atEnd) log.scrollTop = log.scrollHeight;
    });
    source.addEventListener("task", function (e) {
      var s = JSON.parse(e.data);
      setBadge(field(root, "status"), s.status);
      ["attempt", "worker", "lease", "session", "cost", "turns", "result", "error"].forEach(function (k) {
        setText(root, k, s[k]);
      });
      root.setAttribute("data-status", s.status);
      if (s.terminal) root.setAttribute("data-ended", "true");
      changesSeen(s.changes);
      var note = field(root, "note");  // "nothing runs this task here": true only while it waits
      if (note && s.status !== "queued" && s.status !== "waiting") note.hidden = true;
    });
    source.addEventListener("end", function () {
      source.close();
      if (dot) dot.classList.remove("on");
      root.setAttribute("data-ended", "true");
    });
  }

  function livePlan(root, url) {
    var source = new EventSource(url);
    source.addEventListener("plan", function (e) {
      var p = JSON.parse(e.data);
      setBadge(field(root, "status"), p.status);
      var bar = field(root, "progress");
      if (bar) bar.value = p.percent;
      ["done", "total", "eta", "elapsed", "reason"].forEach(function (k) { setText(root, k, p[k]); });
      Object.keys(p.steps).forEach(function (id) {
        var status = p.steps[id];
        root.querySelectorAll("[data-step]").forEach(function (node) {
          if (node.getAttribute("data-step") !== id) return;
          node.setAttribute("class", "node " + status);
          var sub = node.querySelector("[data-step-status]");
          if (sub) sub.textContent = status;
        });
        root.querySelectorAll("[data-step-row]").forEach(function (row) {
          if (row.getAttribute("data-step-row") === id) setBadge(row.querySelector("[data-step-badge]"), status);
        });
      });
      root.setAttribute("data-status", p.status);
      // Approve and Reject only while the plan awaits confirmation; Cancel until it ends.
      root.querySelectorAll(".actions form").forEach(function (f) {
        var awaiting = f.hasAttribute("data-awaiting");
        if (p.terminal || (awaiting && p.status !== "awaiting_confirmation")) f.hidden = true;
      });
    });
    source.addEventListener("end", function () {
      source.close();
      root.setAttribute("data-ended", "true");
    });
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function boardCard(c) {
    var a = el("a", "task-card");
    a.href = "/console/tasks/" + encodeURIComponent(c.id);
    a.setAttribute("data-task-id", c.id);
    a.appendChild(el("span", "prompt", c.prompt));
    a.appendChild(el("span", "meta", c.meta));
    a.appendChild(el("span", "meta dir", c.dir));
    if (c.tags.length) {
      var tags = el("span", "tags");
      c.tags.forEach(function (t) { tags.appendChild(el("span", "tag", t)); });
      a.appendChild(tags);
    }
    return a;
  }

  // The board: each column's first page of cards, replaced whenever the server says it changed.
  function liveBoard(root, url) {
    var filters = url.indexOf("?") >= 0 ? url.slice(url.indexOf("?") + 1) : "";
    var source = new EventSource(url);
    source.addEventListener("open", function () { root.setAttribute("data-connected", "true"); });
    source.addEventListener("error", function () { root.removeAttribute("data-connected"); });
    source.addEventListener("board", function (e) {
      var columns = JSON.parse(e.data);
      root.querySelectorAll("section.column[data-status]").forEach(function (section) {
        var status = section.getAttribute("data-status");
        var col = columns[status];
        if (!col) return;
        var cards = field(section, "cards");
        cards.replaceChildren();
        col.cards.forEach(function (c) { cards.appendChild(boardCard(c)); });
        if (!col.cards.length) cards.appendChild(el("p", "empty", "none"));
        setText(section, "count", col.cards.length + (col.more ? "+" : ""));
        var more = field(section, "more");
        if (more) {
          var query = new URLSearchParams(filters);
          query.set("column", status);
          query.set("cursor", col.more || "");
          more.href = "/console/?" + query.toString();
          more.hidden = !col.more;
        }
      });
      root.setAttribute("data-updates", String(Number(root.getAttribute("data-updates") || "0") + 1));
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var board = document.querySelector("div.board[data-live]");
    if (board) liveBoard(board, board.getAttribute("data-live"));
    var task = document.querySelector("section.task[data-live]");
    if (task) liveTask(task, task.getAttribute("data-live"));
    var plan = document.querySelector("section.plan[data-live]");
    if (plan) livePlan(plan, plan.getAttribute("data-live"));
  });
})();
