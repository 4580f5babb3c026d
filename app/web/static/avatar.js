// The browser avatar client: WS /avatar (docs/avatar-protocol.md) with a press-to-talk mic,
// Web Audio playback that reports "played" marks, a live transcript and the memory panel.
// Who is talking: this browser as an anonymous device by default, or the caller of a pasted
// token (signed by the site that knows who its user is). The admin API key is never needed.
import { el, when } from "/static/api.js";

const RATE = 16000; // what we ask the server for, both ways (the mic context runs at it too)
const PING_MS = 20000;
const DEVICE_STORE = "tourline.deviceId";
const TOKEN_STORE = "tourline.avatarToken";
const MEMORY_REFRESH_MS = 1000; // the server answers a few memory requests a second
const $ = (id) => document.getElementById(id);

const s = {
  ws: null,
  ctx: null,
  userId: null,
  inputRate: RATE,
  outputRate: RATE,
  talking: false,
  mic: null, // { stream, node }
  micPending: null,
  nextTime: 0, // when the queued agent audio ends (AudioContext time)
  sources: new Set(),
  marks: [], // [{ name, at }]
  markTimer: null,
  pinger: null,
  memoryTimer: null,
  liveUserLine: null,
  agentLines: new Map(), // reply number -> <li>
};

// ------------------------------------------------------------------ who is talking

function deviceId() {
  let id = localStorage.getItem(DEVICE_STORE);
  if (!id) {
    const random = crypto.getRandomValues(new Uint8Array(8));
    id = "web-" + Array.from(random, (b) => b.toString(16).padStart(2, "0")).join("");
    localStorage.setItem(DEVICE_STORE, id);
  }
  return id;
}

function token() {
  return localStorage.getItem(TOKEN_STORE) || "";
}

function setToken(value) {
  if (value) localStorage.setItem(TOKEN_STORE, value);
  else localStorage.removeItem(TOKEN_STORE);
  showIdentity();
}

// Who the next conversation will be as: the token's caller, or this browser.
function showIdentity() {
  $("identity").textContent = token()
    ? "the caller named in your token"
    : `this browser, anonymously (device ${deviceId()})`;
}

// ------------------------------------------------------------------ status and transcript

function status(text, kind = "") {
  const node = $("status");
  node.textContent = text;
  node.className = "status " + kind;
}

function line(kind, who, text) {
  const item = el("li", { class: kind }, el("span", { class: "who" }, who), el("span", { class: "text" }, text));
  $("transcript").append(item);
  item.scrollIntoView({ block: "end" });
  return item;
}

function setText(item, text) {
  item.querySelector(".text").textContent = text;
}

function onTranscript(message) {
  if (message.source === "text") {
    line("user final typed", "You (typed)", message.text);
    return;
  }
  if (!s.liveUserLine) s.liveUserLine = line("user partial", "You", message.text);
  else setText(s.liveUserLine, message.text);
  if (message.final) {
    s.liveUserLine.classList.remove("partial");
    s.liveUserLine.classList.add("final");
    s.liveUserLine = null;
    scheduleMemoryRefresh();
  }
}

function onAgentText(message) {
  const reply = String(message.mark || "").split(".")[0];
  const existing = s.agentLines.get(reply);
  if (existing) setText(existing, existing.querySelector(".text").textContent + " " + message.text);
  else s.agentLines.set(reply, line("agent", "Agent", message.text));
  scheduleMemoryRefresh();
}

// ------------------------------------------------------------------ agent audio

function playAudio(buffer) {
  const pcm = new Int16Array(buffer);
  if (!pcm.length || !s.ctx) return;
  const samples = new Float32Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) samples[i] = pcm[i] / 32768;
  const audio = s.ctx.createBuffer(1, samples.length, s.outputRate);
  audio.copyToChannel(samples, 0);
  const source = s.ctx.createBufferSource();
  source.buffer = audio;
  source.connect(s.ctx.destination);
  const at = Math.max(s.ctx.currentTime + 0.03, s.nextTime);
  source.start(at);
  s.nextTime = at + audio.duration;
  s.sources.add(source);
  source.onended = () => {
    s.sources.delete(source);
    updateSpeaking();
  };
  updateSpeaking();
}

function onMark(name) {
  s.marks.push({ name, at: Math.max(s.nextTime, s.ctx ? s.ctx.currentTime : 0) });
  scheduleMarks();
}

// Report each mark when playback reaches it: the server learns what was actually heard.
function scheduleMarks() {
  clearTimeout(s.markTimer);
  if (!s.marks.length || !s.ctx) return;
  const now = s.ctx.currentTime;
  while (s.marks.length && s.marks[0].at <= now + 0.005) {
    send({ type: "played", mark: s.marks.shift().name });
  }
  if (s.marks.length) {
    s.markTimer = setTimeout(scheduleMarks, Math.max(5, (s.marks[0].at - now) * 1000));
  } else {
    updateSpeaking();
    scheduleMemoryRefresh();
  }
}

function stopPlayback() {
  for (const source of s.sources) {
    try {
      source.stop();
    } catch (_) {
      /* already stopped */
    }
  }
  s.sources.clear();
  s.marks = []; // cut audio is not reported as played
  clearTimeout(s.markTimer);
  s.nextTime = s.ctx ? s.ctx.currentTime : 0;
  updateSpeaking();
}

function updateSpeaking() {
  $("speaking").classList.toggle("on", s.sources.size > 0);
}

// ------------------------------------------------------------------ microphone

async function ensureMic() {
  if (s.mic) return s.mic;
  if (!s.micPending) {
    s.micPending = (async () => {
      const stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
      await s.ctx.audioWorklet.addModule("/static/mic-worklet.js");
      const source = s.ctx.createMediaStreamSource(stream);
      const node = new AudioWorkletNode(s.ctx, "pcm16-capture");
      const mute = s.ctx.createGain();
      mute.gain.value = 0;
      node.port.onmessage = (event) => {
        // A continuous stream, like a phone line: silence while the button is up, so the
        // server's turn-taking sees the pause that ends a turn.
        send(s.talking ? event.data : new ArrayBuffer(event.data.byteLength));
      };
      source.connect(node);
      node.connect(mute).connect(s.ctx.destination);
      s.mic = { stream, node, source };
      return s.mic;
    })();
  }
  try {
    return await s.micPending;
  } catch (err) {
    s.micPending = null;
    throw err;
  }
}

async function startTalking() {
  if (s.talking || !isOpen()) return;
  s.talking = true;
  $("talk").classList.add("active");
  $("talk").textContent = "Listening… release when done";
  try {
    await ensureMic();
    status("Listening", "ok");
  } catch (err) {
    stopTalking();
    status(`Microphone unavailable: ${err.message}`, "error");
  }
}

function stopTalking() {
  if (!s.talking) return;
  s.talking = false;
  $("talk").classList.remove("active");
  $("talk").textContent = "Hold to talk";
  if (isOpen()) status("Connected", "ok");
}

function releaseMic() {
  if (!s.mic) return;
  s.mic.stream.getTracks().forEach((track) => track.stop());
  s.mic.source.disconnect();
  s.mic.node.disconnect();
  s.mic = null;
  s.micPending = null;
}

// ------------------------------------------------------------------ the socket

function isOpen() {
  return s.ws && s.ws.readyState === WebSocket.OPEN;
}

function send(message) {
  if (!isOpen()) return;
  s.ws.send(message instanceof ArrayBuffer ? message : JSON.stringify(message));
}

async function start() {
  if (s.ws) return;
  s.ctx = s.ctx || new AudioContext({ sampleRate: RATE });
  await s.ctx.resume();
  s.inputRate = s.ctx.sampleRate;
  s.agentLines.clear();
  s.liveUserLine = null;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/avatar`);
  ws.binaryType = "arraybuffer";
  s.ws = ws;
  status("Connecting…");
  $("start").disabled = true;
  ws.onopen = () => {
    const hello = {
      type: "hello",
      audio: { format: "pcm16", sample_rate: s.inputRate, channels: 1 },
      output_audio: { format: "pcm16", sample_rate: RATE },
      playback_marks: true,
      client: "tourline-web/1",
    };
    // A token names the caller; without one this browser is an anonymous device.
    if (token()) hello.token = token();
    else hello.user = { device_id: deviceId() };
    ws.send(JSON.stringify(hello));
  };
  ws.onmessage = (event) => {
    if (event.data instanceof ArrayBuffer) playAudio(event.data);
    else handle(JSON.parse(event.data));
  };
  ws.onclose = (event) => closed(event);
}

function handle(message) {
  switch (message.type) {
    case "ready":
      s.userId = message.user_id;
      $("identity").textContent = message.user_id;
      s.outputRate = message.output_audio.sample_rate;
      status(message.returning ? `Welcome back${message.name ? ", " + message.name : ""}` : "Connected", "ok");
      setControls(true);
      s.pinger = setInterval(() => send({ type: "ping" }), PING_MS);
      refreshMemory();
      break;
    case "transcript":
      onTranscript(message);
      break;
    case "agent_text":
      onAgentText(message);
      break;
    case "mark":
      onMark(message.name);
      break;
    case "interrupted": {
      stopPlayback();
      const last = Array.from(s.agentLines.values()).pop();
      if (last) last.classList.add("cut");
      break;
    }
    case "conversation_ended":
      line("system", "", "The agent ended the conversation.");
      break;
    case "error":
      status(`${message.code}: ${message.message}`, "error");
      line("system", "", `Error (${message.code}): ${message.message}`);
      break;
    case "memory":
      renderMemory($("memory"), message.caller);
      break;
    case "ping":
      send({ type: "pong" });
      break;
    default:
      break; // pong, and anything newer than this page
  }
}

function closed(event) {
  clearInterval(s.pinger);
  stopTalking();
  releaseMic();
  s.ws = null;
  setControls(false);
  const why = event.reason ? `: ${event.reason}` : "";
  const kind = event.code === 1000 ? "" : "error";
  status(`Disconnected (${event.code}${why})`, kind);
  showIdentity();
}

function setControls(connected) {
  for (const id of ["talk", "typed", "send"]) $(id).disabled = !connected;
  $("start").disabled = connected;
  $("start").hidden = connected;
  $("end").hidden = !connected;
  $("token").disabled = connected;
  $("save-token").disabled = connected;
}

// ------------------------------------------------------------------ memory panel

function scheduleMemoryRefresh() {
  clearTimeout(s.memoryTimer);
  s.memoryTimer = setTimeout(refreshMemory, MEMORY_REFRESH_MS);
}

// Asked over the socket: it already knows who we are, so no API key is needed to see it.
function refreshMemory() {
  if (isOpen() && s.userId) send({ type: "memory" });
}

function renderMemory(box, caller) {
  if (!caller) {
    box.replaceChildren(el("p", { class: "empty" }, "Nothing remembered yet."));
    return;
  }
  const facts = caller.facts || [];
  const memories = (caller.memories || []).filter((m) => m.kind !== "fact" && m.kind !== "summary");
  const summaries = (caller.memories || []).filter((m) => m.kind === "summary");
  const booking = caller.upcoming_booking;
  const conversations = el("p", { class: "hint" }, `${(caller.calls || []).length} conversation(s) as ${caller.caller_id}`);
  if (!facts.length && !memories.length && !summaries.length && !booking && !caller.name) {
    box.replaceChildren(el("p", { class: "empty" }, "Nothing remembered yet."), conversations);
    return;
  }
  const parts = [
    el("h3", { id: "memory-name" }, caller.name || "(no name yet)"),
    el("div", { class: "label" }, "Known facts"),
    facts.length
      ? el("ul", { id: "memory-facts" }, facts.map((f) => el("li", { "data-slot": f.slot }, f.text)))
      : el("p", { class: "empty" }, "None yet."),
    booking
      ? [
          el("div", { class: "label" }, "Upcoming tour"),
          el("p", {}, `${booking.property_id}, ${when(booking.start)} (code ${booking.confirmation_code})`),
        ]
      : null,
    memories.length
      ? [el("div", { class: "label" }, "Memories"), el("ul", {}, memories.map((m) => el("li", {}, m.memory)))]
      : null,
    summaries.length
      ? [el("div", { class: "label" }, "Last conversation"), el("p", {}, summaries[summaries.length - 1].memory)]
      : null,
    conversations,
  ];
  box.replaceChildren(...parts.flat().filter(Boolean));
}

// ------------------------------------------------------------------ wiring

function wire() {
  $("token").value = token();
  showIdentity();
  $("save-token").addEventListener("click", () => setToken($("token").value.trim()));
  $("start").addEventListener("click", () => start().catch((err) => status(err.message, "error")));
  $("end").addEventListener("click", () => {
    send({ type: "bye" });
    stopPlayback();
  });
  const talk = $("talk");
  talk.addEventListener("pointerdown", (event) => {
    talk.setPointerCapture(event.pointerId);
    startTalking();
  });
  for (const name of ["pointerup", "pointercancel", "lostpointercapture"]) {
    talk.addEventListener(name, stopTalking);
  }
  const typing = (event) => event.target instanceof HTMLInputElement;
  document.addEventListener("keydown", (event) => {
    if (event.code === "Space" && !event.repeat && !typing(event) && !talk.disabled) {
      event.preventDefault();
      startTalking();
    }
  });
  document.addEventListener("keyup", (event) => {
    if (event.code === "Space" && !typing(event)) stopTalking();
  });
  $("type-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("typed").value.trim();
    if (!text) return;
    send({ type: "text", text });
    $("typed").value = "";
  });
  $("refresh-memory").addEventListener("click", refreshMemory);
}

wire();
