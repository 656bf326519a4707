// The sandbox chat page: sends what the person does to the local server, draws what the bot sends.
"use strict";

const HEADERS = { "X-Sandbox-Client": "1" };
// Commands that need words after them go to the input instead of being sent at once.
const NEEDS_ARGUMENTS = new Set(["feedback"]);
const PROBABILITY_LINE = /^[█░]+\s+(\d{1,3})%\s+(.+)$/u;
const FOOTNOTE = /^#\d+ · model /u;
const TYPING_TIMEOUT_MS = 60000;

const state = {
  who: "user",
  rev: 0,
  people: {},
  commands: [],
  adminCommands: [],
  maxUpload: 20 * 1024 * 1024,
  messages: { user: new Map(), admin: new Map() },
  unread: { user: 0, admin: 0 },
  typingSince: { user: 0, admin: 0 },
  replyTo: null,
};

const $ = (id) => document.getElementById(id);
const EMPTY = $("empty");

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...HEADERS, ...(options.headers || {}) } });
  let body;
  try {
    body = await response.json();
  } catch {
    body = {};
  }
  if (!response.ok) throw new Error(body.error || `the sandbox answered ${response.status}`);
  return body;
}

function postJson(path, payload) {
  return api(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(payload),
  });
}

// -- drawing ------------------------------------------------------------------------------------

function timeOf(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function drawText(container, text) {
  // The bot writes probabilities as text bars ("██████░░░░  62% 隶书 lishu"); draw those lines as real bars.
  const lines = text.split("\n");
  const probabilities = lines.map((line) => PROBABILITY_LINE.exec(line));
  const top = Math.max(-1, ...probabilities.filter(Boolean).map((m) => Number(m[1])));
  lines.forEach((line, i) => {
    const match = probabilities[i];
    if (match) {
      const percent = Number(match[1]);
      const row = element("span", percent === top ? "prob top" : "prob");
      const bar = element("span", "bar");
      const fill = element("span", "fill");
      fill.style.width = `${percent}%`;
      bar.append(fill);
      row.append(bar, element("span", "pct", `${percent}%`), element("span", "label", match[2]));
      container.append(row);
    } else if (FOOTNOTE.test(line)) {
      container.append(element("span", "footnote", line), "\n");
    } else {
      container.append(line, i < lines.length - 1 ? "\n" : "");
    }
  });
}

function drawMessage(who, message) {
  const node = element("div", `msg ${message.from_bot ? "bot" : "user"}`);
  node.dataset.id = message.id;
  const bubble = element("div", "bubble");
  if (message.reply_to) bubble.append(element("div", "quote", message.reply_to.text || "a photo"));
  if (message.photo) {
    bubble.classList.add("has-photo");
    const img = element("img", "photo");
    img.src = `/api/files/${encodeURIComponent(message.photo)}`;
    img.alt = message.from_bot ? "image from the bot" : "your image";
    img.addEventListener("click", () => img.classList.toggle("large"));
    img.addEventListener("load", () => scrollToEnd(false));
    bubble.append(img);
  }
  if (message.document) bubble.append(element("div", "document", message.document));
  if (message.text) {
    const text = element("div", "text");
    drawText(text, message.text);
    bubble.append(text);
  }
  bubble.append(element("div", "meta", `${message.edited ? "edited · " : ""}${timeOf(message.date)}`));
  node.append(bubble);
  if (message.buttons.length) {
    const keyboard = element("div", "keyboard");
    for (const row of message.buttons) {
      const line = element("div", "row");
      for (const button of row) {
        const b = element("button", "", button.text);
        b.type = "button";
        b.addEventListener("click", () => press(who, message.id, button.callback_data, b));
        line.append(b);
      }
      keyboard.append(line);
    }
    node.append(keyboard);
  }
  const reply = element("button", "reply-link", "↩");
  reply.type = "button";
  reply.title = "Reply to this message";
  reply.setAttribute("aria-label", "Reply to this message");
  reply.addEventListener("click", () => setReply(message));
  node.append(reply);
  return node;
}

function nearEnd() {
  const box = $("messages");
  return box.scrollHeight - box.scrollTop - box.clientHeight < 120;
}

function scrollToEnd(force) {
  const box = $("messages");
  if (force || nearEnd()) box.scrollTop = box.scrollHeight;
}

function drawTyping() {
  $("messages").querySelector(".typing")?.remove();
  if (Date.now() - state.typingSince[state.who] > TYPING_TIMEOUT_MS) return;
  const typing = element("div", "msg typing");
  const bubble = element("div", "bubble");
  bubble.setAttribute("aria-label", "the bot is answering");
  bubble.append(element("span", "dot"), element("span", "dot"), element("span", "dot"));
  typing.append(bubble);
  $("messages").append(typing);
}

function redraw() {
  const box = $("messages");
  const messages = [...state.messages[state.who].values()].sort((a, b) => a.id - b.id);
  box.replaceChildren(...(messages.length ? messages.map((m) => drawMessage(state.who, m)) : [EMPTY]));
  drawTyping();
  scrollToEnd(true);
}

function upsert(who, message) {
  const messages = state.messages[who];
  const known = messages.has(message.id);
  messages.set(message.id, message);
  if (message.from_bot) state.typingSince[who] = 0;
  if (who !== state.who) {
    if (!known && message.from_bot) state.unread[who] += 1;
    drawBadge();
    return;
  }
  const box = $("messages");
  const follow = nearEnd();
  const node = drawMessage(who, message);
  const old = box.querySelector(`.msg[data-id="${message.id}"]`);
  if (old) {
    old.replaceWith(node);
  } else {
    EMPTY.remove();
    node.classList.add("new");
    const later = [...box.querySelectorAll(".msg[data-id]")].find((n) => Number(n.dataset.id) > message.id);
    box.insertBefore(node, later || null);
  }
  drawTyping();
  scrollToEnd(follow || !message.from_bot);
}

function drawBadge() {
  const other = state.who === "user" ? "admin" : "user";
  const badge = $("other-badge");
  badge.hidden = state.unread[other] === 0;
  badge.textContent = String(state.unread[other]);
  badge.title = `${state.unread[other]} new in the ${state.people[other]?.name ?? other} chat`;
}

function drawPerson() {
  const person = state.people[state.who];
  if (person) {
    const role = person.admin ? "admin (in BOT_ADMIN_IDS)" : "an ordinary user";
    $("subtitle").textContent = `local sandbox · you are ${role}, user id ${person.user_id}`;
  }
  const chips = $("commands");
  const commands = state.commands.map((c) => ({ ...c, admin: false }));
  if (person?.admin) commands.push(...state.adminCommands.map((c) => ({ ...c, admin: true })));
  chips.replaceChildren(
    ...commands.map((c) => {
      const chip = element("button", c.admin ? "chip admin" : "chip", `/${c.command}`);
      chip.type = "button";
      chip.title = c.description;
      chip.addEventListener("click", () => useCommand(c.command));
      return chip;
    }),
  );
  drawBadge();
}

let toastTimer = 0;
function toast(text, kind = "") {
  const node = $("toast");
  node.textContent = text;
  node.className = `toast ${kind}`;
  node.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    node.hidden = true;
  }, 3500);
}

function showAlert(text) {
  $("alert-text").textContent = text;
  $("alert").showModal();
}

// -- what the person does -------------------------------------------------------------------------

function setReply(message) {
  state.replyTo = message;
  $("reply-text").textContent = message.text ? message.text.split("\n")[0] : "a photo";
  $("replybar").hidden = false;
  $("text").focus();
}

function clearReply() {
  state.replyTo = null;
  $("replybar").hidden = true;
}

function expectAnswer(who) {
  state.typingSince[who] = Date.now();
  if (who === state.who) {
    drawTyping();
    scrollToEnd(true);
  }
}

async function sendText(text) {
  const who = state.who;
  const payload = { text, reply_to: state.replyTo ? state.replyTo.id : null };
  try {
    const { message } = await postJson(`/api/chats/${who}/text`, payload);
    clearReply();
    expectAnswer(who);
    upsert(who, message);
  } catch (error) {
    toast(error.message, "error");
  }
}

function useCommand(command) {
  if (NEEDS_ARGUMENTS.has(command)) {
    $("text").value = `/${command} `;
    $("text").focus();
  } else {
    sendText(`/${command}`);
  }
}

async function sendFile(file, name) {
  const who = state.who;
  if (file.size > state.maxUpload) {
    const mb = (n) => (n / 1024 / 1024).toFixed(1);
    toast(`That file is ${mb(file.size)} MB; the bot takes files up to ${mb(state.maxUpload)} MB.`, "error");
    return;
  }
  const form = new FormData();
  form.append("file", file, name || file.name || "image");
  expectAnswer(who);
  try {
    const { message } = await api(`/api/chats/${who}/upload`, { method: "POST", body: form });
    upsert(who, message);
  } catch (error) {
    state.typingSince[who] = 0;
    drawTyping();
    toast(error.message, "error");
  }
}

async function press(who, messageId, data, button) {
  button.disabled = true;
  try {
    const answer = await postJson(`/api/chats/${who}/press`, { message_id: messageId, data });
    if (!answer.answered) toast("The bot did not answer that tap.", "error");
    else if (answer.show_alert) showAlert(answer.text);
    else if (answer.text) toast(answer.text);
  } catch (error) {
    toast(error.message, "error");
  } finally {
    button.disabled = false;
  }
}

async function sendSample(sample) {
  $("samples").hidden = true;
  try {
    const response = await fetch(sample.url);
    if (!response.ok) throw new Error(`could not load the sample (${response.status})`);
    await sendFile(await response.blob(), sample.name);
  } catch (error) {
    toast(error.message, "error");
  }
}

function drawSamples(samples) {
  $("samples-button").hidden = samples.length === 0;
  $("samples-grid").replaceChildren(
    ...samples.map((sample) => {
      const button = element("button", "sample");
      button.type = "button";
      const img = element("img");
      img.src = sample.url;
      img.alt = `${sample.style} sample`;
      button.append(img, element("span", "", sample.name.replace(/\.\w+$/, "").replaceAll("-", " ")));
      button.addEventListener("click", () => sendSample(sample));
      return button;
    }),
  );
}

function wire() {
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("text").value.trim();
    if (!text) return;
    $("text").value = "";
    sendText(text);
  });
  $("attach").addEventListener("click", () => $("file").click());
  $("file").addEventListener("change", () => {
    for (const file of $("file").files) sendFile(file);
    $("file").value = "";
  });
  $("samples-button").addEventListener("click", () => {
    $("samples").hidden = !$("samples").hidden;
  });
  $("samples-close").addEventListener("click", () => {
    $("samples").hidden = true;
  });
  $("reply-cancel").addEventListener("click", clearReply);
  $("as-admin").addEventListener("change", (event) => {
    state.who = event.target.checked ? "admin" : "user";
    state.unread[state.who] = 0;
    clearReply();
    drawPerson();
    redraw();
  });

  let dragDepth = 0;
  const hasFiles = (event) => [...(event.dataTransfer?.types || [])].includes("Files");
  window.addEventListener("dragenter", (event) => {
    if (!hasFiles(event)) return;
    dragDepth += 1;
    $("dropzone").hidden = false;
  });
  window.addEventListener("dragleave", () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (dragDepth === 0) $("dropzone").hidden = true;
  });
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => {
    event.preventDefault();
    dragDepth = 0;
    $("dropzone").hidden = true;
    for (const file of event.dataTransfer?.files || []) sendFile(file);
  });
  window.addEventListener("paste", (event) => {
    for (const file of event.clipboardData?.files || []) sendFile(file);
  });
}

// -- news from the bot ----------------------------------------------------------------------------

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function poll() {
  for (;;) {
    try {
      const news = await api(`/api/updates?after=${state.rev}`);
      $("offline").hidden = true;
      for (const { chat, message } of news.messages) upsert(chat, message);
      state.rev = news.rev;
    } catch {
      $("offline").hidden = false;
      await sleep(1500);
    }
  }
}

async function start() {
  wire();
  for (;;) {
    try {
      const info = await api("/api/state");
      state.people = Object.fromEntries(info.people.map((p) => [p.key, p]));
      state.commands = info.commands;
      state.adminCommands = info.admin_commands;
      state.maxUpload = info.max_upload_bytes;
      $("bot-name").textContent = `${info.bot.name} bot`;
      drawSamples(info.samples);
      break;
    } catch {
      $("offline").hidden = false;
      await sleep(1500);
    }
  }
  drawPerson();
  poll();
}

start();
