'use strict'

const { test } = require('tap')
const fastRedact = require('..')

test('censor function receives the path as second argument', ({ end, same }) => {
  const seen = []
  const redact = fastRedact({
    paths: ['a.b', 'c'],
    censor: (value, path) => { seen.push(path); return 'xxx' }
  })
  const out = redact({ a: { b: 'secret' }, c: 'other' })
  same(JSON.parse(out), { a: { b: 'xxx' }, c: 'xxx' })
  same(seen.sort(), [['a', 'b'], ['c']])
  end()
})
