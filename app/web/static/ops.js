// The dashboard's operations panel: the figures /metrics exports, read as JSON from
// /metrics/summary every few seconds, and a call's turns drawn as a waterfall (SVG) from
// /calls/{id}/waterfall: for each turn, end-of-turn wait → STT → planner → TTS → first audio.
import { api, ApiError, el } from "/static/api.js";

const POLL_MS = 5000;
const SVG_NS = "http://www.w3.org/2000/svg";
const STAGES = [
  ["end_of_turn_wait", "end-of-turn wait"],
  ["stt", "STT"],
  ["planner", "planner"],
  ["tts", "TTS first audio"],
  ["send", "hold + first frame"],
];
const LANE = 9; // px per stage lane
const GAP = 14; // px between turns
const LABEL_W = 190; // px for the turn's label, left of the bars
const NOTE_W = 90; // px for "v2v …", right of the bars

const box = document.getElementById("ops");
let shownCall = null;

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const ms = (value) => (value === null || value === undefined ? "–" : `${Math.round(value)} ms`);

function tile(label, value, detail = "", kind = "") {
  return el(
    "div",
    { class: `tile ${kind}`.trim(), "data-figure": label },
    el("div", { class: "tile-label" }, label),
    el("div", { class: "tile-value" }, value),
    detail ? el("div", { class: "tile-detail" }, detail) : null,
  );
}

function tiles(s) {
  const calls = s.calls;
  const channels = Object.entries(calls.by_channel)
    .filter(([, n]) => n > 0)
    .map(([channel, n]) => `${n} ${channel}`)
    .join(", ");
  const state = calls.draining ? "draining" : calls.full ? "full" : "taking calls";
  const v2v = s.voice_to_voice;
  const t = s.turns;
  return el(
    "div",
    { class: "tiles" },
    tile("calls", `${calls.active} / ${calls.capacity}`, `${channels || "none"} · ${state}`, calls.full || calls.draining ? "warn" : ""),
    tile("voice-to-voice p50", ms(v2v.p50_ms), `p95 ${ms(v2v.p95_ms)} · last ${v2v.n} turns`),
    tile("barge-ins", t.barge_ins, `${t.replies_cut} replies cut · ${t.turns_taken_back} taken back`),
    tile("rejected calls", s.rejected.full + s.rejected.draining, `${s.rejected.full} full · ${s.rejected.draining} draining · ${s.held} holds`, s.rejected.full ? "warn" : ""),
    tile("memory backlog", s.memory_backlog, "jobs queued or running"),
    tile("event-loop lag", ms(s.loop_lag_ms.latest), `worst in the last minute ${ms(s.loop_lag_ms.worst_minute)}`, s.loop_lag_ms.worst_minute > 100 ? "warn" : ""),
    tile("socket error closes", s.ws_error_closes, "by close code in /metrics"),
  );
}

function stageTable(stages) {
  const names = { ...Object.fromEntries(STAGES), tts_first_audio: "TTS first audio", memory_context_load: "memory load" };
  return el(
    "table",
    { class: "stage-table" },
    el("thead", {}, el("tr", {}, el("th", {}, "stage"), el("th", {}, "p50"), el("th", {}, "p95"), el("th", {}, "turns"))),
    el(
      "tbody",
      {},
      Object.entries(stages).map(([name, q]) =>
        el("tr", {}, el("td", {}, names[name] || name), el("td", { class: "mono" }, ms(q.p50_ms)), el("td", { class: "mono" }, ms(q.p95_ms)), el("td", { class: "mono" }, q.count)),
      ),
    ),
  );
}

function recentCalls(calls) {
  if (!calls.length) return el("p", { class: "empty" }, "No calls yet.");
  return el(
    "div",
    { class: "row recent-calls" },
    calls.map((c) =>
      el(
        "button",
        { type: "button", class: c.call_id === shownCall ? "secondary chosen" : "secondary", "data-waterfall": c.call_id, onclick: () => showWaterfall(c.call_id) },
        `${c.call_id.slice(0, 10)}… ${new Date(c.updated * 1000).toLocaleTimeString()}`,
      ),
    ),
  );
}

// ------------------------------------------------------------------ the waterfall

function niceStep(span) {
  for (const step of [50, 100, 250, 500, 1000, 2000, 5000, 10000]) if (span / step <= 8) return step;
  return 20000;
}

// One row per turn, one lane per stage, time from the caller's end of speech.
export function drawWaterfall(turns, width = 760) {
  const ends = turns.flatMap((t) => t.stages.map((s) => s.start_ms + s.ms).concat(t.voice_to_voice_ms || 0));
  const starts = turns.flatMap((t) => t.stages.map((s) => s.start_ms));
  const min = Math.min(0, ...starts);
  const max = Math.max(100, ...ends);
  const plot = width - LABEL_W - NOTE_W;
  const x = (value) => LABEL_W + ((value - min) / (max - min)) * plot;
  const rowH = STAGES.length * LANE;
  const top = 18;
  const height = top + turns.length * (rowH + GAP) + 4;
  const step = niceStep(max - min);
  const ticks = [];
  for (let v = Math.ceil(min / step) * step; v <= max; v += step) {
    ticks.push(
      svg("line", { x1: x(v), x2: x(v), y1: top - 4, y2: height, class: v === 0 ? "axis zero" : "axis" }),
      svg("text", { x: x(v), y: 11, class: "tick", "text-anchor": "middle" }, `${v} ms`),
    );
  }
  const rows = turns.map((turn, i) => {
    const y = top + i * (rowH + GAP);
    const label = `${turn.turn}. ${turn.text || `(${turn.outcome})`}`;
    const bars = STAGES.map(([name, title], lane) => {
      const stage = turn.stages.find((s) => s.stage === name);
      if (!stage) return null;
      return svg(
        "rect",
        { x: x(stage.start_ms), y: y + lane * LANE, width: Math.max(1.5, x(stage.start_ms + stage.ms) - x(stage.start_ms)), height: LANE - 2, class: `bar ${name}`, "data-stage": name },
        svg("title", {}, `${title}: ${Math.round(stage.ms)} ms (from ${Math.round(stage.start_ms)} ms)`),
      );
    });
    const v2v = turn.voice_to_voice_ms;
    return svg(
      "g",
      { class: `turn ${turn.outcome.replace(/ /g, "-")}`, "data-turn": turn.turn },
      svg("text", { x: 0, y: y + rowH / 2 + 4, class: "turn-label" }, label.length > 28 ? `${label.slice(0, 27)}…` : label, svg("title", {}, label)),
      bars,
      v2v !== null && v2v !== undefined ? svg("line", { x1: x(v2v), x2: x(v2v), y1: y - 2, y2: y + rowH, class: "v2v" }) : null,
      svg("text", { x: width - NOTE_W + 6, y: y + rowH / 2 + 4, class: "turn-note" }, v2v !== null && v2v !== undefined ? `v2v ${Math.round(v2v)} ms` : turn.outcome),
    );
  });
  return svg("svg", { class: "waterfall", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "per-turn waterfall" }, ticks, rows);
}

function legend() {
  return el(
    "div",
    { class: "legend" },
    STAGES.map(([name, title]) => el("span", {}, el("i", { class: `swatch ${name}` }), title)),
    el("span", {}, el("i", { class: "swatch v2v" }), "voice-to-voice"),
  );
}

export async function showWaterfall(callId) {
  shownCall = callId;
  const holder = document.getElementById("ops-waterfall");
  if (!holder) return;
  holder.replaceChildren(el("p", { class: "empty" }, `Loading ${callId}…`));
  try {
    const body = await api(`/calls/${encodeURIComponent(callId)}/waterfall`);
    const title = el("h3", {}, `Turns of ${callId}`);
    if (!body.turns.length) {
      holder.replaceChildren(title, el("p", { class: "empty" }, "No caller turns in this call."));
      return;
    }
    const width = Math.max(560, Math.min(1100, holder.clientWidth || 760));
    holder.replaceChildren(title, legend(), drawWaterfall(body.turns, width));
  } catch (err) {
    holder.replaceChildren(el("p", { class: "empty" }, err.message));
  }
}

// ------------------------------------------------------------------ polling

async function refresh() {
  let s;
  try {
    s = await api("/metrics/summary");
  } catch (err) {
    const why = err instanceof ApiError && err.status === 401 ? "Operations figures need the API key (enter it below)." : err.message;
    box.replaceChildren(el("h2", {}, "Operations"), el("p", { class: "empty" }, why));
    return;
  }
  let holder = document.getElementById("ops-waterfall");
  if (!holder) holder = el("div", { id: "ops-waterfall", class: "ops-waterfall" }, el("p", { class: "empty" }, "Pick a call to see its turns."));
  box.replaceChildren(
    el("h2", {}, "Operations"),
    tiles(s),
    el("details", { class: "ops-stages", open: true }, el("summary", {}, "Stage timings (latest turns)"), stageTable(s.stages)),
    el("h3", {}, "Per-call waterfall"),
    recentCalls(s.recent_calls),
    holder,
  );
}

if (box) {
  // A call's "Timeline" button in the caller panel also shows that call's waterfall here.
  document.addEventListener("click", (event) => {
    const button = event.target.closest("li[data-call] > button");
    if (button) showWaterfall(button.closest("li[data-call]").dataset.call);
  });
  refresh();
  setInterval(refresh, POLL_MS);
}
