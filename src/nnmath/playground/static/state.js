// The page's state: the settings (under the same keys as the page's address), the session, its
// data and the latest frame; and the address itself, which holds every setting.

export const state = {
  options: null, // what may be chosen (GET /api/options)
  settings: {}, // the settings in effect, as the server normalised them
  session: null, // the session id
  data: null, // the points and names of the data
  frame: null, // the latest frame
};

const listeners = {};

export function on(event, listener) {
  (listeners[event] ||= []).push(listener);
}

export function emit(event, value) {
  for (const listener of listeners[event] || []) listener(value);
}

// The settings written in the address (a shared link), on top of the defaults.
export function settingsFromAddress(defaults) {
  const settings = { ...defaults };
  for (const [key, value] of new URLSearchParams(location.search)) settings[key] = value;
  return settings;
}

export function writeAddress(settings) {
  const query = new URLSearchParams(Object.entries(settings).map(([k, v]) => [k, String(v)]));
  history.replaceState(null, "", `${location.pathname}?${query}`);
}

// Colours of the classes (the first two are TensorFlow Playground's).
export const CLASS_COLOURS = ["#f59322", "#0877bd", "#2ca02c", "#9467bd", "#d62728", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

export function hexToRgb(hex) {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

// A value in [-1, 1] as a colour: orange below zero, white at zero, blue above.
export function diverging(v) {
  const [r0, g0, b0] = hexToRgb(v < 0 ? CLASS_COLOURS[0] : CLASS_COLOURS[1]);
  const t = Math.min(1, Math.abs(v));
  return [255 + (r0 - 255) * t, 255 + (g0 - 255) * t, 255 + (b0 - 255) * t];
}

export function decodeBytes(base64) {
  const text = atob(base64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

export function formatNumber(x, digits = 4) {
  if (x === null || x === undefined || Number.isNaN(x)) return "–";
  let text = Number(x).toPrecision(digits);
  if (text.includes(".")) text = text.replace(/0+(e|$)/, "$1").replace(/\.(e|$)/, "$1");
  return text.replaceAll("-", "−");
}
