import Events
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
        var source = ""
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
            capture.entries.withLock { $0.append(Entry(level: event.level, message: event.message.description, metadata: merged, source: event.source)) }
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
                // Another handler than the server's gets the line through `Logger`, whose
                // source is the one the server's handler is given directly.
                #expect(lines.allSatisfy { $0.source == AccessLogMiddleware.source }, "\(lines)")
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

    /// The server's own handler (`LineLogHandler`) takes the access log's entries without
    /// `Logger`: the line is the one `Logger` would have written, in every format.
    @Test(arguments: LogFormat.allCases) func theServersHandlerGetsTheSameLine(_ format: LogFormat) async throws {
        try await withAPI { fixture, _ in
            let (sink, batches) = LogFormatTests.capturingSink()
            let render = format.render
            let handler = LineLogHandler(label: "tally", render: render, sink: sink, metadataProvider: nil)
            var logger = Logger(label: "tally") { _ in handler }
            logger.logLevel = .info
            let app = Application(router: fixture.api.makeRouter(), logger: logger)
            let requestID = try await app.test(.router) { client in
                let ok = try await send(client, .get, "/api/v1/creator/unlocked", token: fixture.aliceToken, [.clientRequestID: "req-7"])
                #expect(ok.status == .ok)
                return try #require(ok.headers[.requestID])
            }
            sink.flush()
            let written = String(decoding: batches.withLock { Array($0.joined()) }, as: UTF8.self)
            let line = try #require(written.split(separator: "\n").first { $0.contains("request") && $0.contains("duration_ms") }.map(String.init), "\(written)")
            let duration = try #require(line.firstMatch(of: /duration_ms"?[=:]"?([0-9]+\.[0-9]{3})/).map { String($0.1) }, "\(line)")
            let time = try #require(line.firstMatch(of: /[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{15}Z/).map { String($0.0) }, "\(line)")
            // The same entry through `Logger`, at the same time, from the same module.
            let micros = try EventTime.parseISO8601(time)
            let expected = render(LogLine(level: .info, time: micros, label: "tally", message: "request", metadata: [
                "hb.request.id": .string(requestID), "method": "GET", "route": "/api/v1/creator/unlocked", "status": .stringConvertible(200),
                "duration_ms": .string(duration),
            ], source: "API"))
            #expect(line + "\n" == String(decoding: expected, as: UTF8.self))
        }
    }

    @Test func millisecondsFromMicros() {
        #expect(AccessLogMiddleware.milliseconds(micros: 0) == "0.000")
        #expect(AccessLogMiddleware.milliseconds(micros: 7) == "0.007")
        #expect(AccessLogMiddleware.milliseconds(micros: 12_345) == "12.345")
        #expect(AccessLogMiddleware.milliseconds(micros: 1_000_050) == "1000.050")
    }
}
