import EventLog
import Events
import Foundation
import Logging
import TallyTestSupport
import Testing
@testable import API

/// The server's signed tree heads: `TALLY_SIGNING_KEY` is read and checked with the rest of
/// the configuration; the publisher appends a head the key's public half verifies, whose root
/// is the tree of the log's events, and a new one only when the head moved.
@Suite(.timeLimit(.minutes(2))) struct TreeHeadPublisherTests {
    @Test func theSigningKeySettingIsCheckedAtStart() async throws {
        try await withTemporaryDirectory("signing-key") { dir in
            let key = TreeHeadSigningKey.generate()
            try Data(key.fileContents.utf8).write(to: URL(fileURLWithPath: dir.path + "/key"))
            try Data("not a key".utf8).write(to: URL(fileURLWithPath: dir.path + "/junk"))
            let good = try TallyConfiguration(flags: ["signing-key": dir.path + "/key", "tree-head-interval-s": "5"], environment: [:])
            #expect(good.signingKey?.publicKey.hex == key.publicKey.hex && good.treeHeadInterval == .seconds(5))
            let fromEnvironment = try TallyConfiguration(flags: [:], environment: ["TALLY_SIGNING_KEY": dir.path + "/key"])
            #expect(fromEnvironment.signingKey != nil)
            #expect(throws: ConfigurationError.self) { try TallyConfiguration(flags: ["signing-key": dir.path + "/missing"], environment: [:]) }
            do {
                _ = try TallyConfiguration(flags: ["signing-key": dir.path + "/junk"], environment: [:])
                Issue.record("a junk key was accepted")
            } catch let error as ConfigurationError {
                #expect(error.code == .invalidValue && error.setting == "signing-key")
            }
            #expect(throws: ConfigurationError.self) { try TallyConfiguration(flags: ["tree-head-interval-s": "0"], environment: [:]) }
        }
    }

    @Test func theServerRunsAPublisherOnlyWithAKey() async throws {
        let key = TreeHeadSigningKey.generate()
        try await withTallyFixture(configure: { opsConfiguration(&$0); $0.signingKey = key }) { fixture in
            #expect(fixture.components.services(closesStore: false).contains { $0 is TreeHeadPublisher<FileLog> })
        }
        try await withTallyFixture(configure: opsConfiguration) { fixture in
            #expect(!fixture.components.services(closesStore: false).contains { $0 is TreeHeadPublisher<FileLog> })
        }
    }

    @Test func publishedHeadsVerifyAndMatchTheEvents() async throws {
        try await withTallyFixture(configure: opsConfiguration) { fixture in
            for i in 0..<300 {
                _ = try await fixture.log.append(to: "pub-\(i % 4)", events: [ProposedEvent(type: "ProbeThing", recordedAt: 5_000 + Int64(i), payload: [UInt8(i & 0xFF)])])
            }
            let key = TreeHeadSigningKey.generate()
            let path = try makeTemporaryDirectory("heads") + "/" + TreeHeadPublisher<FileLog>.fileName
            let publisher = TreeHeadPublisher(api: fixture.api, key: key, path: path, interval: .seconds(60), logger: Logger(label: "test"))
            let first = await publisher.publish(after: nil)
            #expect(first == 300)
            #expect(await publisher.publish(after: first) == 300)
            _ = try await fixture.log.append(to: "pub-x", events: [ProposedEvent(type: "ProbeThing", recordedAt: 9_000, payload: [1])])
            #expect(await publisher.publish(after: first) == 301)
            let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
            #expect(lines.count == 2, "a head is written only when the log moved")
            var folded = MerkleCompactRange()
            var roots: [MerkleHash] = [.emptyTree]
            for try await event in fixture.log.read(from: 1) {
                folded.append(CanonicalEvent.leafHash(of: event))
                roots.append(folded.root)
            }
            for (line, size) in zip(lines, [300, 301]) {
                let head = try TreeProofs.signedHead(Array(line.utf8))
                #expect(key.publicKey.verifies(head))
                #expect(head.size == UInt64(size) && head.root == roots[size])
            }
        }
    }

    /// The server keeps the tree index up with the head in the background, key or not.
    @Test func theTreeIndexFollowsTheHead() async throws {
        try await withTallyFixture(configure: opsConfiguration) { fixture in
            #expect(fixture.components.services(closesStore: false).contains { $0 is TreeIndexFollower<FileLog> })
            let chunk = UInt64(1) << MerkleTreeIndex.chunkLevel
            for i in 0..<(3 * chunk + 5) {
                _ = try await fixture.log.append(to: "follow-\(i % 3)", events: [ProposedEvent(type: "ProbeThing", recordedAt: 7_000 + Int64(i), payload: [1])])
            }
            let follower = TreeIndexFollower(api: fixture.api, interval: .seconds(60), logger: Logger(label: "test"))
            #expect(await follower.follow() == 3)
            let index = try await fixture.api.tree.index(for: fixture.log)
            #expect(await index.chunks == 3)
            // Its chunks are the tree of the events: the root from the index equals the fold.
            var folded = MerkleCompactRange()
            for try await event in fixture.log.read(from: 1) { folded.append(CanonicalEvent.leafHash(of: event)) }
            #expect(try await index.root(size: 3 * chunk + 5, store: fixture.log) == folded.root)
            for i in 0..<chunk {
                _ = try await fixture.log.append(to: "follow-x", events: [ProposedEvent(type: "ProbeThing", recordedAt: 9_000 + Int64(i), payload: [2])])
            }
            #expect(await follower.follow() == 4)
        }
    }
}
