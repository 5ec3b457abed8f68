import EventLog
import Events
import Foundation
import Hummingbird
import HummingbirdTesting
import TallyTestSupport
import Testing
@testable import API

/// The auditors' proof routes through the real router: every audit event carries its leaf
/// hash; inclusion and consistency proofs check offline (`TreeProofs.check`) against the
/// digest's tree head, which equals the tree folded from the log's events; bad input is a
/// 400 problem naming the field; other roles are refused.
@Suite(.timeLimit(.minutes(5))) struct AuditProofRouteTests {
    static func object(_ buffer: ByteBuffer) throws -> JSONValue.Object {
        try #require(try JSONParser.parse(Array(buffer.readableBytesView), maxBytes: 1 << 20).objectValue)
    }

    @Test func proofsCheckAgainstTheDigestAndBadInputIsRefused() async throws {
        try await withTallyFixture(configure: opsConfiguration) { fixture in
            for i in 0..<700 {
                _ = try await fixture.log.append(to: "probe-\(i % 5)", events: [
                    ProposedEvent(type: "ProbeThing", recordedAt: 1_000_000 + Int64(i), actor: "a\(i % 3)", payload: [UInt8(i & 0xFF), 7]),
                ])
            }
            var folded = MerkleCompactRange()
            var prefixRoots: [MerkleHash] = [.emptyTree]
            for try await event in fixture.log.read(from: 1) {
                folded.append(CanonicalEvent.leafHash(of: event))
                prefixRoots.append(folded.root)
            }
            let roots = prefixRoots
            let head = UInt64(roots.count - 1)
            let auditor = try await fixture.token(.auditor, "audit")
            let user = try await fixture.token(.user, "alice")
            let auth: @Sendable (String) -> HTTPFields = { token in [.authorization: "Bearer " + token] }
            let app = Application(router: fixture.api.makeRouter())
            try await app.test(.router) { client in
                var digest = TreeProofs.Head(size: 0, root: .emptyTree)
                try await client.execute(uri: "/api/v1/audit/digest", method: .get, headers: auth(auditor)) { response in
                    let body = try Self.object(response.body)
                    digest = try TreeProofs.head(Array(response.body.readableBytesView))
                    #expect(body["position"]?.int64Value == Int64(head))
                }
                #expect(digest.size == head && digest.root == roots[Int(head)])
                for position in [1, 2, 256, 257, 500, UInt64(head)] as [UInt64] {
                    var line: [UInt8] = []
                    try await client.execute(uri: "/api/v1/audit/events?from_position=\(position)&limit=1", method: .get, headers: auth(auditor)) { response in
                        let event = try #require(try Self.object(response.body)["events"]?.arrayValue?.first)
                        #expect(event.objectValue?["leaf_hash"] != nil)
                        event.write(to: &line)
                    }
                    try await client.execute(uri: "/api/v1/audit/proof/\(position)", method: .get, headers: auth(auditor)) { response in
                        #expect(response.status == .ok)
                        guard case .inclusion(let proof) = try TreeProofs.proof(Array(response.body.readableBytesView)) else {
                            Issue.record("not an inclusion proof")
                            return
                        }
                        try TreeProofs.check(proof, eventLine: line, head: digest)
                        // The same proof against another head fails.
                        #expect(throws: TreeProofs.Failure.self) {
                            try TreeProofs.check(proof, eventLine: line, head: TreeProofs.Head(size: head, root: roots[Int(head) - 1]))
                        }
                    }
                    let size = min(head, position + 37)
                    try await client.execute(uri: "/api/v1/audit/proof/\(position)?tree_size=\(size)", method: .get, headers: auth(auditor)) { response in
                        guard case .inclusion(let proof) = try TreeProofs.proof(Array(response.body.readableBytesView)) else {
                            Issue.record("not an inclusion proof")
                            return
                        }
                        try TreeProofs.check(proof, eventLine: line, head: TreeProofs.Head(size: size, root: roots[Int(size)]))
                    }
                }
                for (from, to) in [(1, head), (255, 256), (300, 699), (head, head)] as [(UInt64, UInt64)] {
                    try await client.execute(uri: "/api/v1/audit/consistency?from=\(from)&to=\(to)", method: .get, headers: auth(auditor)) { response in
                        guard case .consistency(let proof) = try TreeProofs.proof(Array(response.body.readableBytesView)) else {
                            Issue.record("not a consistency proof")
                            return
                        }
                        try TreeProofs.check(proof, old: TreeProofs.Head(size: from, root: roots[Int(from)]), new: TreeProofs.Head(size: to, root: roots[Int(to)]))
                    }
                }
                let refusals: [(String, String)] = [
                    ("/api/v1/audit/proof/0", "position"), ("/api/v1/audit/proof/abc", "position"), ("/api/v1/audit/proof/\(head + 1)", "position"),
                    ("/api/v1/audit/proof/10?tree_size=9", "tree_size"), ("/api/v1/audit/proof/10?tree_size=\(head + 1)", "tree_size"),
                    ("/api/v1/audit/consistency", "from"), ("/api/v1/audit/consistency?from=5&to=4", "from"),
                    ("/api/v1/audit/consistency?from=1&to=\(head + 1)", "to"), ("/api/v1/audit/consistency?from=0", "from"),
                ]
                for (uri, field) in refusals {
                    try await client.execute(uri: uri, method: .get, headers: auth(auditor)) { response in
                        #expect(response.status == .badRequest, "\(uri)")
                        #expect(response.headers[.contentType] == "application/problem+json", "\(uri)")
                        let body = try Self.object(response.body)
                        #expect(body["code"]?.stringValue == "invalid_input" && body["field"]?.stringValue == field, "\(uri): \(body)")
                    }
                }
                try await client.execute(uri: "/api/v1/audit/proof/1", method: .get, headers: auth(user)) { #expect($0.status == .forbidden) }
                try await client.execute(uri: "/api/v1/audit/consistency?from=1", method: .get) { #expect($0.status == .unauthorized) }
            }
        }
    }
}
