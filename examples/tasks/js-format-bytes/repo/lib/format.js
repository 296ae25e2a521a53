'use strict';

/** `n` with thousands separators: 1234567 -> "1,234,567". */
function formatCount(n) {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** A ratio as a percentage with no decimals: 0.256 -> "26%". */
function formatPercent(ratio) {
  return `${Math.round(ratio * 100)}%`;
}

module.exports = { formatCount, formatPercent };
