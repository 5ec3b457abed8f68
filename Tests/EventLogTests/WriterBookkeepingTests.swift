import TallyTestSupport
import Testing
@testable import EventLog

/// The writer's per-batch bookkeeping that bulk writes lean on: index names sort in UTF-8
/// byte order (the order lookups binary-search), and the counts of streams that leave
/// memory for a checkpoint record are cached exactly, so expected versions decided from
/// the cache are right.
@Suite(.timeLimit(.minutes(5))) struct WriterBookkeepingTests {
    /// A random name over ASCII, two-byte, three-byte and four-byte scalars, often sharing a
    /// prefix with the previous one, so that prefixes and equal names are common.
    static func randomName(_ rng: inout SplitMix64, previous: String) -> String {
        let alphabet: [Unicode.Scalar] = ["a", "b", "z", "-", "0", "~", "é", "ÿ", "Ā", "中", "\u{FFFD}", "😀", "\u{10FFFF}", "\u{7F}", "\u{01}"]
        var scalars = String.UnicodeScalarView()
        if rng.next() % 2 == 0 {
            let keep = Int(rng.next() % UInt64(previous.unicodeScalars.count + 1))
            scalars.append(contentsOf: previous.unicodeScalars.prefix(keep))
        }
        for _ in 0..<Int(rng.next() % 6) { scalars.append(alphabet[Int(rng.next() % UInt64(alphabet.count))]) }
        return String(scalars)
    }

    @Test func utf8OrderIsTheByteOrderOfTheEncodedNames() {
        var rng = SplitMix64(seed: 11)
        var previous = ""
        for _ in 0..<20_000 {
            let a = Self.randomName(&rng, previous: previous)
            let b = rng.next() % 8 == 0 ? a : Self.randomName(&rng, previous: a)
            previous = b
            let bytes = Array(a.utf8).lexicographicallyPrecedes(Array(b.utf8))
            #expect(utf8Precedes(a, b) == bytes, "\(Array(a.utf8)) vs \(Array(b.utf8))")
            #expect(!(utf8Precedes(a, b) && utf8Precedes(b, a)))
        }
        // Substrings made into strings, and strings built from bridged-looking literals.
        let long = String(repeating: "stream-", count: 40)
        #expect(utf8Precedes(String(long.dropLast()), long))
        #expect(!utf8Precedes(long, String(long.dropLast())))
        #expect(!utf8Precedes("", ""))
        #expect(utf8Precedes("", "a"))
    }

    /// Many streams written across many checkpoint records, each record's streams cached
    /// as they leave memory (a count cached wrong, say only the record's own events, fails
    /// here): the cache stays within its capacity, and every decision from those counts is
    /// exact: the right expected version succeeds, a stale one conflicts and writes nothing.
    /// Then the same versions after a reopen, which starts cold.
    @Test func streamsThatLeaveMemoryAreCachedWithTheirExactCounts() async throws {
        try await withTemporaryDirectory { dir in
            for capacity in [100_000, 40] {
                var options = FileLog.Options(fsync: .never, segmentSize: 8 << 20, checkpointBytes: 4 << 10)
                options.streamCacheCapacity = capacity
                let path = dir.sub("log-\(capacity)")
                let log = try FileLog(directory: path, options: options)
                var rng = SplitMix64(seed: UInt64(capacity))
                var versions: [String: UInt64] = [:]
                for i in 0..<600 {
                    let stream = "warm-\(rng.next() % 150)"
                    let count = Int(rng.next() % 3) + 1
                    let events = (0..<count).map { event(payload: noiseBytes(count: 90, seed: UInt64(i * 4 + $0))) }
                    let result = try await log.append(to: stream, events: events)
                    #expect(result.streamVersions[stream] == versions[stream].map { $0 + UInt64(count) } ?? UInt64(count - 1))
                    versions[stream] = result.streamVersions[stream]
                }
                let held = log.heldCounts
                #expect(held.records > 10, "want many records, got \(held)")
                #expect(held.cachedStreams > 0 && held.cachedStreams <= capacity, "\(held)")
                for (stream, version) in versions.sorted(by: { $0.key < $1.key }) {
                    await #expect(throws: EventLogError.self) {
                        _ = try await log.append(to: stream, expected: version == 0 ? .noStream : .exact(version - 1), events: [textEvent("stale")])
                    }
                    let result = try await log.append(to: stream, expected: .exact(version), events: [textEvent("next")])
                    #expect(result.streamVersions[stream] == version + 1, "\(stream)")
                    versions[stream] = version + 1
                }
                #expect(log.heldCounts.cachedStreams <= capacity)
                try await log.close()
                let reopened = try FileLog(directory: path, options: options)
                for (stream, version) in versions {
                    #expect(try await reopened.streamVersion(stream) == version, "\(stream)")
                }
                try await reopened.close()
            }
        }
    }
}
