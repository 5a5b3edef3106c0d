// Readable diffs of two stored values: pretty-printed when they are JSON, then compared line by line.
"use strict";

/** A value as people read it: JSON pretty-printed with two spaces, anything else verbatim. */
function prettyValue(text) {
  if (text === null || text === undefined) return null;
  const parsed = parsedValue(text);
  return parsed === text ? text : JSON.stringify(parsed, null, 2);
}

/** A stored value inside a larger JSON view: JSON objects and arrays nested, anything else as the string. */
function parsedValue(text) {
  try {
    const parsed = JSON.parse(text);
    if (parsed !== null && typeof parsed === "object") return parsed;
  } catch (e) { /* not JSON */ }
  return text;
}

/**
 * Line diff of `before` -> `after` (longest common subsequence), as [{op: " "|"-"|"+", line}].
 * Values beyond `limit` lines each are shown as a whole removal and addition instead.
 */
function diffLines(before, after, limit = 400) {
  const a = before === null ? [] : before.split("\n");
  const b = after === null ? [] : after.split("\n");
  if (a.length > limit || b.length > limit) {
    return a.map(line => ({op: "-", line})).concat(b.map(line => ({op: "+", line})));
  }
  const n = a.length, m = b.length;
  const common = Array.from({length: n + 1}, () => new Uint16Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      common[i][j] = a[i] === b[j] ? common[i + 1][j + 1] + 1 : Math.max(common[i + 1][j], common[i][j + 1]);
    }
  }
  const out = [];
  let i = 0, j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) { out.push({op: " ", line: a[i]}); i++; j++; }
    else if (common[i + 1][j] >= common[i][j + 1]) out.push({op: "-", line: a[i++]});
    else out.push({op: "+", line: b[j++]});
  }
  while (i < n) out.push({op: "-", line: a[i++]});
  while (j < m) out.push({op: "+", line: b[j++]});
  return out;
}
