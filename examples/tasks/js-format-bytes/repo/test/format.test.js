'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { formatCount, formatPercent } = require('../lib/format');

test('formatCount groups thousands', () => {
  assert.strictEqual(formatCount(1234567), '1,234,567');
});

test('formatPercent rounds', () => {
  assert.strictEqual(formatPercent(0.256), '26%');
});
