'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { toCelsius, formatReading } = require('../lib/temperature');

test('toCelsius converts boiling water', () => {
  assert.strictEqual(toCelsius(212), 100);
});

test('formatReading rounds to one decimal', () => {
  assert.strictEqual(formatReading(21.46, 'C'), '21.5°C');
});
