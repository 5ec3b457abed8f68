import EventLog
import Foundation
import TallyTestSupport
import Testing

/// The auditors' tool on a damaged log, through the built binary: read commands exit 1 (the
/// README's "damaged log") and say which repair exists; the intact prefix before the damage
/// reads with exit 0 under `--until-position`; `replay repair` cuts the log there, after which
/// it verifies; a directory that holds no log is refused (exit 2), never "intact".
@Suite(.timeLimit(.minutes(5))) struct DamagedLogCommandTests {
    static func run(_ arguments: [String]) async throws -> ProcessOutput {
        try await runProcess(try builtProduct("replay"), arguments)
    }

    /// A log of several 64 KiB segments whose second segment has a byte flipped mid-file.
    static func damagedLog(_ path: String, keepIndexes: Bool) async throws {
        let log = try FileLog(directory: path, options: .init(fsync: .never, segmentSize: 64 << 10))
        var rng = SplitMix64(seed: 4)
        for i in 0..<600 {
            var payload = [UInt8](repeating: 0, count: 400)
            for j in payload.indices { payload[j] = UInt8(truncatingIfNeeded: rng.next()) }
            _ = try await log.append(to: "d-\(i % 9)", events: [ProposedEvent(type: "Noise", recordedAt: 1_000 + Int64(i), payload: payload)])
        }
        try await log.close()
        let segments = try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(".seg") }.sorted()
        try #require(segments.count >= 3, "\(segments)")
        let victim = path + "/" + segments[1]
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: victim)))
        bytes[bytes.count / 2] ^= 0x5A
        try Data(bytes).write(to: URL(fileURLWithPath: victim))
        if !keepIndexes {
            for name in try FileManager.default.contentsOfDirectory(atPath: path) where name.hasSuffix(".idx") {
                try FileManager.default.removeItem(atPath: path + "/" + name)
            }
        }
    }

    @Test(arguments: [true, false]) func readCommandsOnADamagedLog(keepIndexes: Bool) async throws {
        try await withTemporaryDirectory("damaged") { tmp in
            let log = tmp.path + "/log"
            try await Self.damagedLog(log, keepIndexes: keepIndexes)
            let verify = try await Self.run(["verify", "--log", log])
            #expect(verify.status == 1, "\(verify.stdout) \(verify.stderr)")
            let report = try #require(try JSONSerialization.jsonObject(with: Data(verify.stdoutBytes)) as? [String: Any])
            let broken = try #require((report["first_break"] as? [String: Any])?["position"] as? Int)
            #expect(broken > 1 && broken < 600)

            // Every read command: exit 1, the events before the damage printed, the repair named.
            let inspect = try await Self.run(["inspect", "--log", log])
            #expect(inspect.status == 1, "\(inspect.stderr)")
            #expect(inspect.stdout.split(separator: "\n").count == broken - 1, "\(inspect.stderr)")
            #expect(inspect.stderr.contains("replay repair --log"), "\(inspect.stderr)")
            let stats = try await Self.run(["stats", "--log", log, "--no-checkpoints"])
            #expect(stats.status == 1, "\(stats.stderr)")

            // The intact prefix, asked for as such, is a success.
            let prefix = try await Self.run(["inspect", "--log", log, "--until-position", "\(broken - 1)"])
            #expect(prefix.status == 0, "\(prefix.stderr) \(verify.stdout)")
            #expect(prefix.stdout.split(separator: "\n").count == broken - 1)
            let proof = try await Self.run(["prove", "--log", log, "--position", "1", "--tree-size", "\(broken - 1)"])
            #expect(proof.status == 0, "\(proof.stderr)")

            // The repair the message names; afterwards the log verifies and ends before the damage.
            let repair = try await Self.run(["repair", "--log", log])
            #expect(repair.status == 0 && repair.stdout.contains("\"repaired\":true") && repair.stdout.contains("\"position\":\(broken)"),
                    "\(repair.stdout) \(repair.stderr)")
            let after = try await Self.run(["verify", "--log", log])
            #expect(after.status == 0 && after.stdout.contains("\"head_position\":\(broken - 1)"), "\(after.stdout) \(after.stderr)")
            let again = try await Self.run(["repair", "--log", log])
            #expect(again.status == 0 && again.stdout.contains("\"repaired\":false"), "\(again.stdout)")
        }
    }

    @Test func aPathWithNoLogIsRefused() async throws {
        try await withTemporaryDirectory("nolog") { tmp in
            for command in [["verify"], ["digest"], ["prove", "--position", "1"], ["inspect"], ["repair"]] {
                let empty = try await Self.run(Array(command.prefix(1)) + ["--log", tmp.path] + Array(command.dropFirst()))
                #expect(empty.status == 2 && !empty.stdout.contains("intact"), "\(command): \(empty.stdout) \(empty.stderr)")
                let missing = try await Self.run(Array(command.prefix(1)) + ["--log", tmp.path + "/none"] + Array(command.dropFirst()))
                #expect(missing.status == 2, "\(command): \(missing.stderr)")
            }
        }
    }
}
