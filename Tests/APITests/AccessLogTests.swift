import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Synchronization
import TallyTestSupport
import Testing
@testable import API

/// Every entry logged through its handlers, kept for a test to read.
final class LogCapture: Sendable {
    struct Entry: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }

    struct Handler: LogHandler {
        let capture: LogCapture
        var logLevel: Logger.Level = .info
        var metadata: Logger.Metadata = [:]

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }.mapValues { "\($0)" }
            capture.entries.withLock { $0.append(Entry(level: event.level, message: event.message.description, metadata: merged)) }
        }
    }

    let entries = Mutex<[Entry]>([])

    var logger: Logger {
        var logger = Logger(label: "tally-tests") { [self] _ in Handler(capture: self) }
        logger.logLevel = .info
        return logger
    }

    /// The access log's lines, oldest first.
    var accessLines: [Entry] {
        entries.withLock { $0.filter { $0.message == "request" } }
    }
}

/// The access log through the real router: one `info` line per request with the method,
/// the route template, the status sent (problem responses included), the duration and
/// the request id.
@Suite(.timeLimit(.minutes(5))) struct AccessLogTests {
    @Test func oneLinePerRequestWithTheRouteTemplateAndTheStatusSent() async throws {
        try await withAPI { fixture, _ in
            let capture = LogCapture()
            let app = Application(router: fixture.api.makeRouter(), logger: capture.logger)
            try await app.test(.router) { client in
                var requestIDs: [String] = []
                let ok = try await send(client, .get, "/api/v1/creator/unlocked", token: fixture.aliceToken, [.clientRequestID: "req-ok"])
                #expect(ok.status == .ok)
                requestIDs.append(try #require(ok.headers[.requestID]))
                // A domain error, answered as a problem document: 402.
                let refused = try await send(client, .post, "/api/v1/creator/unlock/secret.creator", token: fixture.aliceToken)
                #expect(refused.status.code == 402)
                requestIDs.append(try #require(refused.headers[.requestID]))
                // A path no route takes.
                let missing = try await send(client, .get, "/api/v1/no/such/thing-alice", token: nil)
                #expect(missing.status == .notFound)
                requestIDs.append(try #require(missing.headers[.requestID]))

                let lines = capture.accessLines
                #expect(lines.count == 3, "\(lines)")
                guard lines.count == 3 else { return }
                #expect(lines.allSatisfy { $0.level == .info })
                #expect(lines.map { $0.metadata["method"] } == ["GET", "POST", "GET"])
                #expect(lines.map { $0.metadata["route"] } == ["/api/v1/creator/unlocked", "/api/v1/creator/unlock/{username}", "NotFound"])
                #expect(lines.map { $0.metadata["status"] } == ["200", "402", "404"])
                #expect(lines.map { $0.metadata["hb.request.id"] } == requestIDs)
                #expect(requestIDs[0] == "req-ok", "the client's X-Request-Id is the id")
                for line in lines {
                    let duration = try #require(line.metadata["duration_ms"].flatMap(Double.init), "\(line)")
                    #expect(duration >= 0)
                    // No user data from the raw path.
                    #expect(!line.metadata.values.contains { $0.contains("secret.creator") || $0.contains("thing-alice") })
                }
            }
        }
    }

    @Test func aBadTokenAndAThrownValidationErrorAreLoggedWithTheirStatus() async throws {
        try await withAPI { fixture, _ in
            let capture = LogCapture()
            let app = Application(router: fixture.api.makeRouter(), logger: capture.logger)
            try await app.test(.router) { client in
                let statuses = [
                    try await send(client, .get, "/api/v1/creator/unlocked", token: "not-a-jwt").status,
                    try await send(client, .get, "/api/v1/creator/unlocked?limit=0", token: fixture.aliceToken).status,
                    try await send(client, .put, "/api/v1/creator/unlocked", token: fixture.aliceToken).status,
                ]
                #expect(statuses.map(\.code) == [401, 400, 405])
            }
            #expect(capture.accessLines.map { $0.metadata["status"] } == ["401", "400", "405"])
        }
    }

    @Test func millisecondsFromMicros() {
        #expect(AccessLogMiddleware.milliseconds(micros: 0) == "0.000")
        #expect(AccessLogMiddleware.milliseconds(micros: 7) == "0.007")
        #expect(AccessLogMiddleware.milliseconds(micros: 12_345) == "12.345")
        #expect(AccessLogMiddleware.milliseconds(micros: 1_000_050) == "1000.050")
    }
}
