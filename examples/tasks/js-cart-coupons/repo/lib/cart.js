'use strict';

/** The total of a cart in cents: items are { priceCents, quantity }. */
function cartTotal(items) {
  let total = 0;
  for (const item of items) {
    if (!Number.isInteger(item.priceCents) || item.priceCents < 0) {
      throw new TypeError('priceCents must be a non-negative integer');
    }
    total += item.priceCents * (item.quantity ?? 1);
  }
  return total;
}

module.exports = { cartTotal };
