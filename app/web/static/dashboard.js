// The dashboard: callers and avatar users, their profile, memories, calls and each call's
// timeline, their text messages (in and out, with delivery status) beside the calls, a memory
// search, and "forget this caller". Everything comes from the memory API.
import { api, ApiError, apiKey, el, setApiKey, when } from "/static/api.js";

const AGENT = "tourline";
const $ = (id) => document.getElementById(id);
let callers = [];
let selected = null;

function status(text, kind = "") {
  $("status").textContent = text;
  $("status").className = "status " + kind;
}

function explain(err) {
  if (err instanceof ApiError && err.status === 401) {
    $("api-key").focus();
    return "This dashboard needs the API key: enter it above.";
  }
  return err.message;
}

// ------------------------------------------------------------------ the list

async function loadCallers() {
  try {
    const body = await api("/callers?limit=200");
    callers = body.callers;
    status(`${body.count} caller(s)`, "ok");
  } catch (err) {
    callers = [];
    status(explain(err), "error");
  }
  renderCallers();
}

function renderCallers() {
  const needle = $("filter").value.trim().toLowerCase();
  const shown = callers.filter(
    (c) => !needle || c.caller_id.toLowerCase().includes(needle) || (c.name || "").toLowerCase().includes(needle),
  );
  $("callers").replaceChildren(
    ...shown.map((c) =>
      el(
        "li",
        {
          class: c.caller_id === selected ? "selected" : "",
          "data-caller": c.caller_id,
          onclick: () => select(c.caller_id),
        },
        el("strong", {}, c.name || "(no name)"),
        el("div", { class: "id" }, c.caller_id),
        el("div", {}, c.channels.map((ch) => el("span", { class: "badge" }, ch)), ` ${c.calls} call(s), last ${when(c.last_call_at)}`),
      ),
    ),
  );
  if (!shown.length) $("callers").append(el("li", { class: "empty" }, "No callers."));
}

// ------------------------------------------------------------------ one caller

async function select(callerId) {
  selected = callerId;
  renderCallers();
  const box = $("detail");
  box.replaceChildren(el("p", { class: "empty" }, "Loading…"));
  let caller;
  try {
    caller = await api(`/callers/${encodeURIComponent(callerId)}`);
  } catch (err) {
    box.replaceChildren(el("p", { class: "empty" }, explain(err)));
    return;
  }
  const facts = caller.facts || [];
  const booking = caller.upcoming_booking;
  const parts = [
    el(
      "div",
      { class: "row" },
      el("h2", { id: "caller-name", class: "grow", style: "margin:0" }, caller.name || "(no name)"),
      el("button", { id: "forget", class: "danger", onclick: () => forget(caller.caller_id) }, "Forget this caller"),
    ),
    el("p", { class: "mono" }, caller.caller_id),
    el("h3", {}, "Profile"),
    facts.length
      ? el("ul", { id: "profile" }, facts.map((f) => el("li", {}, f.text)))
      : el("p", { class: "empty" }, "Nothing known yet."),
    booking
      ? el("p", {}, `Upcoming tour: ${booking.property_id}, ${when(booking.start)}, code ${booking.confirmation_code}`)
      : null,
    el("h3", {}, "Memories"),
    el(
      "form",
      { id: "search-form", class: "row", onsubmit: (event) => search(event, caller.caller_id) },
      el("input", { id: "search", type: "search", class: "grow", placeholder: "Search this caller's memories" }),
      el("button", { type: "submit", class: "secondary" }, "Search"),
    ),
    el("ul", { id: "memories" }, memoryItems(caller.memories || [])),
    el(
      "div",
      { class: "beside", style: "display:grid;grid-template-columns:repeat(auto-fit,minmax(20rem,1fr));gap:1rem" },
      el("div", {}, el("h3", {}, "Recent calls"), el("ul", { class: "calls" }, (caller.calls || []).map(callItem))),
      el(
        "div",
        {},
        el("h3", {}, "Messages"),
        caller.texts_opted_out ? el("p", { id: "opted-out", class: "hint" }, "Opted out of texts (STOP): nothing is sent until they text START.") : null,
        el("ul", { id: "messages", class: "calls" }, messageItems(caller.messages || [])),
      ),
    ),
  ];
  box.replaceChildren(...parts.filter(Boolean));
}

function memoryItems(rows, scored = false) {
  if (!rows.length) return [el("li", { class: "empty" }, scored ? "No memory matches." : "No memories yet.")];
  return rows.map((m) =>
    el(
      "li",
      {},
      m.memory || m.text,
      " ",
      el("span", { class: "badge" }, m.kind || (m.metadata && m.metadata.kind) || "memory"),
      scored && m.score != null ? el("span", { class: "score" }, ` score ${m.score.toFixed(3)}`) : null,
    ),
  );
}

async function search(event, callerId) {
  event.preventDefault();
  const query = $("search").value.trim();
  try {
    const path = `/memory/search/${encodeURIComponent(callerId)}/${AGENT}?limit=10&query=${encodeURIComponent(query)}`;
    const body = await api(path);
    $("memories").replaceChildren(...memoryItems(body.results, Boolean(query)));
  } catch (err) {
    $("memories").replaceChildren(el("li", { class: "empty" }, explain(err)));
  }
}

// Text channels have no audio timeline: their messages are listed beside the calls.
const TEXT_CHANNELS = ["sms", "whatsapp"];
const STATUS_KIND = { failed: "error", skipped: "error", sent: "ok", replied: "ok", received: "ok" };

function messageItems(rows) {
  if (!rows.length) return [el("li", { class: "empty" }, "No text messages.")];
  return rows.map((m) =>
    el(
      "li",
      { "data-message": m.direction, "data-status": m.status },
      el("span", { class: "badge" }, m.channel || "?"),
      ` ${m.direction === "in" ? "from caller" : "to caller"} · ${m.kind} · ${when(m.at)} `,
      el("span", { class: "status " + (STATUS_KIND[m.status] || "") }, m.status),
      m.text ? el("div", {}, m.text) : null,
      m.error ? el("div", { class: "hint" }, `Error: ${m.error}`) : null,
    ),
  );
}

function callItem(call) {
  if (TEXT_CHANNELS.includes(call.channel)) {
    return el(
      "li",
      { "data-call": call.call_id },
      el("span", { class: "badge" }, call.channel),
      ` ${when(call.started_at)} · ${call.exchanges} message(s) · ${call.outcome || "open"}`,
      call.summary ? el("div", { class: "hint" }, call.summary) : null,
    );
  }
  const holder = el("div", { class: "timeline" });
  const toggle = el("button", { class: "secondary", type: "button" }, "Timeline");
  toggle.addEventListener("click", () => showTimeline(call.call_id, holder, toggle));
  return el(
    "li",
    { "data-call": call.call_id },
    el("span", { class: "badge" }, call.channel),
    ` ${when(call.started_at)} · ${call.exchanges} exchange(s) · ${call.outcome || "in progress"} `,
    toggle,
    call.summary ? el("div", { class: "hint" }, call.summary) : null,
    holder,
  );
}

const SHOWN_FIELDS = ["text", "reason", "caller", "trigger", "ms", "ms_since_speech_end", "interrupted", "code"];

async function showTimeline(callId, holder, toggle) {
  if (holder.childElementCount) {
    holder.replaceChildren();
    toggle.textContent = "Timeline";
    return;
  }
  try {
    const body = await api(`/calls/${encodeURIComponent(callId)}/timeline`);
    holder.replaceChildren(
      el(
        "table",
        {},
        el("thead", {}, el("tr", {}, el("th", {}, "ms"), el("th", {}, "event"), el("th", {}, "details"))),
        el(
          "tbody",
          {},
          body.events.map((e) =>
            el(
              "tr",
              {},
              el("td", { class: "mono" }, Math.round(e.t_ms)),
              el("td", {}, e.event),
              el("td", {}, SHOWN_FIELDS.filter((k) => e[k] !== undefined && e[k] !== null).map((k) => `${k}: ${JSON.stringify(e[k])}`).join(" · ")),
            ),
          ),
        ),
      ),
    );
    toggle.textContent = "Hide timeline";
  } catch (err) {
    holder.replaceChildren(el("p", { class: "empty" }, explain(err)));
  }
}

async function forget(callerId) {
  if (!confirm(`Forget ${callerId}? Everything remembered about them is deleted and their tours are cancelled.`)) return;
  try {
    const removed = await api(`/callers/${encodeURIComponent(callerId)}`, { method: "DELETE" });
    selected = null;
    $("detail").replaceChildren(
      el("p", { id: "forgotten" }, `${callerId} was forgotten.`),
      el(
        "p",
        { class: "hint" },
        `Removed ${removed.calls} call(s), ${removed.exchanges} exchange(s), ${removed.memories} memory(ies), ` +
          `${removed.recordings} timeline(s); cancelled ${removed.bookings_cancelled} tour(s).`,
      ),
    );
  } catch (err) {
    status(explain(err), "error");
  }
  await loadCallers();
}

// ------------------------------------------------------------------ wiring

$("api-key").value = apiKey();
$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  setApiKey($("api-key").value.trim());
  loadCallers();
});
$("filter").addEventListener("input", renderCallers);
$("reload").addEventListener("click", loadCallers);
loadCallers();
