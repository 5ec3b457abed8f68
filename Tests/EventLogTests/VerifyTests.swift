import TallyTestSupport
import Testing
@testable import EventLog

/// `LogVerifier` and `replay verify`/`digest`: an intact log verifies with its head; a changed
/// byte in an old batch is reported at that batch's first position; a digest keeps verifying
/// as the log grows, and fails for a rewritten history.
@Suite(.timeLimit(.minutes(5))) struct VerifyTests {
    static let options = FileLog.Options(fsync: .never, segmentSize: 64 << 10)

    /// A log of several segments; returns its head and the layout of every segment.
    static func build(_ path: String, calls: Int = 150, salt: UInt64 = 0) async throws -> (LogHead, [(String, [BatchInfo])]) {
        let log = try FileLog(directory: path, options: options)
        for call in 0..<calls {
            _ = try await log.append(to: "ver-\(call % 4)", events: (0..<(1 + call % 5)).map { i in
                event(payload: noiseBytes(count: 200 + (call + i) % 300, seed: salt &+ UInt64(call * 8 + i)), recordedAt: Int64(call))
            })
        }
        let head = log.currentHead()
        try await log.close()
        let layouts = try segmentNames(path).map { ($0, try batchLayout(ofSegment: path + "/" + $0)) }
        return (head, layouts)
    }

    static func verifyCommand(_ arguments: [String]) async throws -> ProcessOutput {
        try await runProcess(try builtProduct("replay"), ["verify"] + arguments)
    }

    @Test func intactLogVerifiesWithItsHead() async throws {
        try await withTemporaryDirectory { dir in
            let (head, layouts) = try await Self.build(dir.path)
            try #require(layouts.count >= 3)
            let report = try LogVerifier.verify(directory: dir.path)
            #expect(report.intact && report.firstBreak == nil)
            #expect(report.head == head)
            #expect(report.segments == layouts.count)
            #expect(report.batches == layouts.reduce(0) { $0 + $1.1.count })
            #expect(report.events == head.position)
            #expect(report.tornTailBytes == nil)
            #expect(try LogVerifier.verify(directory: dir.path, expected: head).intact)

            let output = try await Self.verifyCommand(["--log", dir.path])
            #expect(output.status == 0, "\(output.stdout) \(output.stderr)")
            #expect(output.stdout.contains("\"intact\":true"), "\(output.stdout)")
            #expect(output.stdout.contains("\"head_position\":\(head.position),\"head_chain_hash\":\"\(head.chainHashHex)\""), "\(output.stdout)")

            // An incomplete last batch (a writer mid-append) is reported, and is not a break.
            let last = dir.sub(layouts.last!.0)
            try writeFile(last, try readFile(last) + [0x50, 0x2A, 0x4D, 0x18, 0x74])
            let torn = try LogVerifier.verify(directory: dir.path)
            #expect(torn.intact && torn.tornTailBytes == 5 && torn.head == head)
            #expect(try await Self.verifyCommand(["--log", dir.path]).status == 0)
        }
    }

    @Test func changedByteInAnOldBatchIsReportedAtItsFirstPosition() async throws {
        try await withTemporaryDirectory { dir in
            let (head, layouts) = try await Self.build(dir.path)
            let files = try Dictionary(uniqueKeysWithValues: layouts.map { ($0.0, try readFile(dir.sub($0.0))) })
            // Victims: first batch of the log, one in the middle of a sealed segment, one in the
            // active segment before its last batch; bytes in the header and in the data.
            let (first, sealed, active) = (layouts[0], layouts[1], layouts[layouts.count - 1])
            try #require(active.1.count >= 3)
            let victims: [(String, BatchInfo, Int)] = [
                (first.0, first.1[0], 20),                                            // first position field
                (first.0, first.1[0], BatchHeader.framedSize + 30),                   // data
                (sealed.0, sealed.1[sealed.1.count / 2], 60),                         // previous hash
                (sealed.0, sealed.1[sealed.1.count / 2], sealed.1[sealed.1.count / 2].header.totalSize - 1),  // content checksum
                (active.0, active.1[active.1.count - 2], 3),                          // skippable magic
                (active.0, active.1[active.1.count - 2], BatchHeader.framedSize + 8), // LZ4 frame header
            ]
            for (name, batch, delta) in victims {
                let label = "\(name) byte \(batch.offset + delta), batch at position \(batch.header.firstPosition)"
                var bytes = files[name]!
                bytes[batch.offset + delta] ^= 0x10
                try writeFile(dir.sub(name), bytes)

                let report = try LogVerifier.verify(directory: dir.path)
                #expect(!report.intact, "\(label)")
                #expect(report.firstBreak?.position == batch.header.firstPosition, "\(label): \(String(describing: report.firstBreak))")
                #expect(report.firstBreak?.segment == name, "\(label)")
                #expect(report.firstBreak?.offset == batch.offset, "\(label)")
                #expect(report.head.position == batch.header.firstPosition - 1, "\(label)")
                // A changed data byte fails the data checksum, and the break names the chain
                // hash the header records and the other one the changed bytes give. A changed
                // header fails the header's own checksum first: no hash to compare.
                if delta >= BatchHeader.framedSize {
                    let hashes = try #require(report.firstBreak?.hashes, "\(label)")
                    #expect(hashes.expected == batch.header.chainHash, "\(label)")
                    #expect(hashes.found != hashes.expected && hashes.found.count == 32, "\(label)")
                } else {
                    #expect(report.firstBreak?.hashes == nil, "\(label)")
                }

                let output = try await Self.verifyCommand(["--log", dir.path])
                #expect(output.status == 1, "\(label): \(output.stdout) \(output.stderr)")
                #expect(output.stdout.contains("\"intact\":false"), "\(label)")
                #expect(output.stdout.contains("\"first_break\":{\"position\":\(batch.header.firstPosition),"), "\(label): \(output.stdout)")
                if let hashes = report.firstBreak?.hashes {
                    #expect(output.stdout.contains("\"expected_hash\":\"\(hashes.expectedHex)\",\"found_hash\":\"\(hashes.foundHex)\""), "\(label): \(output.stdout)")
                }

                try writeFile(dir.sub(name), files[name]!)
                #expect(try LogVerifier.verify(directory: dir.path).head == head, "\(label): restored")
            }
            #expect(try await Self.verifyCommand(["--log", dir.path]).status == 0)
            // Not a log at all: unreadable, exit 2.
            #expect(try await Self.verifyCommand(["--log", dir.sub("missing")]).status == 2)
        }
    }

    @Test func digestKeepsVerifyingAsTheLogGrowsAndCatchesRewrites() async throws {
        try await withTemporaryDirectory { dir in
            let binary = try builtProduct("replay")
            let logPath = dir.sub("log")
            let (head, _) = try await Self.build(logPath, calls: 40)
            let digest = try await runProcess(binary, ["digest", "--log", logPath])
            #expect(digest.status == 0, "\(digest.stderr)")
            #expect(digest.stdout.hasPrefix("{\"position\":\(head.position),\"chain_hash\":\"\(head.chainHashHex)\",\"tree_size\":\(head.position),\"root_hash\":\""), "\(digest.stdout)")
            let digestFile = dir.sub("digest.json")
            try writeFile(digestFile, digest.stdoutBytes)

            // The log grows (into new segments): the digest still verifies.
            let log = try FileLog(directory: logPath, options: Self.options)
            for call in 0..<60 {
                _ = try await log.append(to: "ver-more", events: [event(payload: noiseBytes(count: 900, seed: 9_000 + UInt64(call)))])
            }
            try await log.close()
            let grown = try await runProcess(binary, ["verify", "--log", logPath, "--digest", digestFile])
            #expect(grown.status == 0, "\(grown.stdout) \(grown.stderr)")
            #expect(grown.stdout.contains("\"digest_tree_size\":\(head.position)"), "\(grown.stdout)")
            #expect(try LogVerifier.verify(directory: logPath, expected: head).intact)

            // A different history: same shape, different payloads; then a shorter one.
            let rewritten = dir.sub("rewritten")
            _ = try await Self.build(rewritten, calls: 50, salt: 77)
            let other = try await runProcess(binary, ["verify", "--log", rewritten, "--digest", digestFile])
            #expect(other.status == 1, "\(other.stdout) \(other.stderr)")
            #expect(other.stdout.contains("\"tree_break\"") && other.stdout.contains("\"found_root_hash\""), "\(other.stdout)")
            let againstDigest = try LogVerifier.verify(directory: rewritten, expected: head)
            #expect(againstDigest.intact == false)
            // The same batch shape: a batch ends at the digest's position, with another hash.
            #expect(againstDigest.firstBreak?.hashes?.expected == head.chainHash, "\(String(describing: againstDigest.firstBreak))")
            #expect(againstDigest.firstBreak?.hashes?.found.count == 32)
            #expect(try LogVerifier.verify(directory: rewritten).intact, "the rewritten log is intact on its own")

            let shorter = dir.sub("shorter")
            _ = try await Self.build(shorter, calls: 10)
            let short = try await runProcess(binary, ["verify", "--log", shorter, "--digest", digestFile])
            #expect(short.status == 1, "\(short.stdout) \(short.stderr)")
            #expect(short.stdout.contains("the log ends at position"), "\(short.stdout)")
            let report = try LogVerifier.verify(directory: shorter, expected: head)
            #expect(report.firstBreak?.position == report.head.position + 1)
        }
    }
}
