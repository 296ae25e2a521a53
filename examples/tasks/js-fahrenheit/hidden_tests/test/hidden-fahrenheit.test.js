'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { toCelsius, toFahrenheit } = require('../lib/temperature');

test('boiling water', () => {
  assert.strictEqual(toFahrenheit(100), 212);
});

test('freezing water', () => {
  assert.strictEqual(toFahrenheit(0), 32);
});

test('minus forty is the same on both scales', () => {
  assert.strictEqual(toFahrenheit(-40), -40);
});

test('round trip', () => {
  for (const c of [-10, 0, 21.5, 37, 100]) {
    assert.ok(Math.abs(toCelsius(toFahrenheit(c)) - c) < 1e-9);
  }
});
