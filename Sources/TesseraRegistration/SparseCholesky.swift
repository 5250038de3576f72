/// Sparse Cholesky factorisation `P A Pᵀ = L Lᵀ` of a symmetric positive definite matrix whose
/// pattern is a graph (a weighted graph Laplacian with one node per component grounded, in the
/// global solve), for many solves and leverages with one factorisation.
///
/// - Ordering: nested dissection by level structures (George & Liu, "Computer Solution of Large
///   Sparse Positive Definite Systems", 1981, ch. 8): a breadth-first search from a
///   pseudo-peripheral node, the middle level as separator, ordered last, the two halves
///   recursively; pieces of at most 32 nodes in search order. A tile grid of n tiles in two
///   dimensions fills to O(n log n) entries and factorises in O(n^1.5) operations.
/// - Symbolic: the elimination tree and each column's pattern, the union of its own entries and
///   its children's (Davis, "Direct Methods for Sparse Linear Systems", 2006, ch. 4); computed
///   once, kept while entries are only removed (a dropped link leaves an explicit zero).
/// - Numeric: left-looking column Cholesky over the pattern. Backward stable for positive
///   definite matrices: the computed factor is exact for `A + E`, `|E| ≤ c·n·u·|L||Lᵀ|` (u the
///   unit round-off; Higham, "Accuracy and Stability of Numerical Algorithms", 2002, thm 10.5).
/// - ``inverseOnPattern()``: the entries of A⁻¹ on the factor's pattern (every link's effective
///   resistance at once) for about the cost of the factorisation; ``solvePermuted(sparse:)``
///   for a right-hand side with two entries starts on their elimination-tree paths only.
struct SparseCholesky {
  let n: Int
  /// New position → original index, and back.
  let order: [Int]
  let position: [Int]
  /// Elimination tree (parent of each column, -1 for roots).
  let parent: [Int]
  /// Column j of L: rows `rows[start[j]..<start[j+1]]`, the diagonal first, then increasing.
  let start: [Int]
  let rows: [Int]
  var values: [Double]

  /// The symbolic factorisation for the pattern `adjacency` (neighbours of each node, original
  /// indices; the diagonal implied).
  init(adjacency: [[Int]]) {
    n = adjacency.count
    order = Self.nestedDissection(adjacency)
    var position = [Int](repeating: 0, count: n)
    for (k, v) in order.enumerated() { position[v] = k }
    self.position = position
    // Column patterns: own entries below the diagonal, merged with the children's patterns.
    var parent = [Int](repeating: -1, count: n)
    var children = [[Int]](repeating: [], count: n)
    var patterns = [[Int]](repeating: [], count: n)
    var start = [0]
    var rows: [Int] = []
    var mark = [Int](repeating: -1, count: n)
    for j in 0..<n {
      var below: [Int] = []
      mark[j] = j
      for v in adjacency[order[j]] {
        let i = position[v]
        if i > j, mark[i] != j {
          mark[i] = j
          below.append(i)
        }
      }
      for c in children[j] {
        for i in patterns[c] where i > j && mark[i] != j {
          mark[i] = j
          below.append(i)
        }
        patterns[c] = []  // no longer needed
      }
      below.sort()
      if let p = below.first {
        parent[j] = p
        children[p].append(j)
      }
      rows.append(j)
      rows.append(contentsOf: below)
      start.append(rows.count)
      patterns[j] = below
    }
    self.parent = parent
    self.start = start
    self.rows = rows
    values = [Double](repeating: 0, count: rows.count)
  }

  /// Entries of the factor (diagonal included).
  var entries: Int { rows.count }

  /// Factorises the matrix with diagonal `diagonal` and off-diagonal entries `offDiagonal(i, j)`
  /// (original indices, `i ≠ j` neighbours in the pattern) given as a list of (i, j, value) with
  /// each pair once. Returns false if a pivot is not positive (the matrix is not positive
  /// definite).
  mutating func factorise(diagonal: [Double], offDiagonal: [(Int, Int, Double)]) -> Bool {
    // Lower-triangle entries of the permuted matrix, by column (a counting sort).
    var count = [Int](repeating: 0, count: n + 1)
    for (a, b, _) in offDiagonal { count[min(position[a], position[b]) + 1] += 1 }
    for j in 0..<n { count[j + 1] += count[j] }
    var entryRow = [Int](repeating: 0, count: offDiagonal.count)
    var entryValue = [Double](repeating: 0, count: offDiagonal.count)
    var fill = count
    for (a, b, v) in offDiagonal {
      let (i, j) = (max(position[a], position[b]), min(position[a], position[b]))
      entryRow[fill[j]] = i
      entryValue[fill[j]] = v
      fill[j] += 1
    }
    var x = [Double](repeating: 0, count: n)
    // Columns k waiting to update column j (their next row is j), linked lists by head[j].
    var head = [Int](repeating: -1, count: n)
    var next = [Int](repeating: -1, count: n)
    var cursor = [Int](repeating: 0, count: n)  // position of the next row to use in column k
    var ok = true
    let order = order
    values.withUnsafeMutableBufferPointer { l in
      rows.withUnsafeBufferPointer { rows in
        start.withUnsafeBufferPointer { start in
          x.withUnsafeMutableBufferPointer { x in
            head.withUnsafeMutableBufferPointer { head in
              next.withUnsafeMutableBufferPointer { next in
                cursor.withUnsafeMutableBufferPointer { cursor in
                  for j in 0..<n {
                    x[j] = diagonal[order[j]]
                    for e in count[j]..<count[j + 1] { x[entryRow[e]] += entryValue[e] }
                    var k = head[j]
                    while k >= 0 {
                      let following = next[k]
                      let p = cursor[k]
                      let ljk = l[p]
                      for q in p..<start[k + 1] { x[rows[q]] -= l[q] * ljk }
                      cursor[k] = p + 1
                      if p + 1 < start[k + 1] {
                        let r = rows[p + 1]
                        next[k] = head[r]
                        head[r] = k
                      }
                      k = following
                    }
                    let d = x[j]
                    guard d > 0, d.isFinite else {
                      ok = false
                      return
                    }
                    let root = d.squareRoot()
                    l[start[j]] = root
                    x[j] = 0
                    for q in (start[j] + 1)..<start[j + 1] {
                      l[q] = x[rows[q]] / root
                      x[rows[q]] = 0
                    }
                    if start[j] + 1 < start[j + 1] {
                      cursor[j] = start[j] + 1
                      let r = rows[start[j] + 1]
                      next[j] = head[r]
                      head[r] = j
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
    return ok
  }

  /// Solves `A x = b` (original indices).
  func solve(_ b: [Double]) -> [Double] {
    var y = [Double](repeating: 0, count: n)
    for j in 0..<n { y[j] = b[order[j]] }
    forward(&y, path: nil)
    backward(&y)
    var x = [Double](repeating: 0, count: n)
    for j in 0..<n { x[order[j]] = y[j] }
    return x
  }

  /// Solves `A x = v` for the sparse vector `v` (original index, value), leaving x in the
  /// factor's order (`x[position[i]]` is unknown i): the forward solve visits only the
  /// elimination-tree paths from v's entries to the root.
  func solvePermuted(sparse v: [(Int, Double)]) -> [Double] {
    var y = [Double](repeating: 0, count: n)
    for (i, value) in v { y[position[i]] += value }
    forward(&y, path: path(v.map(\.0)))
    backward(&y)
    return y
  }

  /// The columns on the elimination-tree paths from `entries` (original indices, at most two)
  /// to the root, increasing: the only ones a forward solve with a right-hand side there
  /// touches. Walks both paths at once, always the lower column first (a parent follows its
  /// child), until they meet.
  func path(_ entries: [Int]) -> [Int] {
    precondition(entries.count <= 2, "paths from at most two entries")
    var path: [Int] = []
    var a = entries.first.map { position[$0] } ?? -1
    var b = entries.count == 2 ? position[entries[1]] : -1
    while a >= 0 || b >= 0 {
      if a == b {
        path.append(a)
        (a, b) = (parent[a], parent[a])
      } else if b < 0 || (a >= 0 && a < b) {
        path.append(a)
        a = parent[a]
      } else {
        path.append(b)
        b = parent[b]
      }
    }
    return path
  }

  /// `y ← L⁻¹ y` (permuted order), over `path` only when given.
  private func forward(_ y: inout [Double], path: [Int]?) {
    values.withUnsafeBufferPointer { l in
      rows.withUnsafeBufferPointer { rows in
        start.withUnsafeBufferPointer { start in
          y.withUnsafeMutableBufferPointer { y in
            func column(_ j: Int) {
              let v = y[j] / l[start[j]]
              y[j] = v
              guard v != 0 else { return }
              for q in (start[j] + 1)..<start[j + 1] { y[rows[q]] -= l[q] * v }
            }
            if let path {
              for j in path { column(j) }
            } else {
              for j in 0..<n { column(j) }
            }
          }
        }
      }
    }
  }

  /// `y ← L⁻ᵀ y` (permuted order).
  private func backward(_ y: inout [Double]) {
    values.withUnsafeBufferPointer { l in
      rows.withUnsafeBufferPointer { rows in
        start.withUnsafeBufferPointer { start in
          y.withUnsafeMutableBufferPointer { y in
            for j in stride(from: n - 1, through: 0, by: -1) {
              var s = y[j]
              for q in (start[j] + 1)..<start[j + 1] { s -= l[q] * y[rows[q]] }
              y[j] = s / l[start[j]]
            }
          }
        }
      }
    }
  }

  /// The entries of `A⁻¹` on the factor's pattern (aligned with `rows`), by the Takahashi
  /// recurrences (Takahashi, Fagan & Chen 1973; Erisman & Tinney, "On computing certain elements
  /// of the inverse of a sparse matrix", CACM 1975): with `L = M·D^½` (M unit lower triangular,
  /// D the pivots squared), from the last column back, `Z_ij = −Σ_k M_kj Z_ik` for i in the
  /// pattern of column j and `Z_jj = 1/D_j − Σ_k M_kj Z_kj`, k over the pattern of column j
  /// (the entries needed are on the pattern: it is a clique in the filled graph). Costs about
  /// as much as the factorisation; as accurate as a solve.
  func inverseOnPattern() -> [Double] {
    var z = [Double](repeating: 0, count: rows.count)
    var slot = [Int](repeating: 0, count: n)  // row → its place in the current column
    var stamp = [Int](repeating: -1, count: n)
    var acc = [Double](repeating: 0, count: n)
    var m = [Double](repeating: 0, count: n)  // the current column of M
    values.withUnsafeBufferPointer { l in
      rows.withUnsafeBufferPointer { rows in
        start.withUnsafeBufferPointer { start in
          z.withUnsafeMutableBufferPointer { z in
            slot.withUnsafeMutableBufferPointer { slot in
              stamp.withUnsafeMutableBufferPointer { stamp in
                acc.withUnsafeMutableBufferPointer { acc in
                  m.withUnsafeMutableBufferPointer { m in
                    for j in stride(from: n - 1, through: 0, by: -1) {
                      let (first, end) = (start[j] + 1, start[j + 1])
                      let pivot = l[start[j]]
                      for q in first..<end {
                        slot[rows[q]] = q - first
                        stamp[rows[q]] = j
                        acc[q - first] = 0
                        m[q - first] = l[q] / pivot
                      }
                      for qk in first..<end {
                        let k = rows[qk]
                        let (a, mk) = (qk - first, m[qk - first])
                        var own = mk * z[start[k]]
                        for p in (start[k] + 1)..<start[k + 1] {
                          let i = rows[p]
                          guard stamp[i] == j else { continue }
                          let b = slot[i]
                          acc[b] += mk * z[p]
                          own += m[b] * z[p]
                        }
                        acc[a] += own
                      }
                      var diagonal = 1 / (pivot * pivot)
                      for q in first..<end {
                        z[q] = -acc[q - first]
                        diagonal -= m[q - first] * z[q]
                      }
                      z[start[j]] = diagonal
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
    return z
  }

  /// Where entry (a, b) of a matrix on the factor's pattern is (`values`,
  /// `inverseOnPattern()`), original indices; a and b must be equal or neighbours in the pattern.
  func entry(_ a: Int, _ b: Int) -> Int {
    let (i, j) = (max(position[a], position[b]), min(position[a], position[b]))
    var (lo, hi) = (start[j], start[j + 1])
    while lo < hi {
      let mid = (lo + hi) / 2
      if rows[mid] < i { lo = mid + 1 } else { hi = mid }
    }
    precondition(lo < start[j + 1] && rows[lo] == i, "entry off the pattern")
    return lo
  }

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
