import API
import Foundation
import Hummingbird
import HummingbirdTesting
import TallyTestSupport
import Testing

/// What a hostile client's connection may take of the server, over a live socket: idle and
/// slow connections are closed after their (short, configured) timeouts, connections past
/// the limit wait in the backlog, a cut-off body and an oversized head are client errors
/// with a problem document. Each test waits for the server's EOF or answer; the socket's own
/// receive timeout (20 s) only bounds a failing test.
@Suite("Connection timeouts and limits, over a live socket", .timeLimit(.minutes(5)))
struct ConnectionGuardLiveTests {
    static let short = Duration.milliseconds(300)

    @Test("an idle connection is closed after the idle timeout")
    func idleConnectionIsClosed() async throws {
        try await withAPI(.live, configure: { $0.idleTimeout = Self.short }) { _, client in
            let connection = try await RawConnection.open(port: try #require(client.port))
            defer { connection.close() }
            let (answer, closed) = try await connection.readUntilClosed()
            #expect(closed, "the server kept an idle connection open past its 300 ms idle timeout")
            #expect(answer.isEmpty)
        }
    }

    @Test("an idle keep-alive connection is closed after its last response, after the idle timeout")
    func idleAfterResponseIsClosed() async throws {
        // Long enough that the request gets in before the connection counts as idle, also
        // while every other suite shares the test process's two threads (3 s was not, in a
        // full `make test`); the close after the response is what this test waits for.
        try await withAPI(.live, configure: { $0.idleTimeout = .seconds(10) }) { _, client in
            let connection = try await RawConnection.open(port: try #require(client.port))
            defer { connection.close() }
            let answer = try await connection.exchange("GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer.prefix(200))")
            #expect(try await connection.readUntilClosed().closed)
        }
    }

    @Test("a head that trickles in is closed after the header timeout, though the idle timeout is long")
    func slowHeaderIsClosed() async throws {
        try await withAPI(.live, configure: {
            $0.idleTimeout = .seconds(600)
            $0.headerTimeout = Self.short
        }) { _, client in
            let connection = try await RawConnection.open(port: try #require(client.port))
            defer { connection.close() }
            try await connection.send("GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            let (answer, closed) = try await connection.readUntilClosed()
            #expect(closed, "a head incomplete past its 300 ms deadline kept its connection")
            #expect(answer.isEmpty, "\(answer.prefix(200))")
        }
    }

    @Test("a keep-alive head that starts while an earlier deadline's wake-up is pending gets its whole own deadline")
    func reArmedHeadGetsItsOwnDeadline() async throws {
        // The guard keeps one wake-up per connection and moves it only earlier: the first
        // request's head deadline (3 s after its first byte) is still pending when the second
        // head starts 2 s later. The second head completes 4 s after the first byte, past the
        // first wake-up but inside its own deadline, so it must be answered; the third head
        // never completes and must be closed. The pauses are the slow client, not waits; they
        // are timed on their own thread, so a busy test process cannot stretch them.
        try await withAPI(.live, configure: {
            $0.idleTimeout = .seconds(600)
            $0.headerTimeout = .seconds(3)
        }) { _, client in
            let connection = try await RawConnection.open(port: try #require(client.port))
            defer { connection.close() }
            let health = "GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            #expect(try await connection.exchange(health + "\r\n").hasPrefix("HTTP/1.1 200"))
            try await connection.sendPaced([(.seconds(2), health + "X-Slow: "), (.seconds(2), "1\r\n\r\n")])
            let second = try await connection.exchange("")
            #expect(second.hasPrefix("HTTP/1.1 200"), "a head inside its own deadline was cut by an earlier one: \(second.prefix(200))")
            try await connection.send(health + "X-Slow: ")
            let (answer, closed) = try await connection.readUntilClosed()
            #expect(closed, "a head incomplete past its 3 s deadline kept its connection")
            #expect(answer.isEmpty, "\(answer.prefix(200))")
        }
    }

    @Test("a body that stops arriving is closed after the body timeout and writes nothing")
    func slowBodyIsClosed() async throws {
        try await withAPI(.live, configure: {
            $0.idleTimeout = .seconds(600)
            $0.bodyTimeout = Self.short
        }) { fixture, client in
            let connection = try await RawConnection.open(port: try #require(client.port))
            defer { connection.close() }
            try await connection.send("POST /api/v1/credits/grant HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(fixture.adminToken)\r\n"
                + "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user\":\"al")
            let (_, closed) = try await connection.readUntilClosed()
            #expect(closed, "a body incomplete past its 300 ms deadline kept its connection")
            #expect(fixture.head == 0)
        }
    }

    @Test("a body cut off by the client's EOF is a 400 bad_request, not a 500, and writes nothing")
    func truncatedBodyIsAClientError() async throws {
        try await withAPI(.live) { fixture, client in
            let connection = try await RawConnection.open(port: try #require(client.port))
            defer { connection.close() }
            try await connection.send("POST /api/v1/credits/grant HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(fixture.adminToken)\r\n"
                + "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user\":\"al")
            connection.shutdownWrite()
            let (answer, closed) = try await connection.readUntilClosed()
            #expect(closed)
            #expect(answer.components(separatedBy: "HTTP/1.1 ").count == 2, "one answer only: \(answer.prefix(800))")
            #expect(answer.hasPrefix("HTTP/1.1 400"), "\(answer.prefix(400))")
            #expect(answer.contains("application/problem+json") && answer.contains("\"code\":\"bad_request\""), "\(answer.prefix(600))")
            #expect(fixture.head == 0)
            // Counted as a 400, never as a server error.
            let metrics = try await rawHTTPExchange(port: try #require(client.port), "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                                                    maxBytes: 4 << 20)
            #expect(!metrics.contains("status_code=\"500\""), "\(metrics.split(separator: "\n").filter { $0.contains("status_code") })")
        }
    }

    @Test("a token over 200 KB is a 400 problem document naming the header limit")
    func oversizedHeadIsAProblem() async throws {
        try await withAPI(.live) { fixture, client in
            let token = String(repeating: "a", count: 200 * 1024)
            let answer = try await rawHTTPExchange(port: try #require(client.port),
                                                   "GET /api/v1/credits/balance HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n\r\n")
            #expect(answer.hasPrefix("HTTP/1.1 400"), "\(answer.prefix(300))")
            #expect(answer.lowercased().contains("content-type: application/problem+json"), "\(answer.prefix(600))")
            #expect(answer.contains("\"code\":\"bad_request\"") && answer.contains("80 KiB"), "\(answer.prefix(600))")
            // Like every answer, it carries a request id a client can quote.
            let requestID = answer.split(separator: "\r\n").first { $0.lowercased().hasPrefix("request-id: ") }
            #expect(requestID.map { $0.count > "request-id: ".count } == true, "\(answer.prefix(600))")
            #expect(fixture.head == 0)
        }
    }

    @Test("connections past the limit wait in the backlog until an open one closes")
    func connectionsPastTheLimitWait() async throws {
        // Run the composition root's application itself: HummingbirdTesting's live setup
        // rebuilds the server configuration without the connection limit.
        try await withTallyFixture(label: "connection-limit", configure: { $0.maxConnections = 2 }) { fixture in
            let (ports, bound) = AsyncStream.makeStream(of: Int.self)
            let app = fixture.components.makeApplication(services: []) { port in bound.yield(port ?? 0) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await app.runService(gracefulShutdownSignals: []) }
                var listening = ports.makeAsyncIterator()
                let port = try #require(await listening.next())
                let health = "GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                let first = try await RawConnection.open(port: port)
                let second = try await RawConnection.open(port: port)
                defer { second.close() }
                #expect(try await first.exchange(health).hasPrefix("HTTP/1.1 200"))
                #expect(try await second.exchange(health).hasPrefix("HTTP/1.1 200"))
                #expect(fixture.components.connections.open == 2)

                let third = try await RawConnection.open(port: port)  // the kernel's backlog takes it
                defer { third.close() }
                try await third.send(health)
                // The open ones still answer; the third is not taken while they are open.
                #expect(try await second.exchange(health).hasPrefix("HTTP/1.1 200"))
                #expect(fixture.components.connections.open == 2)
                #expect(!third.hasBytesWaiting())

                first.close()
                let answer = try await third.readUntilAnswered()
                #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer.prefix(200))")
                #expect(fixture.components.connections.open <= 2)
                group.cancelAll()
            }
        }
    }
}

extension RawConnection {
    /// One response to what was already sent.
    func readUntilAnswered() async throws -> String {
        try await exchange("")
    }
}
