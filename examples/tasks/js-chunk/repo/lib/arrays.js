'use strict';

/** The elements of `array` that are not null, undefined, false, 0, '' or NaN. */
function compact(array) {
  return array.filter(Boolean);
}

/** The elements of `array` without repeats, first occurrence kept. */
function unique(array) {
  return [...new Set(array)];
}

module.exports = { compact, unique };
