'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { cartTotal } = require('../lib/cart');

test('sums prices times quantities', () => {
  assert.strictEqual(cartTotal([{ priceCents: 250, quantity: 2 }, { priceCents: 999 }]), 1499);
});

test('empty cart is free', () => {
  assert.strictEqual(cartTotal([]), 0);
});
