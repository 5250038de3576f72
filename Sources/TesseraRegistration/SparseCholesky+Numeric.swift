/// The numeric factorisation and the solves with it.
extension SparseCholesky {
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
}
