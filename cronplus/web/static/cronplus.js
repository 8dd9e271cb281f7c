// cronplus pages: the only script. The pages work without it; it (1) keeps countdowns current,
// (2) refreshes a page's <main> every data-refresh seconds (and when its "refresh" link is
// clicked) without losing the scroll position,
// (3) follows a running run's output (data-follow), appending the bytes after data-offset.
// Times count from the supervisor's clock (body data-now), not the browser's.
(function () {
  "use strict";
  var body = document.body;
  var skew = parseFloat(body.dataset.now || "0") * 1000 - Date.now();

  function human(s) {
    var a = Math.abs(Math.round(s)), t;
    if (a < 1) return "just now";
    if (a < 60) t = a + "s";
    else if (a < 3600) t = Math.floor(a / 60) + "min" + (a % 60 ? " " + (a % 60) + "s" : "");
    else if (a < 86400) t = Math.floor(a / 3600) + "h" + (Math.floor(a % 3600 / 60) ? " " + Math.floor(a % 3600 / 60) + "min" : "");
    else t = Math.floor(a / 86400) + "d" + (Math.floor(a % 86400 / 3600) ? " " + Math.floor(a % 86400 / 3600) + "h" : "");
    return s > 0 ? "in " + t : t + " ago";
  }

  function span(s) {
    return Math.abs(s) < 1 ? "0s" : human(s).replace(/^in /, "");
  }

  function tick() {
    var now = Date.now() + skew;
    document.querySelectorAll("time.elapsed").forEach(function (el) {
      el.textContent = span((now - Date.parse(el.getAttribute("datetime"))) / 1000);
    });
    document.querySelectorAll("time.countdown").forEach(function (el) {
      var rel = el.querySelector(".rel");
      if (rel) rel.textContent = human((Date.parse(el.getAttribute("datetime")) - now) / 1000);
    });
  }
  setInterval(tick, 1000);

  var every = parseInt(body.dataset.refresh || "0", 10);
  var out = document.getElementById("output");
  if (out && out.dataset.follow) {
    var offset = parseInt(out.dataset.offset || "0", 10);
    var decoder = new TextDecoder("utf-8");
    var follow = function () {
      fetch(out.dataset.follow + "?offset=" + offset, { credentials: "same-origin" }).then(function (r) {
        var status = r.headers.get("X-Run-Status");
        var next = parseInt(r.headers.get("X-Next-Offset") || String(offset), 10);
        return r.arrayBuffer().then(function (buf) {
          if (buf.byteLength) {
            var atEnd = out.scrollTop + out.clientHeight >= out.scrollHeight - 4;
            out.appendChild(document.createTextNode(decoder.decode(buf, { stream: true })));
            var none = document.getElementById("no-output");
            if (none) none.remove();
            if (atEnd) out.scrollTop = out.scrollHeight;
          }
          offset = next;
          if (status && status !== "running") { window.location.reload(); return; }
          setTimeout(follow, buf.byteLength ? 300 : 1000);
        });
      }).catch(function () { setTimeout(follow, 3000); });
    };
    setTimeout(follow, 500);
  } else if (every > 0) {
    setInterval(refresh, every * 1000);
  }

  // The page again, in place: <main> and the footer swapped for the server's new ones (the
  // scroll position stays); not while the person types in a form of the page.
  function refresh() {
    return fetch(window.location.href, { credentials: "same-origin" }).then(function (r) {
      return r.ok ? r.text() : null;
    }).then(function (html) {
      if (!html) return;
      var doc = new DOMParser().parseFromString(html, "text/html");
      var main = document.querySelector("main");
      if (!main || (document.activeElement !== document.body && main.contains(document.activeElement))) return;
      ["main", "footer"].forEach(function (tag) {
        var fresh = doc.querySelector(tag), old = document.querySelector(tag);
        if (fresh && old) old.replaceWith(fresh);
      });
      body.dataset.now = doc.body.dataset.now;
      skew = parseFloat(doc.body.dataset.now || "0") * 1000 - Date.now();
      tick();
    }).catch(function () {});
  }

  // "refresh" links reload the page without the script; with it, in place.
  document.addEventListener("click", function (e) {
    var link = e.target.closest && e.target.closest("a.refresh");
    if (link && every > 0) { e.preventDefault(); refresh(); }
  });
})();
