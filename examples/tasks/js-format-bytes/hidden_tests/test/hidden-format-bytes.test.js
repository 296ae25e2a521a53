'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { formatBytes } = require('../lib/format');

test('bytes below one KiB', () => {
  assert.strictEqual(formatBytes(0), '0 B');
  assert.strictEqual(formatBytes(1), '1 B');
  assert.strictEqual(formatBytes(1023), '1023 B');
});

test('binary units with one decimal', () => {
  assert.strictEqual(formatBytes(1024), '1.0 KiB');
  assert.strictEqual(formatBytes(1536), '1.5 KiB');
  assert.strictEqual(formatBytes(1572864), '1.5 MiB');
  assert.strictEqual(formatBytes(5 * 1024 ** 3), '5.0 GiB');
  assert.strictEqual(formatBytes(3 * 1024 ** 4), '3.0 TiB');
});

test('no unit beyond TiB', () => {
  assert.strictEqual(formatBytes(2048 * 1024 ** 4), '2048.0 TiB');
});

test('rounding up moves to the next unit', () => {
  assert.strictEqual(formatBytes(1048575), '1.0 MiB');
  assert.strictEqual(formatBytes(1024 ** 3 - 1), '1.0 GiB');
});

test('bad input throws TypeError', () => {
  for (const bad of [-1, 1.5, NaN, Infinity, '10', null]) {
    assert.throws(() => formatBytes(bad), TypeError, String(bad));
  }
});
