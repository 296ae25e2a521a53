'use strict'
var expect = require('chai').expect
var objectPath = require('./index.js')

describe('get() with falsy stored values', function () {
  it('returns 0, false and empty string instead of the default', function () {
    var obj = { a: { zero: 0, no: false, empty: '' } }
    expect(objectPath.get(obj, 'a.zero', 'default')).to.equal(0)
    expect(objectPath.get(obj, 'a.no', 'default')).to.equal(false)
    expect(objectPath.get(obj, 'a.empty', 'default')).to.equal('')
  })

  it('still returns the default for missing keys', function () {
    expect(objectPath.get({ a: {} }, 'a.missing', 'default')).to.equal('default')
  })
})
