// Loss and accuracy (or R²) on the train and test splits, as the server recorded them per epoch,
// and the current values in the table.

import { formatNumber } from "./state.js";

const TRAIN = "#555", TEST = "#0877bd";

function plot(context, box, history, key, range, label) {
  const [left, labelTop, width, fullHeight] = box;
  context.fillStyle = "#666";
  context.font = "11px system-ui, sans-serif";
  context.fillText(label, left, labelTop + 10);
  const [top, height] = [labelTop + 14, fullHeight - 14];
  context.strokeStyle = "#ddd";
  context.strokeRect(left, top, width, height);
  if (history.length < 2) return;
  const [low, high] = range;
  const steps = history.map((point) => point.step);
  const [first, last] = [steps[0], steps.at(-1) || 1];
  for (const [part, colour] of [["train", TRAIN], ["test", TEST]]) {
    context.beginPath();
    context.strokeStyle = colour;
    context.lineWidth = 1.5;
    history.forEach((point, i) => {
      const value = Math.min(high, Math.max(low, point[`${part}_${key}`]));
      const x = left + ((point.step - first) / Math.max(1, last - first)) * width;
      const y = top + height - ((value - low) / (high - low || 1)) * height;
      if (i === 0) context.moveTo(x, y);
      else context.lineTo(x, y);
    });
    context.stroke();
  }
}

export function drawCurves(frame) {
  const canvas = document.getElementById("curves");
  const context = canvas.getContext("2d");
  context.clearRect(0, 0, canvas.width, canvas.height);
  const history = frame.history;
  const metric = "train_accuracy" in frame.metrics ? "accuracy" : "r2";
  const losses = history.flatMap((p) => [p.train_loss, p.test_loss]).filter(Number.isFinite);
  const top = Math.max(1e-9, ...losses);
  plot(context, [1, 0, canvas.width - 2, 82], history, "loss", [0, top], "loss: train (grey), test (blue), per epoch");
  const range = metric === "accuracy" ? [0, 1] : [Math.min(0, ...history.map((p) => p.test_r2)), 1];
  plot(context, [1, 87, canvas.width - 2, 82], history, metric, range, metric === "accuracy" ? "accuracy" : "R²");
  showMetrics(frame.metrics, metric);
}

function showMetrics(metrics, metric) {
  document.getElementById("metric-name").textContent = metric === "accuracy" ? "accuracy" : "R²";
  const shown = (value) => (metric === "accuracy" ? `${(100 * value).toFixed(1)}%` : formatNumber(value, 3));
  for (const part of ["train", "test"]) {
    document.getElementById(`${part}-loss`).textContent = formatNumber(metrics[`${part}_loss`], 4);
    document.getElementById(`${part}-metric`).textContent = shown(metrics[`${part}_${metric}`]);
  }
}
