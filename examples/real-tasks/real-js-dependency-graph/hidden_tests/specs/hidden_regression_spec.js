var DepGraph = require("../lib/dep_graph").DepGraph;

describe("overallOrder(leavesOnly)", function () {
  it("does not report nodes with a single dependency as leaves", function () {
    var graph = new DepGraph();
    graph.addNode("app");
    graph.addNode("lib");
    graph.addNode("util");
    graph.addDependency("app", "lib");
    graph.addDependency("lib", "util");
    expect(graph.overallOrder(true)).toEqual(["util"]);
    expect(graph.overallOrder()).toEqual(["util", "lib", "app"]);
  });
});
