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

export function showSettings(settings, data) {
  const dataSelect = document.getElementById("data");
  const uploaded = [...dataSelect.options].find((option) => option.value === "upload");
  if (settings.data === "upload" && !uploaded) dataSelect.add(new Option(`upload: ${data.name}`, "upload"));
  if (settings.data !== "upload" && uploaded) uploaded.remove();
  for (const key of [...FIELDS, ...Object.keys(SELECTS)]) document.getElementById(key).value = settings[key];
  for (const key of ["points", "noise"]) document.getElementById(key).disabled = settings.data === "upload";
  const outputs = state.options.outputs;
  for (const option of document.getElementById("output").options) option.disabled = outputs[option.value] !== data.task;
  showLayers(settings);
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

export function bindLayers(onChange) {
  changeLayers = (layers) => onChange({ layers: joinLayers(layers) });
}

function layerControl(layers, index) {
  const box = document.createElement("div");
  box.className = "layer-control";
  const width = document.createElement("input");
  Object.assign(width, { type: "number", value: layers[index].width, title: "width (units)" });
  width.className = "width";
  width.addEventListener("change", () => changeLayers(layers.map((l, i) => (i === index ? { ...l, width: width.value } : l))));
  const activation = document.createElement("select");
  activation.className = "activation";
  for (const name of state.options.activations) activation.add(new Option(name, name));
  activation.value = layers[index].activation;
  activation.addEventListener("change", () => changeLayers(layers.map((l, i) => (i === index ? { ...l, activation: activation.value } : l))));
  box.append(width, activation);
  return box;
}

export function showLayers(settings) {
  const layers = parseLayers(settings.layers);
  const container = document.getElementById("layer-controls");
  const input = document.createElement("div");
  input.className = "layer-control fixed";
  input.textContent = "inputs";
  const output = document.createElement("div");
  output.className = "layer-control fixed";
  output.textContent = "output";
  const buttons = document.createElement("div");
  buttons.className = "layer-buttons";
  const add = Object.assign(document.createElement("button"), { textContent: "+ layer", title: "add a hidden layer" });
  const remove = Object.assign(document.createElement("button"), { textContent: "− layer", title: "remove the last hidden layer" });
  add.disabled = layers.length >= state.options.bounds.hidden_layers[1];
  remove.disabled = layers.length === 0;
  add.addEventListener("click", () => changeLayers([...layers, { width: 4, activation: layers.at(-1)?.activation || "tanh" }]));
  remove.addEventListener("click", () => changeLayers(layers.slice(0, -1)));
  buttons.append(add, remove);
  document.getElementById("layer-buttons").replaceChildren(buttons);
  container.replaceChildren(input, ...layers.map((_, i) => layerControl(layers, i)), output);
}
