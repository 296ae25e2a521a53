'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { chunk } = require('../lib/arrays');

test('even split', () => {
  assert.deepStrictEqual(chunk([1, 2, 3, 4], 2), [[1, 2], [3, 4]]);
});

test('last chunk is shorter', () => {
  assert.deepStrictEqual(chunk([1, 2, 3, 4, 5], 2), [[1, 2], [3, 4], [5]]);
});

test('size larger than the array', () => {
  assert.deepStrictEqual(chunk(['a'], 10), [['a']]);
});

test('empty array', () => {
  assert.deepStrictEqual(chunk([], 3), []);
});

test('input is not modified', () => {
  const input = [1, 2, 3];
  chunk(input, 2);
  assert.deepStrictEqual(input, [1, 2, 3]);
});

test('bad sizes throw RangeError', () => {
  for (const size of [0, -1, 1.5, NaN, '2', undefined]) {
    assert.throws(() => chunk([1, 2], size), RangeError, `size ${String(size)}`);
  }
});
