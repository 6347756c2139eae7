// The settings form and the hidden-layer controls. A change is sent to the server as a partial
// settings object ({lr: "0.03"}, {layers: "8tanh-4relu"}); the server checks it and answers with
// the settings in effect, which showSettings puts back into the form.

import { state } from "./state.js";

const FIELDS = ["points", "noise", "test", "seed", "lr", "batch", "l2"];
const SELECTS = { data: "data", optimizer: "optimizers", output: "outputs", notation: "notations" };

function fillSelect(select, values) {
  select.replaceChildren(...values.map((value) => new Option(value, value)));
}

export function buildForm(options, onChange) {
  fillSelect(document.getElementById("data"), Object.keys(options.data));
  fillSelect(document.getElementById("optimizer"), options.optimizers);
  fillSelect(document.getElementById("output"), Object.keys(options.outputs));
  fillSelect(document.getElementById("notation"), options.notations);
  for (const key of FIELDS) {
    document.getElementById(key).addEventListener("change", (event) => onChange({ [key]: event.target.value }));
  }
  document.getElementById("data").addEventListener("change", (event) => {
    const name = event.target.value;
    const change = { data: name };
    if (name in options.data) change.noise = options.data[name]; // each set's own default noise
    onChange(change);
  });
  for (const key of ["optimizer", "output", "notation"]) {
    document.getElementById(key).addEventListener("change", (event) => onChange({ [key]: event.target.value }));
  }
}

// keepFocused leaves alone the field being typed in (an answer to an earlier change must not
// overwrite it); a refused change passes false, to put back the value in effect.
export function showSettings(settings, data, keepFocused = true) {
  const dataSelect = document.getElementById("data");
  const uploaded = [...dataSelect.options].find((option) => option.value === "upload");
  if (settings.data === "upload" && !uploaded) dataSelect.add(new Option(`upload: ${data.name}`, "upload"));
  if (settings.data !== "upload" && uploaded) uploaded.remove();
  for (const key of [...FIELDS, ...Object.keys(SELECTS)]) {
    const field = document.getElementById(key);
    if (!(keepFocused && field === document.activeElement)) field.value = settings[key];
  }
  for (const key of ["points", "noise"]) document.getElementById(key).disabled = settings.data === "upload";
  const outputs = state.options.outputs;
  for (const option of document.getElementById("output").options) option.disabled = outputs[option.value] !== data.task;
  if (!(keepFocused && document.getElementById("layer-controls").contains(document.activeElement))) {
    showLayers(settings);
  }
}

// ---- hidden layers: width and activation of each, add and remove ----------------------------

function parseLayers(text) {
  return text ? text.split("-").map((token) => {
    const match = /^(-?\d+)([a-z_]+)$/.exec(token);
    return match ? { width: match[1], activation: match[2] } : { width: token, activation: "tanh" };
  }) : [];
}

const joinLayers = (layers) => layers.map((layer) => `${layer.width}${layer.activation}`).join("-");

let changeLayers = () => {};

// edit(layers) returns the new layers; it runs on the layers in effect when the change is sent.
export function bindLayers(onChange) {
  changeLayers = (edit) => onChange((settings) => ({ layers: joinLayers(edit(parseLayers(settings.layers))) }));
}

function setLayer(index, field, value) {
  changeLayers((layers) => layers.map((layer, i) => (i === index ? { ...layer, [field]: value } : layer)));
}

function layerControl(layer, index) {
  const box = document.createElement("div");
  box.className = "layer-control";
  const width = document.createElement("input");
  Object.assign(width, { type: "number", value: layer.width, title: "width (units)" });
  width.className = "width";
  width.addEventListener("change", () => setLayer(index, "width", width.value));
  const activation = document.createElement("select");
  activation.className = "activation";
  for (const name of state.options.activations) activation.add(new Option(name, name));
  activation.value = layer.activation;
  activation.addEventListener("change", () => setLayer(index, "activation", activation.value));
  box.append(width, activation);
  return box;
}

function fixedControl(text) {
  const box = document.createElement("div");
  box.className = "layer-control fixed";
  box.textContent = text;
  return box;
}

export function showLayers(settings) {
  const layers = parseLayers(settings.layers);
  const add = Object.assign(document.createElement("button"), { textContent: "+ layer", title: "add a hidden layer" });
  const remove = Object.assign(document.createElement("button"), { textContent: "− layer", title: "remove the last hidden layer" });
  add.disabled = layers.length >= state.options.bounds.hidden_layers[1];
  remove.disabled = layers.length === 0;
  add.addEventListener("click", () => changeLayers((now) => [...now, { width: 4, activation: now.at(-1)?.activation || "tanh" }]));
  remove.addEventListener("click", () => changeLayers((now) => now.slice(0, -1)));
  const buttons = document.createElement("div");
  buttons.className = "layer-buttons";
  buttons.append(add, remove);
  document.getElementById("layer-buttons").replaceChildren(buttons);
  document.getElementById("layer-controls").replaceChildren(
    fixedControl("inputs"), ...layers.map(layerControl), fixedControl("output"));
}
