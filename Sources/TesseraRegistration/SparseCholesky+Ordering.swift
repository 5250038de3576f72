/// The fill-reducing ordering: nested dissection by level structures.
extension SparseCholesky {
  /// Nested dissection order of the graph (each node's neighbours), new position → node.
  static func nestedDissection(_ adjacency: [[Int]]) -> [Int] {
    let n = adjacency.count
    var order: [Int] = []
    order.reserveCapacity(n)
    // Local membership and BFS levels, by node; `stamp` tells which piece a node belongs to.
    var stamp = [Int](repeating: -1, count: n)
    var level = [Int](repeating: -1, count: n)
    var visited = [Int](repeating: -1, count: n)  // the piece whose components are being found
    var pieces = 0
    /// Breadth-first levels from `root` within the piece stamped `s`; returns the nodes reached
    /// in search order and the number of levels.
    func search(_ root: Int, _ s: Int) -> (nodes: [Int], levels: Int) {
      var nodes = [root]
      level[root] = 0
      var head = 0
      var depth = 0
      while head < nodes.count {
        let v = nodes[head]
        head += 1
        depth = level[v]
        for u in adjacency[v] where stamp[u] == s && level[u] < 0 {
          level[u] = level[v] + 1
          nodes.append(u)
        }
      }
      for v in nodes { level[v] = -1 }
      return (nodes, depth + 1)
    }
    // An explicit stack of pieces: (nodes, then-separator to append after both halves).
    enum Work {
      case piece([Int])
      case emit([Int])
    }
    var stack: [Work] = [.piece(Array(0..<n))]
    while let work = stack.popLast() {
      switch work {
      case .emit(let nodes):
        order.append(contentsOf: nodes)
      case .piece(let nodes):
        guard !nodes.isEmpty else { continue }
        pieces += 1
        let s = pieces
        for v in nodes { stamp[v] = s }
        // Pseudo-peripheral root: repeat the search from the last node reached while the
        // number of levels grows (at most a few times).
        var (reached, levels) = search(nodes[0], s)
        for _ in 0..<4 {
          let (again, deeper) = search(reached.last!, s)
          if deeper <= levels {
            break
          }
          (reached, levels) = (again, deeper)
        }
        if reached.count < nodes.count {
          // Not connected: each component is a piece of its own, all found in one sweep.
          var components = [reached]
          for v in reached { visited[v] = s }
          for v in nodes where visited[v] != s {
            let (component, _) = search(v, s)
            for u in component { visited[u] = s }
            components.append(component)
          }
          for component in components.reversed() { stack.append(.piece(component)) }
          continue
        }
        if nodes.count <= 32 || levels < 3 {
          order.append(contentsOf: reached)
          continue
        }
        // Levels from the root; the first level at which half the nodes are reached separates.
        level[reached[0]] = 0
        for v in reached {
          for u in adjacency[v] where stamp[u] == s && level[u] < 0 {
            level[u] = level[v] + 1
          }
        }
        var count = [Int](repeating: 0, count: levels + 1)
        for v in reached { count[level[v]] += 1 }
        var cut = 1
        var below = count[0]
        while cut < levels - 1, below + count[cut] <= nodes.count / 2 {
          below += count[cut]
          cut += 1
        }
        var first: [Int] = []
        var second: [Int] = []
        var separator: [Int] = []
        for v in reached {
          let lv = level[v]
          if lv < cut { first.append(v) } else if lv > cut { second.append(v) } else { separator.append(v) }
        }
        for v in reached { level[v] = -1 }
        stack.append(.emit(separator))
        stack.append(.piece(second))
        stack.append(.piece(first))
      }
    }
    return order
  }
}
