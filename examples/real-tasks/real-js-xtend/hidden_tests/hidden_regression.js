var test = require("tape")
var extend = require("./")

test("first source object is copied", function (assert) {
    var result = extend({ a: 1, b: 2 }, { c: 3 })
    assert.deepEqual(result, { a: 1, b: 2, c: 3 })
    assert.end()
})

test("single argument is cloned", function (assert) {
    var src = { x: "y" }
    var result = extend(src)
    assert.deepEqual(result, { x: "y" })
    assert.notEqual(result, src)
    assert.end()
})
