// The chat box: one WebSocket to /ws/chat/<room>/, reopened with back-off
// whenever it closes (Daphne restarting, a network blip, a deploy).
"use strict";

(function () {
  const room = new URLSearchParams(location.search).get("room") || "lobby";
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const url = `${scheme}://${location.host}/ws/chat/${encodeURIComponent(room)}/`;

  const log = document.getElementById("chat-log");
  const status = document.getElementById("chat-status");
  const form = document.getElementById("chat-form");
  const input = document.getElementById("chat-message");
  document.getElementById("chat-room").textContent = room;

  // Back-off: 0.5 s doubling to 10 s, with jitter so that a restarted Daphne is
  // not met by every client at the same instant.
  const MIN_DELAY_MS = 500;
  const MAX_DELAY_MS = 10000;
  let delay = MIN_DELAY_MS;
  let socket = null;

  function append(text, className) {
    const item = document.createElement("li");
    item.textContent = text;
    if (className) item.className = className;
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
  }

  function connect() {
    status.textContent = "connecting…";
    socket = new WebSocket(url);
    socket.addEventListener("open", () => {
      delay = MIN_DELAY_MS;
      status.textContent = "connected";
    });
    socket.addEventListener("message", (event) => {
      const data = JSON.parse(event.data);
      if (data.error) append(data.error, "error");
      else append(data.message);
    });
    socket.addEventListener("close", () => {
      const wait = delay / 2 + Math.random() * (delay / 2);
      status.textContent = `disconnected, retrying in ${(wait / 1000).toFixed(1)} s`;
      setTimeout(connect, wait);
      delay = Math.min(delay * 2, MAX_DELAY_MS);
    });
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const message = input.value.trim();
    if (!message) return;
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      append("Not connected yet; try again in a moment.", "error");
      return;
    }
    socket.send(JSON.stringify({ message }));
    input.value = "";
  });

  connect();
})();
