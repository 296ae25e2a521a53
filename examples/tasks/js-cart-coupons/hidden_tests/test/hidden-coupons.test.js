'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { findCoupon } = require('../lib/coupons');
const { cartTotal } = require('../lib/cart');

const items = [{ priceCents: 1000, quantity: 2 }, { priceCents: 999 }];

test('findCoupon knows the codes, ignoring case and spaces', () => {
  assert.strictEqual(findCoupon('SAVE10'), 10);
  assert.strictEqual(findCoupon(' save10 '), 10);
  assert.strictEqual(findCoupon('HalfOff'), 50);
});

test('findCoupon returns undefined for unknown codes', () => {
  assert.strictEqual(findCoupon('FREESTUFF'), undefined);
  assert.strictEqual(findCoupon(''), undefined);
});

test('cartTotal without a coupon is unchanged', () => {
  assert.strictEqual(cartTotal(items), 2999);
});

test('cartTotal applies the coupon and rounds to cents', () => {
  assert.strictEqual(cartTotal(items, 'SAVE10'), 2699); // 2699.1
  assert.strictEqual(cartTotal(items, 'welcome15'), 2549); // 2549.15
  assert.strictEqual(cartTotal(items, 'HALFOFF'), 1500); // 1499.5
});

test('cartTotal rejects an unknown coupon', () => {
  assert.throws(() => cartTotal(items, 'NOPE'), /unknown coupon/);
});
