import EventLog
import Events
import Foundation
import TallyTestSupport
import Testing

/// `replay prove`, `check-proof`, `digest` and `verify` over the verifiable log, through the
/// built binary: proofs check offline against heads, and a tampered event, head or path is
/// refused; the tree head survives export → import; a rewritten log fails `verify --digest`.
@Suite(.timeLimit(.minutes(5))) struct ProveCommandTests {
    static func run(_ arguments: [String]) async throws -> ProcessOutput {
        try await runProcess(try builtProduct("replay"), arguments)
    }

    static func write(_ text: String, _ path: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    static func object(_ text: String) throws -> JSONValue.Object {
        try #require(try JSONParser.parse(text.trimmingCharacters(in: .whitespacesAndNewlines), maxBytes: 1 << 20).objectValue)
    }

    @Test func proofsCheckOfflineAndTamperingIsRefused() async throws {
        try await withTemporaryDirectory("prove") { tmp in
            let dir = tmp.path
            let count = try await ImportExportTests.writeFixture(dir + "/log")
            let digest = try await Self.run(["digest", "--log", dir + "/log"])
            #expect(digest.status == 0, "\(digest.stderr)")
            let head = try Self.object(digest.stdout)
            #expect(head["tree_size"]?.int64Value == Int64(count))
            try Self.write(digest.stdout, dir + "/head.json")
            for position in [1, 2, count / 2, count - 1, count] {
                let proof = try await Self.run(["prove", "--log", dir + "/log", "--position", "\(position)"])
                #expect(proof.status == 0, "\(proof.stderr)")
                try Self.write(proof.stdout, dir + "/proof.json")
                let event = try await Self.run(["inspect", "--log", dir + "/log", "--from-position", "\(position)", "--limit", "1"])
                try Self.write(event.stdout, dir + "/event.json")
                let checked = try await Self.run(["check-proof", "--proof", dir + "/proof.json", "--event", dir + "/event.json", "--head", dir + "/head.json"])
                #expect(checked.status == 0 && checked.stdout.contains("\"valid\":true"), "position \(position): \(checked.stdout) \(checked.stderr)")
                // Another event with this proof: its leaf differs.
                let other = try await Self.run(["inspect", "--log", dir + "/log", "--from-position", "\(position == 1 ? 2 : 1)", "--limit", "1"])
                try Self.write(other.stdout, dir + "/other.json")
                let wrongEvent = try await Self.run(["check-proof", "--proof", dir + "/proof.json", "--event", dir + "/other.json", "--head", dir + "/head.json"])
                #expect(wrongEvent.status == 1 && wrongEvent.stdout.contains("leaf_mismatch"), "\(wrongEvent.stdout)")
            }
            // One changed character of the event's data (the actor) is refused.
            let event = try await Self.run(["inspect", "--log", dir + "/log", "--from-position", "5", "--limit", "1"])
            try Self.write(event.stdout.replacingOccurrences(of: "\"actor\":\"user:42\"", with: "\"actor\":\"user:43\""), dir + "/forged.json")
            try Self.write(try await Self.run(["prove", "--log", dir + "/log", "--position", "5"]).stdout, dir + "/proof5.json")
            let forged = try await Self.run(["check-proof", "--proof", dir + "/proof5.json", "--event", dir + "/forged.json", "--head", dir + "/head.json"])
            #expect(forged.status == 1 && forged.stdout.contains("leaf_mismatch"), "\(forged.stdout)")
            // A head with another root, and a proof with a changed path hash, fail.
            let root = try #require(head["root_hash"]?.stringValue)
            let flipped = String(root.prefix(63)) + (root.last == "0" ? "1" : "0")
            try Self.write(digest.stdout.replacingOccurrences(of: root, with: flipped), dir + "/badhead.json")
            try Self.write(event.stdout, dir + "/event5.json")
            let badHead = try await Self.run(["check-proof", "--proof", dir + "/proof5.json", "--event", dir + "/event5.json", "--head", dir + "/badhead.json"])
            #expect(badHead.status == 1 && badHead.stdout.contains("proof_failed"), "\(badHead.stdout)")
            let proof5 = try Self.object(try String(contentsOfFile: dir + "/proof5.json", encoding: .utf8))
            let first = try #require(proof5["audit_path"]?.arrayValue?.first?.stringValue)
            let text = try String(contentsOfFile: dir + "/proof5.json", encoding: .utf8)
            try Self.write(text.replacingOccurrences(of: first, with: String(first.reversed())), dir + "/badpath.json")
            let badPath = try await Self.run(["check-proof", "--proof", dir + "/badpath.json", "--event", dir + "/event5.json", "--head", dir + "/head.json"])
            #expect(badPath.status == 1, "\(badPath.stdout)")
            // Not a proof: exit 2; no log involved at all.
            try Self.write("{\"proof\":\"inclusion\",\"position\":1}", dir + "/short.json")
            #expect(try await Self.run(["check-proof", "--proof", dir + "/short.json", "--event", dir + "/event5.json", "--head", dir + "/head.json"]).status == 2)

            // Consistency: the head as of 10 events is a prefix of the head now.
            let old = try await Self.run(["digest", "--log", dir + "/log", "--position", "10"])
            #expect(old.status == 0 && old.stdout.contains("\"tree_size\":10") && !old.stdout.contains("chain_hash"), "\(old.stdout)")
            try Self.write(old.stdout, dir + "/old.json")
            let consistency = try await Self.run(["prove", "--log", dir + "/log", "--consistency", "--from", "10"])
            #expect(consistency.status == 0, "\(consistency.stderr)")
            try Self.write(consistency.stdout, dir + "/consistency.json")
            let held = try await Self.run(["check-proof", "--proof", dir + "/consistency.json", "--old-head", dir + "/old.json", "--head", dir + "/head.json"])
            #expect(held.status == 0 && held.stdout.contains("\"valid\":true"), "\(held.stdout) \(held.stderr)")
            let swapped = try await Self.run(["check-proof", "--proof", dir + "/consistency.json", "--old-head", dir + "/old.json", "--head", dir + "/badhead.json"])
            #expect(swapped.status == 1, "\(swapped.stdout)")

            // Bad usage and no log.
            #expect(try await Self.run(["prove", "--log", dir + "/log", "--position", "\(count + 1)"]).status == 64)
            #expect(try await Self.run(["prove", "--log", dir + "/log", "--position", "3", "--tree-size", "2"]).status == 64)
            #expect(try await Self.run(["prove", "--log", dir, "--position", "1"]).status == 2)
        }
    }

    @Test func treeHeadSurvivesExportImportAndARewriteFailsVerify() async throws {
        try await withTemporaryDirectory("prove-move") { tmp in
            let dir = tmp.path
            _ = try await ImportExportTests.writeFixture(dir + "/log")
            let exported = try await Self.run(["export", "--log", dir + "/log", "--format", "jsonl"])
            try Self.write(exported.stdout, dir + "/events.jsonl")
            #expect(try await Self.run(["import", "--log", dir + "/moved", dir + "/events.jsonl", "--batch", "7"]).status == 0)
            let a = try Self.object(try await Self.run(["digest", "--log", dir + "/log"]).stdout)
            let b = try Self.object(try await Self.run(["digest", "--log", dir + "/moved"]).stdout)
            #expect(a["root_hash"] != nil && a["root_hash"] == b["root_hash"] && a["tree_size"] == b["tree_size"])
            #expect(a["chain_hash"] != b["chain_hash"], "the chain depends on batching; the tree does not")

            // verify recomputes the head from the events.
            let verified = try Self.object(try await Self.run(["verify", "--log", dir + "/moved"]).stdout)
            #expect(verified["intact"] == .bool(true) && verified["root_hash"] == a["root_hash"])

            // Rewrite one event and import again: the chain is intact, the tree head is not the digest's.
            let digest = try await Self.run(["digest", "--log", dir + "/log"])
            try Self.write(digest.stdout, dir + "/digest.json")
            var lines = exported.stdout.split(separator: "\n").map(String.init)
            lines[11] = lines[11].replacingOccurrences(of: "\"actor\":\"user:42\"", with: "\"actor\":\"user:7\"")
            try Self.write(lines.joined(separator: "\n") + "\n", dir + "/rewritten.jsonl")
            #expect(try await Self.run(["import", "--log", dir + "/rewritten", dir + "/rewritten.jsonl"]).status == 0)
            let caught = try await Self.run(["verify", "--log", dir + "/rewritten", "--digest", dir + "/digest.json"])
            #expect(caught.status == 1, "\(caught.stdout) \(caught.stderr)")
            let report = try Self.object(caught.stdout)
            #expect(report["intact"] == .bool(false))
            #expect(report["tree_break"]?.objectValue?["expected_root_hash"] == a["root_hash"])
            // The unmodified move passes the same digest: its tree head vouches for the events.
            let moved = try await Self.run(["verify", "--log", dir + "/moved", "--digest", dir + "/digest.json"])
            #expect(moved.status == 0, "\(moved.stdout) \(moved.stderr)")
        }
    }
}
