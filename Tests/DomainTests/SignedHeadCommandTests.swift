import EventLog
import Foundation
import TallyTestSupport
import Testing

/// `replay keygen`, `digest --signing-key` and `verify --public-key`: signed heads kept beside
/// the log catch a recomputed rewrite with no outside digest, and a head signed by another
/// key, or for more events than the log holds, is refused.
@Suite(.timeLimit(.minutes(5))) struct SignedHeadCommandTests {
    static func run(_ arguments: [String], environment: [String: String]? = nil) async throws -> ProcessOutput {
        try await runProcess(try builtProduct("replay"), arguments, environment: environment)
    }

    @Test func signedHeadsCatchARewrite() async throws {
        try await withTemporaryDirectory("signed") { tmp in
            let dir = tmp.path
            let count = try await ImportExportTests.writeFixture(dir + "/log")
            let keygen = try await Self.run(["keygen", "--out", dir + "/key"])
            #expect(keygen.status == 0, "\(keygen.stderr)")
            let publicKey = try #require((try JSONSerialization.jsonObject(with: Data(keygen.stdoutBytes)) as? [String: Any])?["public_key"] as? String)
            #expect(try await Self.run(["keygen", "--out", dir + "/key"]).status == 2, "an existing key is never overwritten")
            let other = try await Self.run(["keygen", "--out", dir + "/other"])
            let otherKey = try #require((try JSONSerialization.jsonObject(with: Data(other.stdoutBytes)) as? [String: Any])?["public_key"] as? String)

            // Heads as of 10 events and of all of them, as the server would append them.
            let early = try await Self.run(["digest", "--log", dir + "/log", "--position", "10", "--signing-key", dir + "/key"])
            let late = try await Self.run(["digest", "--log", dir + "/log"], environment: ["TALLY_SIGNING_KEY": dir + "/key"])
            #expect(early.status == 0 && late.status == 0, "\(early.stderr) \(late.stderr)")
            #expect(early.stdout.contains("\"signature\":") && late.stdout.contains("\"chain_hash\":") && late.stdout.contains("\"signature\":"))
            try Data((early.stdout + late.stdout).utf8).write(to: URL(fileURLWithPath: dir + "/log/tree-heads.jsonl"))

            let verified = try await Self.run(["verify", "--log", dir + "/log", "--public-key", publicKey])
            #expect(verified.status == 0 && verified.stdout.contains("\"signed_heads_checked\":2"), "\(verified.stdout) \(verified.stderr)")
            let wrongKey = try await Self.run(["verify", "--log", dir + "/log", "--public-key", otherKey])
            #expect(wrongKey.status == 1 && wrongKey.stdout.contains("not signed by key"), "\(wrongKey.stdout)")

            // A rewrite of event 12 with every hash recomputed (export, edit, import): the
            // chain is intact, the signed head of all events is not.
            let exported = try await Self.run(["export", "--log", dir + "/log", "--format", "jsonl"])
            var lines = exported.stdout.split(separator: "\n").map(String.init)
            lines[11] = lines[11].replacingOccurrences(of: "\"actor\":\"user:42\"", with: "\"actor\":\"user:9\"")
            try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: dir + "/rewritten.jsonl"))
            #expect(try await Self.run(["import", "--log", dir + "/rewritten", dir + "/rewritten.jsonl"]).status == 0)
            let caught = try await Self.run(["verify", "--log", dir + "/rewritten", "--public-key", publicKey, "--heads", dir + "/log/tree-heads.jsonl"])
            #expect(caught.status == 1, "\(caught.stdout) \(caught.stderr)")
            #expect(caught.stdout.contains("\"signed_head_break\":{\"heads_line\":2,\"tree_size\":\(count)"), "\(caught.stdout)")
            #expect(caught.stdout.contains("found_root_hash"))
            #expect(caught.stdout.contains("\"changed_from_position\":11,\"changed_until_position\":\(count)"), "event 12 lies after the head of 10 that holds: \(caught.stdout)")

            // A log shorter than a signed head: truncated.
            try Data((lines.prefix(20).joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: dir + "/short.jsonl"))
            #expect(try await Self.run(["import", "--log", dir + "/short", dir + "/short.jsonl"]).status == 0)
            let short = try await Self.run(["verify", "--log", dir + "/short", "--public-key", publicKey, "--heads", dir + "/log/tree-heads.jsonl"])
            #expect(short.status == 1 && short.stdout.contains("truncated"), "\(short.stdout)")

            // No heads file, or no key: exit 2 or 64.
            #expect(try await Self.run(["verify", "--log", dir + "/short", "--public-key", publicKey]).status == 2)
            #expect(try await Self.run(["verify", "--log", dir + "/short", "--public-key", "nonsense"]).status == 2)
            #expect(try await Self.run(["verify", "--log", dir + "/short", "--heads", dir + "/log/tree-heads.jsonl"]).status == 64)
        }
    }
}
