@testable import EventLog
import Testing

/// The processor's CRC instruction and the table-driven code give the same CRC-32C, the one
/// RFC 3720 (iSCSI) publishes vectors for, at every length, alignment and seed.
struct CRC32CTests {
    static let vectors: [([UInt8], UInt32)] = [
        (Array("123456789".utf8), 0xE306_9283),
        ([UInt8](repeating: 0, count: 32), 0x8A91_36AA),
        ([UInt8](repeating: 0xFF, count: 32), 0x62A8_AB43),
        ((0..<32).map { UInt8($0) }, 0x46DD_794E),
        ((0..<32).reversed().map { UInt8($0) }, 0x113F_DB5C),
        ([], 0),
    ]

    @Test func theRFC3720VectorsHoldOnBothPaths() {
        for (bytes, expected) in Self.vectors {
            #expect(CRC32C.checksum(bytes) == expected, "\(bytes.count) bytes")
            #expect(bytes.withUnsafeBytes { CRC32C.software($0) } == expected, "\(bytes.count) bytes")
        }
    }

    #if arch(x86_64)
    /// Every x86-64 processor of the last 15 years has SSE 4.2: the fast path is the one taken.
    @Test func x86ProcessorsUseTheInstruction() {
        #expect(CRC32C.usesHardware)
    }
    #endif

    @Test func bothPathsAgreeAtEveryLengthOffsetAndSeed() {
        var rng = SplitMix64(seed: 0xC0FFEE)
        let bytes = (0..<1_200).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        bytes.withUnsafeBytes { all in
            for length in 0...300 {
                for offset in [0, 1, 3, 7] {
                    let slice = UnsafeRawBufferPointer(rebasing: all[offset..<offset + length])
                    let seed = UInt32(truncatingIfNeeded: rng.next())
                    #expect(CRC32C.checksum(slice, seed: seed) == CRC32C.software(slice, seed: seed), "length \(length), offset \(offset)")
                }
            }
            // A CRC extended piece by piece equals the CRC of the whole.
            let whole = CRC32C.checksum(all)
            var running: UInt32 = 0
            var at = 0
            for piece in [1, 7, 8, 9, 64, 300, 811] {
                running = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: all[at..<at + piece]), seed: running)
                at += piece
            }
            #expect(at == all.count)
            #expect(running == whole)
            #expect(CRC32C.software(all) == whole)
        }
    }
}
