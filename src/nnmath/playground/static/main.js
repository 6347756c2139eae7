// The page's wiring: start a session from the address, send the buttons and settings to the
// server, and hand each frame to the views (boundary, curves, network, mathematics).

import { call, openStream, sessionPath } from "./api.js";
import { drawBoundary } from "./boundary.js";
import { bindLayers, buildForm, showSettings } from "./controls.js";
import { drawCurves } from "./curves.js";
import { highlightEquations, showDocument, showVerdict, showVerdictError, showWeight } from "./math.js";
import { drawNetwork } from "./network.js";
import { on, settingsFromAddress, state, writeAddress } from "./state.js";

const MATH_INTERVAL = 1500; // ms between refreshes of the mathematics while training runs

// ---- messages ----------------------------------------------------------------------------------

let messageTimer = null;

function showMessage(text, kind = "error") {
  const box = document.getElementById("message");
  box.textContent = text;
  box.className = kind;
  box.hidden = false;
  clearTimeout(messageTimer);
  messageTimer = setTimeout(() => { box.hidden = true; }, kind === "error" ? 20000 : 4000);
}

function hideMessage() {
  document.getElementById("message").hidden = true;
}

async function attempt(work) {
  try {
    return await work();
  } catch (error) {
    showMessage(error.message);
    return null;
  }
}

// ---- settings ------------------------------------------------------------------------------------

function adopt(answer) {
  state.session = answer.id;
  state.settings = answer.settings;
  state.data = answer.data;
  writeAddress(answer.settings);
  showSettings(answer.settings, answer.data);
  for (const link of document.querySelectorAll("[data-download]")) {
    link.href = `${sessionPath(state.session, `download/${link.dataset.download}`)}?notation=${answer.settings.notation}`;
    link.download = "";
  }
}

// Changes go to the server one at a time, in order, so that a slow answer never overwrites the
// form with settings older than the last change. A change may be a function of the settings in
// effect when its turn comes (the hidden layers are edited that way).
let settingsQueue = Promise.resolve();

function changeSettings(change) {
  settingsQueue = settingsQueue.then(async () => {
    try {
      const body = typeof change === "function" ? change(state.settings) : change;
      adopt(await call("POST", sessionPath(state.session, "settings"), body));
      hideMessage();
    } catch (error) {
      showMessage(error.message);
      showSettings(state.settings, state.data, false); // the form shows the settings in effect
    }
  });
  return settingsQueue;
}

async function upload(file) {
  if (file.size > state.options.max_upload_bytes) {
    showMessage(`${file.name} has ${file.size} bytes; the playground takes CSV files of at most ${state.options.max_upload_bytes / 1024} KiB`);
    return;
  }
  const path = `${sessionPath(state.session, "upload")}?name=${encodeURIComponent(file.name)}`;
  const answer = await attempt(async () => call("POST", path, await file.text(), "text/csv"));
  if (answer) {
    adopt(answer);
    showMessage(`${file.name}: ${answer.data.train.count} training and ${answer.data.test.count} test rows`, "info");
  }
}

// ---- frames ----------------------------------------------------------------------------------------

function onFrame(frame) {
  state.frame = frame;
  document.getElementById("step-count").textContent = frame.step;
  document.getElementById("epoch-count").textContent = frame.epoch;
  document.getElementById("play").textContent = frame.playing ? "❚❚ pause" : "▶ play";
  document.getElementById("stage-label").textContent = frame.stage ? `stage: ${frame.stage.label}` : "";
  drawBoundary(frame, state.data);
  drawCurves(frame);
  drawNetwork(frame, state.data);
  highlightEquations(frame.stage);
  if (frame.message) showMessage(frame.message);
  document.body.dataset.version = frame.version;
  document.body.dataset.playing = frame.playing;
  scheduleMath();
}

async function control(action) {
  const frame = await attempt(() => call("POST", sessionPath(state.session, "control"), { action }));
  if (frame) onFrame(frame);
}

// ---- the mathematics: refreshed on every change when paused, every MATH_INTERVAL while playing ----

const math = { busy: false, shown: null, last: 0, timer: null, weight: null };

function scheduleMath() {
  const frame = state.frame;
  const key = `${frame.version}|${state.settings.notation}`;
  if (math.busy || math.shown === key) return;
  const wait = frame.playing ? MATH_INTERVAL - (performance.now() - math.last) : 0;
  clearTimeout(math.timer);
  if (wait > 0) {
    math.timer = setTimeout(scheduleMath, wait);
    return;
  }
  math.busy = true;
  const notation = state.settings.notation;
  attempt(async () => {
    let document_ = await fetchMath(notation, "auto");
    // A large network's checks take seconds: show the values first, then the checks, if paused.
    if (!document_.checked && !state.frame.playing && state.frame.version === document_.version) {
      document_ = await fetchMath(notation, "all");
    }
    if (math.weight) await showChainRule(math.weight);
  }).finally(() => {
    math.busy = false;
    math.last = performance.now();
    if (math.shown !== key) scheduleMath();
  });
}

async function fetchMath(notation, checks) {
  const query = new URLSearchParams({ notation, checks });
  const document_ = await call("GET", `${sessionPath(state.session, "math")}?${query}`);
  showDocument(document_, state.frame.playing);
  highlightEquations(state.frame.stage);
  document.getElementById("derivation").dataset.version = document_.version;
  document.getElementById("derivation").dataset.checked = document_.checked;
  math.shown = `${document_.version}|${notation}`;
  return document_;
}

async function showChainRule(weight) {
  math.weight = weight;
  const query = new URLSearchParams({ ...weight, notation: state.settings.notation });
  const answer = await attempt(() => call("GET", `${sessionPath(state.session, "weight")}?${query}`));
  if (answer) showWeight(answer, () => { math.weight = null; document.getElementById("weight-breakdown").hidden = true; });
}

async function checkFormula(event) {
  event.preventDefault();
  const formula = document.getElementById("formula").value;
  try {
    showVerdict(await call("POST", sessionPath(state.session, "check"), { formula, notation: state.settings.notation }));
  } catch (error) {
    showVerdictError(error.message);
  }
}

// ---- start ---------------------------------------------------------------------------------------

function bindButtons() {
  document.getElementById("play").addEventListener("click", () => control(state.frame?.playing ? "pause" : "play"));
  for (const action of ["step", "reset", "stage"]) {
    document.getElementById(action).addEventListener("click", () => control(action));
  }
  document.getElementById("share").addEventListener("click", async () => {
    await attempt(() => navigator.clipboard.writeText(location.href));
    showMessage("Link copied: it reproduces this experiment", "info");
  });
  document.getElementById("upload").addEventListener("change", (event) => {
    if (event.target.files[0]) upload(event.target.files[0]);
    event.target.value = "";
  });
  document.getElementById("check-form").addEventListener("submit", checkFormula);
  on("weight", showChainRule);
}

async function start() {
  state.options = await call("GET", "/api/options");
  buildForm(state.options, changeSettings);
  bindLayers(changeSettings);
  const answer = await call("POST", "/api/sessions", settingsFromAddress(state.options.defaults));
  adopt(answer);
  if (answer.error) showMessage(`${answer.error}. Started from the default settings instead.`);
  bindButtons();
  openStream(state.session, onFrame, (reason) => showMessage(`${reason}; reload the page to start again`));
}

start().catch((error) => showMessage(error.message));
