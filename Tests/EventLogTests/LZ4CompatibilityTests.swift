import TallyTestSupport
import Testing
@testable import EventLog

/// A segment is a valid LZ4 stream: the stock `lz4` program skips the batch headers
/// (skippable frames) and prints exactly the raw encoded envelopes of every batch.
@Suite(.timeLimit(.minutes(3))) struct LZ4CompatibilityTests {
    static let lz4 = "/usr/bin/lz4"

    @Test func stockLZ4DecodesEverySegment() async throws {
        try #require(fileExists(Self.lz4), "\(Self.lz4) is missing: install the lz4 package (make deps)")
        try await withTemporaryDirectory { dir in
            let log = try FileLog(directory: dir.path, options: .init(fsync: .never, segmentSize: 64 << 10))
            // Compressible and incompressible payloads, keyed and multi-stream appends, and one
            // batch of 1.6 MB raw: a frame of two 1 MiB blocks.
            for call in 0..<120 {
                var appends = [StreamAppend(stream: "lz-\(call % 3)", events: (0..<(1 + call % 5)).map { i in
                    let payload = call % 2 == 0 ? noiseBytes(count: 150 + call * 5, seed: UInt64(call * 8 + i))
                                                : Array(String(repeating: "creator \(call) \(i) ", count: 30).utf8)
                    return event("Lz4.Probe", payload: payload, recordedAt: Int64(call), actor: "a", correlation: "c\(call)")
                })]
                if call % 7 == 0 { appends.append(StreamAppend(stream: "lz-side", events: [textEvent("side")])) }
                _ = try await log.append(appends, idempotencyKey: call % 4 == 0 ? "lz-key-\(call)" : nil)
            }
            _ = try await log.append(to: "lz-big", events: [event(payload: noiseBytes(count: 800_000, seed: 1)),
                                                           event(payload: noiseBytes(count: 800_000, seed: 2))])
            _ = try await log.append(to: "lz-0", events: [textEvent("last")])
            let all = try await readAll(log)
            try await log.close()

            let segments = try segmentNames(dir.path)
            try #require(segments.count >= 3)
            var seen = 0
            for name in segments {
                let path = dir.sub(name)
                let bytes = try readFile(path)
                let layout = try batchLayout(bytes)
                let output = try await runProcess(Self.lz4, ["-dc", path])
                #expect(output.status == 0, "lz4 -dc \(name): \(output.stderr)")
                let decoded = output.stdoutBytes

                // Byte count: the headers' raw lengths; content: each batch's raw envelopes.
                #expect(decoded.count == layout.reduce(0) { $0 + Int($1.header.rawLength) }, "\(name)")
                let raw = try layout.flatMap { try rawEnvelopes(bytes, $0) }
                #expect(decoded == raw, "\(name): lz4 output differs from the batches' raw envelopes")

                // Cut at the raw lengths, each batch's envelopes decode to the events read back.
                let first = Int(layout[0].header.firstPosition) - 1
                let last = Int(layout.last!.header.lastPosition)
                let events = Array(all[first..<last])
                var decodedEvents: [RecordedEvent] = []
                var offset = 0
                for batch in layout where offset + Int(batch.header.rawLength) <= decoded.count {
                    let slice = Array(decoded[offset..<offset + Int(batch.header.rawLength)])
                    decodedEvents += try EnvelopeCodec.decodeBatch(slice, header: batch.header)
                    offset += Int(batch.header.rawLength)
                }
                #expect(decodedEvents == events, "\(name)")
                seen += events.count
            }
            #expect(seen == all.count)
        }
    }
}
