/// The selected inverse: the entries of A⁻¹ on the factor's pattern.
extension SparseCholesky {
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
}
