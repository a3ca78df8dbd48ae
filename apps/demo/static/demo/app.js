// The page's two WebSockets: the chat box (/ws/chat/<room>/), and the
// checksums of the visitor's uploads (/ws/uploads/), which the worker
// computes after the page has loaded.
"use strict";

(function () {
  const scheme = location.protocol === "https:" ? "wss" : "ws";

  // Back-off: 0.5 s doubling to 10 s, with jitter so that a restarted Daphne is
  // not met by every client at the same instant.
  const MIN_DELAY_MS = 500;
  const MAX_DELAY_MS = 10000;

  // A WebSocket to `path`, reopened with back-off whenever it closes (Daphne
  // restarting, a network blip, a deploy) until stop() is called.
  function keepOpen(path, { onConnecting, onOpen, onMessage, onRetry }) {
    const url = `${scheme}://${location.host}${path}`;
    let delay = MIN_DELAY_MS;
    let socket = null;
    let stopped = false;

    function connect() {
      if (onConnecting) onConnecting();
      socket = new WebSocket(url);
      socket.addEventListener("open", () => {
        delay = MIN_DELAY_MS;
        if (onOpen) onOpen();
      });
      socket.addEventListener("message", (event) => onMessage(JSON.parse(event.data)));
      socket.addEventListener("close", () => {
        if (stopped) return;
        const wait = delay / 2 + Math.random() * (delay / 2);
        if (onRetry) onRetry(wait);
        setTimeout(connect, wait);
        delay = Math.min(delay * 2, MAX_DELAY_MS);
      });
    }

    connect();
    return {
      send(data) {
        if (!socket || socket.readyState !== WebSocket.OPEN) return false;
        socket.send(JSON.stringify(data));
        return true;
      },
      stop() {
        stopped = true;
        socket.close();
      },
    };
  }

  // --- Chat -------------------------------------------------------------------

  const room = new URLSearchParams(location.search).get("room") || "lobby";
  const log = document.getElementById("chat-log");
  const status = document.getElementById("chat-status");
  const form = document.getElementById("chat-form");
  const input = document.getElementById("chat-message");
  document.getElementById("chat-room").textContent = room;

  function append(text, className) {
    const item = document.createElement("li");
    item.textContent = text;
    if (className) item.className = className;
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
  }

  const chat = keepOpen(`/ws/chat/${encodeURIComponent(room)}/`, {
    onConnecting: () => { status.textContent = "connecting…"; },
    onOpen: () => { status.textContent = "connected"; },
    onMessage: (data) => {
      if (data.error) append(data.error, "error");
      else append(data.message);
    },
    onRetry: (wait) => {
      status.textContent = `disconnected, retrying in ${(wait / 1000).toFixed(1)} s`;
    },
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const message = input.value.trim();
    if (!message) return;
    if (!chat.send({ message })) {
      append("Not connected yet; try again in a moment.", "error");
      return;
    }
    input.value = "";
  });

  // --- Uploads' checksums ------------------------------------------------------
  // The page lists each upload with its checksum, or "computing…" (marked
  // data-computing) while the worker has yet to finish. Without JavaScript, a
  // reload shows it; with it, the socket brings it in place, and closes once
  // nothing is left to wait for.

  const uploads = document.getElementById("upload-list");
  const computing = () => uploads.querySelectorAll("[data-computing]");
  if (!uploads || computing().length === 0) return;

  const checksums = keepOpen("/ws/uploads/", {
    // The server has joined this page's groups before it opens the socket.
    onOpen: () => { uploads.dataset.socket = "open"; },
    onRetry: () => { delete uploads.dataset.socket; },
    onMessage: (data) => {
      for (const item of uploads.querySelectorAll("li[data-upload]")) {
        const code = item.querySelector("[data-computing]");
        if (item.dataset.upload === data.upload && code) {
          code.textContent = data.sha256;
          delete code.dataset.computing;
        }
      }
      if (computing().length === 0) {
        checksums.stop();
        delete uploads.dataset.socket;
      }
    },
  });
})();
