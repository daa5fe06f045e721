// Keeps a dashboard page current without reloading it: every 30 s, fetch the same URL and
// swap in the fresh version of each element marked `data-live` (matched by id). When the
// session has ended the fetch lands on the sign-in page, and the page reloads to show it.
"use strict";
(() => {
  const PERIOD_MS = 30000;

  async function refresh() {
    const live = document.querySelectorAll("[data-live][id]");
    if (live.length === 0) return;
    let response;
    try {
      response = await fetch(location.href, { credentials: "same-origin", cache: "no-store" });
    } catch (_) {
      document.documentElement.dataset.refreshFailed = new Date().toISOString();
      return; // the network is down: try again next time
    }
    if (response.redirected || response.status === 401) {
      location.reload();
      return;
    }
    if (!response.ok) return;
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    for (const element of live) {
      const replacement = fresh.getElementById(element.id);
      if (replacement) element.replaceWith(document.importNode(replacement, true));
    }
    document.documentElement.dataset.refreshed = new Date().toISOString();
  }

  // Exposed so a test (or a curious operator) can refresh now.
  window.seahawksRefresh = refresh;
  setInterval(refresh, PERIOD_MS);
})();
