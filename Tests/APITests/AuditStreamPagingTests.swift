import API
import Commands
import Events
import Foundation
import Hummingbird
import HummingbirdTesting
import TallyTestSupport
import Testing

/// `/api/v1/audit/events?stream=` pages by stream version: `from_version` starts a page,
/// `next_from_version` continues it, and the other filters apply within each page without
/// holding the cursor back.
@Suite("Audit: a stream's history page by page", .timeLimit(.minutes(5)))
struct AuditStreamPagingTests {
    /// alice's stream: versions 0…8, grants at the even versions, searches at the odd ones.
    static func writeStream(_ fixture: APIFixture) async throws {
        for i in 0..<9 {
            if i.isMultiple(of: 2) {
                _ = try await fixture.commands.grantCredits(user: "alice", amount: Int64(i + 1), reason: "r\(i)", context: CommandContext(actor: "test"))
            } else {
                _ = try await fixture.commands.recordSearch(CreatorSearched(user: "alice", username: "u\(i)", servedFrom: .fresh, durationMs: 1, found: true),
                                                            context: CommandContext(actor: "test"))
            }
        }
        // Another stream in between, which the stream's pages never show.
        _ = try await fixture.commands.grantCredits(user: "bob", amount: 1, reason: "other", context: CommandContext(actor: "test"))
    }

    static func page(_ client: any TestClientProtocol, _ fixture: APIFixture, _ query: String) async throws -> (versions: [Int], types: [String], next: Int?) {
        let response = try await send(client, .get, "/api/v1/audit/events?stream=user-alice&" + query, token: fixture.auditorToken)
        #expect(response.status == .ok, "\(String(buffer: response.body))")
        let body = try json(response)
        let events = body["events"] as? [[String: Any]] ?? []
        #expect(body.keys.contains("next_from_version"), "\(body)")
        return (events.compactMap { int($0, "version") }, events.compactMap { $0["type"] as? String }, int(body, "next_from_version"))
    }

    @Test("a stream of 9 events in pages of 2: five pages, each event once, in order, then null")
    func pagesThroughTheWholeStream() async throws {
        try await withAPI { fixture, client in
            try await Self.writeStream(fixture)
            var seen: [Int] = []
            var cursor: Int? = 0
            var pages = 0
            while let from = cursor {
                let page = try await Self.page(client, fixture, "limit=2&from_version=\(from)")
                #expect(page.versions.count <= 2)
                seen += page.versions
                cursor = page.next
                pages += 1
                try #require(pages <= 6, "the cursor must end")
            }
            #expect(seen == Array(0..<9))
            #expect(pages == 5)
        }
    }

    @Test("with a type filter a page may keep fewer than limit, yet the cursor moves on past it")
    func filtersApplyWithinThePage() async throws {
        try await withAPI { fixture, client in
            try await Self.writeStream(fixture)
            var kept: [Int] = []
            var cursors: [Int] = []
            var cursor: Int? = 0
            while let from = cursor {
                let page = try await Self.page(client, fixture, "limit=3&type=CreditsGranted&from_version=\(from)")
                #expect(page.types.allSatisfy { $0 == "CreditsGranted" })
                kept += page.versions
                cursor = page.next
                if let next = page.next { cursors.append(next) }
                try #require(cursors.count <= 4, "the cursor must end")
            }
            #expect(kept == [0, 2, 4, 6, 8])
            #expect(cursors == [3, 6], "pages of 3 stream versions each: the cursor is the next unread version")

            // A page whose events are all filtered out still hands on the cursor.
            let empty = try await Self.page(client, fixture, "limit=1&type=CreditsGranted&from_version=1")
            #expect(empty.versions.isEmpty && empty.next == 2)
            // from_position filters within the page too: alice's events past position 5.
            let late = try await Self.page(client, fixture, "limit=100&from_position=6")
            #expect(late.versions == [5, 6, 7, 8] && late.next == nil)
        }
    }

    @Test("from_version is refused without stream= and out of range")
    func fromVersionChecked() async throws {
        try await withAPI { fixture, client in
            let alone = try await send(client, .get, "/api/v1/audit/events?from_version=2", token: fixture.auditorToken)
            #expect(alone.status == .badRequest)
            #expect(try json(alone)["field"] as? String == "from_version")
            let negative = try await send(client, .get, "/api/v1/audit/events?stream=user-alice&from_version=-1", token: fixture.auditorToken)
            #expect(negative.status == .badRequest)
            let text = try await send(client, .get, "/api/v1/audit/events?stream=user-alice&from_version=x", token: fixture.auditorToken)
            #expect(text.status == .badRequest)
        }
    }
}
