// The safety officer's inbox: the server says when the open alerts change (server-sent events), and the table is
// fetched again, so a new SAE appears without a reload. Without JavaScript the page still works by reloading.
(function () {
  const rows = document.getElementById("alert-rows");
  if (!rows || !window.EventSource) return;
  const events = new EventSource("/safety/events");
  events.addEventListener("alerts", async function () {
    const answer = await fetch("/safety/rows", { credentials: "same-origin" });
    if (answer.ok) rows.innerHTML = await answer.text();
  });
})();
