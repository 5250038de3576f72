import CHDF5
import Foundation
import TesseraCore

/// Attributes on a dataset or group: numeric arrays (read as `Double`) and strings.
///
/// Acquisition scripts often store a tile's stage position and voxel size as attributes of the
/// tile's dataset (`position_um`, `voxel_size_um`); this is how Tessera reads and writes them.
extension HDF5File {
  /// Names of the attributes attached to `object` (a dataset or group path; "/" for the root).
  public func attributeNames(of object: String) -> [String] {
    HDF5Library.withLock {
      var info = H5O_info_t()
      guard H5Oget_info_by_name2(id, object, &info, UInt32(H5O_INFO_NUM_ATTRS), hid_t(H5P_DEFAULT)) >= 0 else {
        return []
      }
      var names: [String] = []
      for i in 0..<info.num_attrs {
        let n = H5Aget_name_by_idx(id, object, H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, hid_t(H5P_DEFAULT))
        guard n >= 0 else { continue }
        var buffer = [CChar](repeating: 0, count: Int(n) + 1)
        guard
          H5Aget_name_by_idx(id, object, H5_INDEX_NAME, H5_ITER_INC, i, &buffer, buffer.count, hid_t(H5P_DEFAULT))
            >= 0
        else { continue }
        names.append(String(nulTerminated: buffer))
      }
      return names
    }
  }

  /// Opens attribute `name` of `object` and its type under the HDF5 lock and hands both to
  /// `body`; nil when the attribute does not exist or cannot be opened.
  private func withAttribute<R>(_ name: String, of object: String, _ body: (hid_t, hid_t) -> R?) -> R? {
    HDF5Library.withLock {
      guard H5Aexists_by_name(id, object, name, hid_t(H5P_DEFAULT)) > 0 else { return nil }
      let a = H5Aopen_by_name(id, object, name, hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT))
      guard a >= 0 else { return nil }
      defer { _ = H5Aclose(a) }
      let type = H5Aget_type(a)
      defer { _ = H5Tclose(type) }
      return body(a, type)
    }
  }

  /// A numeric attribute as `Double`s (any integer or float type, scalar or 1-D), or nil when
  /// absent or not numeric.
  public func numericAttribute(_ name: String, of object: String) -> [Double]? {
    withAttribute(name, of: object) { a, type in
      let cls = H5Tget_class(type)
      guard cls == H5T_INTEGER || cls == H5T_FLOAT else { return nil }
      let space = H5Aget_space(a)
      defer { _ = H5Sclose(space) }
      let n = Int(H5Sget_simple_extent_npoints(space))
      guard n >= 0 else { return nil }
      var values = [Double](repeating: 0, count: n)
      guard H5Aread(a, chdf5_T_NATIVE_DOUBLE(), &values) >= 0 else { return nil }
      return values
    }
  }

  /// A string attribute (fixed or variable length), or nil when absent or not a string.
  public func stringAttribute(_ name: String, of object: String) -> String? {
    withAttribute(name, of: object) { a, type in
      guard H5Tget_class(type) == H5T_STRING else { return nil }
      if H5Tis_variable_str(type) > 0 {
        var pointer: UnsafeMutablePointer<CChar>? = nil
        let memType = H5Tcopy(chdf5_T_C_S1())
        guard memType >= 0 else { return nil }
        defer { _ = H5Tclose(memType) }
        guard H5Tset_size(memType, Int.max) >= 0,  // H5T_VARIABLE
          H5Aread(a, memType, &pointer) >= 0, let pointer
        else { return nil }
        defer { free(pointer) }
        return String(cString: pointer)
      }
      let size = H5Tget_size(type)
      var buffer = [CChar](repeating: 0, count: size + 1)
      guard H5Aread(a, type, &buffer) >= 0 else { return nil }
      return String(nulTerminated: buffer)
    }
  }

  /// Writes (replacing) a 1-D float64 attribute.
  public func setAttribute(_ name: String, of object: String, values: [Double]) throws(HDF5Error) {
    try HDF5Library.withLock { () throws(HDF5Error) in
      try replace(name, of: object)
      var dims = [hsize_t(values.count)]
      let space = try check(H5Screate_simple(1, &dims, nil), "H5Screate_simple for attribute \(name)", object)
      defer { _ = H5Sclose(space) }
      let a = try check(
        H5Acreate_by_name(
          id, object, name, chdf5_T_IEEE_F64LE(), space, hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT)),
        "creating attribute \(name)", object)
      defer { _ = H5Aclose(a) }
      try check(H5Awrite(a, chdf5_T_NATIVE_DOUBLE(), values), "writing attribute \(name)", object)
    }
  }

  /// Writes (replacing) a fixed-length ASCII string attribute.
  public func setAttribute(_ name: String, of object: String, string: String) throws(HDF5Error) {
    try HDF5Library.withLock { () throws(HDF5Error) in
      try replace(name, of: object)
      let bytes = Array(string.utf8)
      let type = try check(H5Tcopy(chdf5_T_C_S1()), "H5Tcopy for attribute \(name)", object)
      defer { _ = H5Tclose(type) }
      try check(H5Tset_size(type, max(1, bytes.count)), "H5Tset_size for attribute \(name)", object)
      let space = try check(H5Screate(H5S_SCALAR), "H5Screate for attribute \(name)", object)
      defer { _ = H5Sclose(space) }
      let a = try check(
        H5Acreate_by_name(id, object, name, type, space, hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT)),
        "creating attribute \(name)", object)
      defer { _ = H5Aclose(a) }
      let padded = bytes.isEmpty ? [UInt8(0)] : bytes
      try check(H5Awrite(a, type, padded), "writing attribute \(name)", object)
    }
  }

  /// Deletes attribute `name` of `object` if it exists (call under the lock).
  private func replace(_ name: String, of object: String) throws(HDF5Error) {
    if try check(H5Aexists_by_name(id, object, name, hid_t(H5P_DEFAULT)), "looking up attribute \(name)", object) > 0 {
      try check(H5Adelete_by_name(id, object, name, hid_t(H5P_DEFAULT)), "deleting attribute \(name)", object)
    }
  }

  /// ``HDF5Library/check(_:_:path:object:kind:)`` for this file; writes fail as I/O.
  @discardableResult
  func check<S: BinaryInteger>(_ status: S, _ step: String, _ object: String, kind: FailureKind = .io) throws(HDF5Error)
    -> S
  {
    try HDF5Library.check(status, step, path: path, object: object, kind: kind)
  }

  /// Names of the direct children of a group (datasets and groups), in name order.
  public func children(of group: String) -> [String] {
    HDF5Library.withLock {
      let g = H5Gopen2(id, group, hid_t(H5P_DEFAULT))
      guard g >= 0 else { return [] }
      defer { _ = H5Gclose(g) }
      var info = H5G_info_t()
      guard H5Gget_info(g, &info) >= 0 else { return [] }
      var names: [String] = []
      for i in 0..<info.nlinks {
        let n = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, hid_t(H5P_DEFAULT))
        guard n >= 0 else { continue }
        var buffer = [CChar](repeating: 0, count: Int(n) + 1)
        guard H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buffer, buffer.count, hid_t(H5P_DEFAULT)) >= 0
        else { continue }
        names.append(String(nulTerminated: buffer))
      }
      return names
    }
  }

  /// True if `name` is a dataset (false for groups and missing paths).
  public func isDataset(_ name: String) -> Bool {
    guard exists(name) else { return false }
    return HDF5Library.withLock {
      var info = H5O_info_t()
      guard H5Oget_info_by_name2(id, name, &info, UInt32(H5O_INFO_BASIC), hid_t(H5P_DEFAULT)) >= 0 else {
        return false
      }
      return info.type == H5O_TYPE_DATASET
    }
  }
}
