// The mathematics panel: the derivation of the current network with the current batch's values
// and each equation's check, one weight's chain rule, and "check my formula". The MathML and the
// numbers come from the server (nnmath.derivation); this file only places them.

import { formatNumber } from "./state.js";

function element(tag, className, html) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (html !== undefined) node.innerHTML = html;
  return node;
}

function valueRow(entry) {
  const row = element("div", "value-row");
  row.dataset.name = entry.name;
  row.append(element("span", "symbol", entry.formula), element("span", "value", entry.value),
    element("span", "shape", entry.shape || ""));
  return row;
}

function equationCard(equation) {
  const card = element("div", "equation");
  Object.assign(card.dataset, { name: equation.name, stage: equation.stage, kind: equation.kind });
  if (equation.note) card.append(element("p", "note", equation.note));
  card.append(element("div", "formula", equation.formula));
  if (equation.element) card.append(element("div", "element", equation.element));
  if (equation.value) {
    const value = element("div", "value", `<span class="equals">=</span>${equation.value}`);
    value.append(element("span", "shape", equation.shape));
    card.append(value);
  }
  const meta = element("div", "meta");
  meta.append(Object.assign(document.createElement("code"), { textContent: equation.code }));
  if (equation.check) {
    const check = element("span", equation.check.passed ? "check ok" : "check failed");
    check.textContent = equation.check.text;
    meta.append(check);
  }
  card.append(meta);
  return card;
}

function updateSection(update) {
  const section = element("section", "derivation-section update");
  section.dataset.stage = "update";
  section.append(element("h3", "", "The update"),
    Object.assign(element("p", "note"), { textContent: `${update.text}:` }));
  for (const row of update.parameters) section.append(valueRow(row));
  return section;
}

export function showDocument(document_, playing) {
  const container = document.getElementById("derivation");
  const summary = element("p", !document_.checked ? "summary unchecked" : document_.passed ? "summary" : "summary failed");
  summary.textContent = document_.checked ? document_.summary
    : playing ? "Values refresh while training; each equation's check runs when you pause (this network is large)."
      : "Checking every equation against central differences…";
  const inputs = element("details", "inputs");
  inputs.append(element("summary", "", document_.inputs.title));
  for (const row of document_.inputs.values) inputs.append(valueRow(row));
  const sections = document_.sections.filter((s) => s.equations.length || s.text).map((section) => {
    const node = element("section", "derivation-section");
    node.append(element("h3", "", section.title));
    if (section.text) node.append(element("p", "text", section.text));
    node.append(...section.equations.map(equationCard));
    return node;
  });
  const open = container.querySelector("details.inputs")?.open;
  inputs.open = Boolean(open);
  container.replaceChildren(summary, inputs, ...sections, updateSection(document_.update));
  document.getElementById("formula").placeholder = `${document_.names.filter((n) => n.startsWith("dZ")).at(-1) || "dX"} = …   (names: X, W1, b1, Z1, A1, …, Yhat, Y, S)`;
}

// Step-through: highlight the equations of the current stage and bring the first into view (once
// per stage, so that the reader may scroll away).
let scrolledTo = null;

export function highlightEquations(stage) {
  const id = !stage ? null : ["cost", "update"].includes(stage.kind) ? stage.kind : `${stage.kind}-${stage.layer}`;
  const cards = document.querySelectorAll("#derivation [data-stage]");
  let first = null;
  for (const card of cards) {
    const on = card.dataset.stage === id;
    card.classList.toggle("current", on);
    if (on && !first) first = card;
  }
  if (first && id !== scrolledTo) first.scrollIntoView({ block: "center" });
  scrolledTo = first ? id : null;
}

// ---- one weight's chain rule ----------------------------------------------------------------

function cell(className, value) {
  return Object.assign(element("td", className), { textContent: formatNumber(value, 6) });
}

function termsTable(answer) {
  const hidden = answer.delta.kind === "hidden";
  const table = element("table", "terms");
  const head = hidden ? ["s", "a (input i)", "dA", "h′(z)", "δ = dA · h′(z)", "δ · a"]
    : ["s", "a (input i)", "ŷ", "y", "δ", "δ · a"];
  table.append(element("thead", "", `<tr>${head.map((h) => `<th>${h}</th>`).join("")}</tr>`));
  const body = element("tbody");
  for (const term of answer.terms) {
    const row = element("tr");
    row.append(Object.assign(element("td", "s"), { textContent: term.s }), cell("a", term.a));
    if (hidden) row.append(cell("dA", term.dA), cell("h-prime", term.h_prime));
    else row.append(cell("yhat", term.yhat), cell("y", term.y));
    row.append(cell("delta", term.delta), cell("product", term.product));
    body.append(row);
  }
  const foot = element("tfoot", "", `<tr><td colspan="5">Σ over the batch = ∂C/∂w</td></tr>`);
  foot.firstChild.append(cell("gradient", answer.gradient));
  table.append(body, foot);
  return table;
}

export function showWeight(answer, onClose) {
  const box = document.getElementById("weight-breakdown");
  const close = Object.assign(element("button", "close"), { textContent: "×", title: "close" });
  close.addEventListener("click", onClose);
  const title = element("h3");
  title.textContent = `The chain rule of one weight: layer ${answer.layer}, input ${answer.input + 1} → unit ${answer.unit + 1} (w = ${formatNumber(answer.weight, 6)})`;
  const parts = [close, title, element("p", "note", answer.formulas.legend), element("div", "formula", answer.formulas.gradient), termsTable(answer)];
  const delta = answer.delta;
  if (delta.formula) parts.push(element("p", "note", "δ is the layer's dZ, from the derivation:"), element("div", "formula", delta.formula));
  if (delta.kind === "hidden") {
    parts.push(element("p", "note", "dA comes back from the layer above; for sample 1, with the numbers:"),
      element("div", "formula", delta.recursion), element("div", "formula", delta.first_sample),
      element("p", "note", "and δ of each layer above, back to the output (sample 1):"));
    for (const up of delta.upstream) {
      const row = element("div", "value-row");
      row.append(element("span", "symbol", `δ of layer ${up.layer} =`), element("span", "value", up.delta));
      parts.push(row);
    }
  }
  parts.push(element("p", "note", "The update this weight gets on the next step:"), element("div", "formula update-formula", answer.update.formula));
  box.replaceChildren(...parts);
  box.hidden = false;
  box.scrollIntoView({ block: "nearest", behavior: "smooth" });
}

// ---- check my formula --------------------------------------------------------------------------

export function showVerdict(verdict) {
  const box = document.getElementById("verdict");
  box.className = verdict.correct ? "ok" : "wrong";
  const headline = element("p", "headline");
  headline.textContent = verdict.correct
    ? `✓ correct: ${verdict.explanation} (rel. error ${formatNumber(verdict.relative_error, 2)})`
    : `✗ ${verdict.mistake}: ${verdict.explanation}`;
  const parts = [headline];
  if (!verdict.correct) {
    parts.push(Object.assign(element("p", "you"), { textContent: `you wrote: ${verdict.formula}` + (verdict.shape ? `   (shape ${verdict.shape})` : "") }));
    parts.push(Object.assign(element("p", "right"), { textContent: `correct: ${verdict.correct_formula}   (shape ${verdict.expected_shape})` }));
    if (verdict.correct_mathml) parts.push(element("div", "formula", verdict.correct_mathml));
  }
  parts.push(Object.assign(element("p", "where"), { textContent: `checked on ${verdict.where}` }));
  box.replaceChildren(...parts);
}

export function showVerdictError(message) {
  const box = document.getElementById("verdict");
  box.className = "wrong";
  box.replaceChildren(Object.assign(element("p", "headline"), { textContent: `✗ ${message}` }));
}
