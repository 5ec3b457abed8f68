internal import CCRC32C

/// CRC-32C (Castagnoli). Guards batch headers and data frames so that a damaged batch is
/// found without decompressing it, and the views' snapshot chunks. Every byte written or
/// loaded goes through it, so it uses the processor's CRC instruction where there is one
/// (SSE 4.2 on x86-64, the CRC extension on ARMv8), and slicing-by-8 tables elsewhere.
public enum CRC32C {
    /// Whether `checksum` uses the processor's instruction.
    static let usesHardware = tally_crc32c_hardware() != 0

    private static let tables: [UInt32] = {
        var tables = [UInt32](repeating: 0, count: 8 * 256)
        for i in 0..<256 {
            var crc = UInt32(i)
            for _ in 0..<8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
            tables[i] = crc
        }
        for i in 0..<256 {
            var crc = tables[i]
            for t in 1..<8 {
                crc = tables[Int(crc & 0xFF)] ^ (crc >> 8)
                tables[t * 256 + i] = crc
            }
        }
        return tables
    }()

    /// The CRC of `buffer`; pass the CRC of earlier bytes as `seed` to extend it.
    public static func checksum(_ buffer: UnsafeRawBufferPointer, seed: UInt32 = 0) -> UInt32 {
        guard usesHardware else { return software(buffer, seed: seed) }
        guard let base = buffer.baseAddress else { return seed }
        return ~tally_crc32c_update(~seed, base, buffer.count)
    }

    /// The table-driven CRC, for processors without the instruction (and to test it against).
    static func software(_ buffer: UnsafeRawBufferPointer, seed: UInt32 = 0) -> UInt32 {
        var crc = ~seed
        tables.withUnsafeBufferPointer { t in
            var i = 0
            let count = buffer.count
            while count - i >= 8 {
                let lo = buffer.loadUnaligned(fromByteOffset: i, as: UInt32.self).littleEndian ^ crc
                let hi = buffer.loadUnaligned(fromByteOffset: i + 4, as: UInt32.self).littleEndian
                crc = t[7 * 256 + Int(lo & 0xFF)] ^ t[6 * 256 + Int((lo >> 8) & 0xFF)]
                    ^ t[5 * 256 + Int((lo >> 16) & 0xFF)] ^ t[4 * 256 + Int(lo >> 24)]
                    ^ t[3 * 256 + Int(hi & 0xFF)] ^ t[2 * 256 + Int((hi >> 8) & 0xFF)]
                    ^ t[1 * 256 + Int((hi >> 16) & 0xFF)] ^ t[Int(hi >> 24)]
                i += 8
            }
            while i < count {
                crc = t[Int((crc ^ UInt32(buffer[i])) & 0xFF)] ^ (crc >> 8)
                i += 1
            }
        }
        return ~crc
    }

    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0) }
    }

    public static func checksum(_ bytes: ArraySlice<UInt8>, continuing seed: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0, seed: seed) }
    }
}
