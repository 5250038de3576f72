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
}
