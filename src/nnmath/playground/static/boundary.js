// The boundary view: the network's prediction over the input plane (computed by the server, one
// vectorised prediction over the lattice) with the train and test points on top.

import { CLASS_COLOURS, decodeBytes, hexToRgb } from "./state.js";

const lattice = document.createElement("canvas");

// Pixel colours of the lattice: a class's colour, paler where the network is less sure.
function latticeImage(boundary) {
  const n = boundary.grid;
  lattice.width = lattice.height = n;
  const context = lattice.getContext("2d");
  const image = context.createImageData(n, n);
  if (boundary.kind === "classes") {
    const labels = decodeBytes(boundary.label);
    const confidence = decodeBytes(boundary.confidence);
    const chance = 1 / boundary.classes;
    for (let p = 0; p < n * n; p++) {
      const rgb = hexToRgb(CLASS_COLOURS[labels[p] % CLASS_COLOURS.length]);
      const sure = Math.max(0, (confidence[p] / 255 - chance) / (1 - chance));
      setPixel(image, p, rgb.map((c) => 255 + (c - 255) * (0.15 + 0.55 * sure)));
    }
  } else {
    const values = decodeBytes(boundary.value);
    const [low, high] = [hexToRgb(CLASS_COLOURS[0]), hexToRgb(CLASS_COLOURS[1])];
    for (let p = 0; p < n * n; p++) {
      const t = values[p] / 255;
      setPixel(image, p, low.map((c, k) => 255 + ((1 - t) * c + t * high[k] - 255) * 0.6));
    }
  }
  context.putImageData(image, 0, 0);
  return lattice;
}

function setPixel(image, p, [r, g, b]) {
  image.data.set([r, g, b, 255], 4 * p);
}

function pointColour(data, y) {
  if (data.task === "classification") return CLASS_COLOURS[y % CLASS_COLOURS.length];
  const t = Math.max(0, Math.min(1, (y + 2) / 4)); // standardised targets: −2 … 2
  const [a, b] = [hexToRgb(CLASS_COLOURS[0]), hexToRgb(CLASS_COLOURS[1])];
  return `rgb(${a.map((c, k) => Math.round((1 - t) * c + t * b[k])).join(",")})`;
}

function drawPoints(context, data, part, ringed, scale) {
  const size = context.canvas.width;
  const [x0, x1, y0, y1] = data.extent;
  for (let s = 0; s < part.X.length; s++) {
    const [u, v] = part.X[s];
    const px = ((u - x0) / (x1 - x0)) * size;
    const py = ((y1 - v) / (y1 - y0)) * size;
    context.beginPath();
    context.arc(px, py, 3.2 * scale, 0, 2 * Math.PI);
    context.fillStyle = ringed ? "white" : pointColour(data, part.y[s]);
    context.strokeStyle = ringed ? pointColour(data, part.y[s]) : "white";
    context.lineWidth = ringed ? 2 : 1;
    context.fill();
    context.stroke();
  }
}

export function drawBoundary(frame, data) {
  const canvas = document.getElementById("boundary");
  const noPlane = !frame.boundary || !data.train.X;
  canvas.hidden = noPlane;
  document.getElementById("no-plane").hidden = !noPlane;
  document.querySelector("#output-panel .legend").hidden = noPlane;
  if (noPlane) return;
  const context = canvas.getContext("2d");
  context.imageSmoothingEnabled = true;
  context.drawImage(latticeImage(frame.boundary), 0, 0, canvas.width, canvas.height);
  const scale = canvas.width / 300;
  drawPoints(context, data, data.train, false, scale);
  drawPoints(context, data, data.test, true, scale);
}
