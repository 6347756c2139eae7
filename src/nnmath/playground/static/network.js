// The network diagram: one column of neurons per layer, each neuron drawn as its own response over
// the input plane (computed by the server), each edge coloured by its weight's sign (blue +,
// orange −) and as thick as its size. Hover an edge: the weight and its gradient; click it: the
// chain rule (emitted as a "weight" event).

import { decodeBytes, diverging, emit, formatNumber } from "./state.js";

const HEIGHT = 440;
const SVG_NS = "http://www.w3.org/2000/svg";
let built = null; // {key, nodes: [[element]], edges: [[[path]]], size}

function layout(sizes, width) {
  const maxNodes = Math.max(...sizes);
  const size = Math.max(12, Math.min(34, Math.floor(HEIGHT / maxNodes) - 6));
  const gap = Math.min(size + 12, HEIGHT / maxNodes);
  const columns = sizes.map((_, l) => 30 + (l * (width - 60 - size)) / Math.max(1, sizes.length - 1));
  const position = (l, j) => [columns[l], HEIGHT / 2 + (j - (sizes[l] - 1) / 2) * gap - size / 2];
  return { size, position };
}

function nodeElement(l, j, size, imageSide, labels) {
  const node = document.createElement(imageSide ? "canvas" : "div");
  node.className = "neuron";
  node.dataset.layer = l;
  node.dataset.unit = j;
  if (imageSide) node.width = node.height = imageSide;
  else node.textContent = l === 0 ? labels[j] ?? `x${j}` : "";
  Object.assign(node.style, { width: `${size}px`, height: `${size}px` });
  return node;
}

function edgePath(svg, from, to, size, data) {
  const [x0, y0] = [from[0] + size, from[1] + size / 2];
  const [x1, y1] = [to[0], to[1] + size / 2];
  const middle = (x0 + x1) / 2;
  const d = `M${x0},${y0} C${middle},${y0} ${middle},${y1} ${x1},${y1}`;
  const path = document.createElementNS(SVG_NS, "path");
  path.setAttribute("d", d);
  path.setAttribute("class", "edge");
  const hit = document.createElementNS(SVG_NS, "path");
  hit.setAttribute("d", d);
  hit.setAttribute("class", "edge-hit");
  Object.assign(hit.dataset, data);
  svg.append(path, hit);
  return path;
}

function build(container, network, neurons, featureNames) {
  const width = container.clientWidth || 520;
  const { size, position } = layout(network.sizes, width);
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("width", width);
  svg.setAttribute("height", HEIGHT);
  const edges = network.sizes.slice(1).map((n, l) => Array.from({ length: n }, (_, j) =>
    Array.from({ length: network.sizes[l] }, (_, i) =>
      edgePath(svg, position(l, i), position(l + 1, j), size, { layer: l + 1, unit: j, input: i }))));
  const side = neurons ? neurons.grid : 0;
  const nodes = network.sizes.map((n, l) => Array.from({ length: n }, (_, j) => {
    const node = nodeElement(l, j, size, side, featureNames);
    const [x, y] = position(l, j);
    Object.assign(node.style, { left: `${x}px`, top: `${y}px` });
    return node;
  }));
  const tip = document.createElement("div");
  tip.id = "edge-tip";
  tip.hidden = true;
  container.replaceChildren(svg, ...nodes.flat(), tip);
  svg.addEventListener("mousemove", (event) => showTip(event, tip, container));
  svg.addEventListener("mouseleave", () => { tip.hidden = true; });
  svg.addEventListener("click", (event) => {
    const data = event.target.dataset;
    if (data.layer) emit("weight", { layer: +data.layer, unit: +data.unit, input: +data.input });
  });
  return { key: `${network.sizes}|${network.activations}|${side}`, nodes, edges, size };
}

function showTip(event, tip, container) {
  const data = event.target.dataset;
  if (!data.layer || !built.network) { tip.hidden = true; return; }
  const [l, j, i] = [+data.layer, +data.unit, +data.input];
  const w = built.network.W[l - 1][j][i], g = built.network.dW[l - 1][j][i];
  tip.innerHTML = `layer ${l}: input ${i + 1} → unit ${j + 1}<br>weight <b>${formatNumber(w, 5)}</b><br>`
    + `gradient ∂(C+P)/∂w <b>${formatNumber(g, 5)}</b><br><i>click for the chain rule</i>`;
  const box = container.getBoundingClientRect();
  Object.assign(tip.style, { left: `${event.clientX - box.left + 14}px`, top: `${event.clientY - box.top + 10}px` });
  tip.hidden = false;
}

function styleEdges(network) {
  const largest = Math.max(1e-9, ...network.W.flat(2).map(Math.abs));
  built.edges.forEach((layer, l) => layer.forEach((row, j) => row.forEach((path, i) => {
    const w = network.W[l][j][i];
    path.setAttribute("stroke", w >= 0 ? "#0877bd" : "#f59322");
    path.setAttribute("stroke-width", (0.4 + 4.6 * Math.abs(w) / largest).toFixed(2));
  })));
}

function paintInputs(nodes, side) {
  nodes.forEach((node, j) => {
    const context = node.getContext("2d");
    const image = context.createImageData(side, side);
    for (let r = 0; r < side; r++) for (let c = 0; c < side; c++) {
      const v = j === 0 ? (2 * c) / (side - 1) - 1 : 1 - (2 * r) / (side - 1); // x0 left→right, x1 bottom→top
      image.data.set([...diverging(v), 255], 4 * (r * side + c));
    }
    context.putImageData(image, 0, 0);
  });
}

function paintNeurons(neurons) {
  const side = neurons.grid;
  neurons.images.forEach((layer, l) => layer.forEach((encoded, j) => {
    const node = built.nodes[l + 1][j];
    const context = node.getContext("2d");
    const image = context.createImageData(side, side);
    const bytes = decodeBytes(encoded);
    for (let p = 0; p < bytes.length; p++) image.data.set([...diverging(bytes[p] / 127.5 - 1), 255], 4 * p);
    context.putImageData(image, 0, 0);
  }));
}

function describeNodes(network) {
  built.nodes.slice(1).forEach((layer, l) => layer.forEach((node, j) => {
    node.title = `layer ${l + 1} unit ${j + 1} (${network.activations[l]}): b = ${formatNumber(network.b[l][j], 5)}, `
      + `∂C/∂b = ${formatNumber(network.db[l][j], 5)}`;
  }));
}

export function drawNetwork(frame, data) {
  const container = document.getElementById("network");
  const network = frame.network;
  const side = frame.neurons ? frame.neurons.grid : 0;
  if (!built || built.key !== `${network.sizes}|${network.activations}|${side}`) {
    built = build(container, network, frame.neurons, data.features);
    if (side) paintInputs(built.nodes[0], side);
  }
  built.network = network;
  styleEdges(network);
  if (frame.neurons) paintNeurons(frame.neurons);
  describeNodes(network);
  highlightStage(frame.stage);
}

// Step-through: the layer of the current stage (forward l, backward l), the output (cost), or
// every edge (update).
export function highlightStage(stage) {
  if (!built) return;
  const K = built.edges.length;
  const layer = !stage ? -1 : stage.kind === "cost" ? K : stage.layer;
  built.nodes.forEach((column, l) => column.forEach((node) => node.classList.toggle("current", l === layer)));
  built.edges.forEach((rows, l) => rows.flat().forEach((path) => {
    const on = stage && (stage.kind === "update" || (stage.kind !== "cost" && l + 1 === stage.layer));
    path.classList.toggle("current", Boolean(on));
    path.classList.toggle("backward", Boolean(on && stage.kind === "backward"));
  }));
}
