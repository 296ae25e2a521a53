'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { compact, unique } = require('../lib/arrays');

test('compact drops falsy values', () => {
  assert.deepStrictEqual(compact([0, 1, '', 'a', null, undefined, false, NaN]), [1, 'a']);
});

test('unique keeps the first occurrence', () => {
  assert.deepStrictEqual(unique([3, 1, 3, 2, 1]), [3, 1, 2]);
});
