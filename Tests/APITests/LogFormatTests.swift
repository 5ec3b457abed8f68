import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import TallyTestSupport
import Testing
@testable import API

/// The json and logfmt log lines, byte for byte: escaping of quotes, backslashes, newlines,
/// control characters, unicode, nested metadata; the text layout; the handler, and the sink
/// that batches lines and sends them out in order.
@Suite struct LogFormatTests {
    static let time: Int64 = 1_764_615_066_123_456

    static func line(_ message: String, _ metadata: Logger.Metadata = [:], level: Logger.Level = .info) -> LogLine {
        LogLine(level: level, time: time, label: "tally", message: message, metadata: metadata)
    }

    static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    @Test func jsonPlainLine() {
        #expect(Self.text(LogLine.json(Self.line("request", ["route": "/api/v1/x/{username}", "status": .stringConvertible(200)])))
            == #"{"time":"2025-12-01T18:51:06.123456Z","level":"info","label":"tally","message":"request","metadata":{"route":"/api/v1/x/{username}","status":"200"}}"# + "\n")
    }

    @Test func jsonEscapesQuotesBackslashesNewlinesAndControlCharacters() {
        let message = "say \"hi\"\\ then\nnext\r\ttab\u{01}\u{1F}\u{7F}"
        let expected = #"{"time":"2025-12-01T18:51:06.123456Z","level":"error","label":"tally","message":"say \"hi\"\\ then\nnext\r\ttab\u0001\u001f"#
            + "\u{7F}" + #"","metadata":{"k\"ey":"v\nw"}}"# + "\n"
        #expect(Self.text(LogLine.json(Self.line(message, ["k\"ey": "v\nw"], level: .error))) == expected)
    }

    @Test func jsonKeepsUnicodeAsUTF8AndNestsMetadata() {
        let metadata: Logger.Metadata = [
            "z": "ünïcødé ✓ 🎉", "a": .dictionary(["inner": "x", "deeper": .dictionary(["n": .stringConvertible(1)])]),
            "list": .array(["1", .dictionary(["k": "v"]), .array([])]),
        ]
        let expected = #"{"time":"2025-12-01T18:51:06.123456Z","level":"info","label":"tally","message":"é","metadata":{"a":{"deeper":{"n":"1"},"inner":"x"},"list":["1",{"k":"v"},[]],"z":"ünïcødé ✓ 🎉"}}"# + "\n"
        let bytes = LogLine.json(Self.line("é", metadata))
        #expect(Self.text(bytes) == expected)
        // And it is one line of valid JSON.
        #expect(bytes.filter { $0 == 0x0A }.count == 1)
        #expect((try? JSONSerialization.jsonObject(with: Data(bytes))) != nil)
    }

    @Test func logfmtPlainLine() {
        #expect(Self.text(LogLine.logfmt(Self.line("request", ["route": "/api/v1/x/{username}", "status": .stringConvertible(200), "duration_ms": "0.250"])))
            == "time=2025-12-01T18:51:06.123456Z level=info label=tally msg=request duration_ms=0.250 route=/api/v1/x/{username} status=200\n")
    }

    @Test func logfmtQuotesAndEscapes() {
        let line = Self.line("say \"hi\"", [
            "space": "a b", "eq": "a=b", "empty": "", "backslash": "a\\b", "newline": "a\nb\r\tc", "control": "\u{01}\u{7F}",
            "unicode": "ünï ✓", "bad key=\"x\"": "v",
        ])
        let expected = #"time=2025-12-01T18:51:06.123456Z level=info label=tally msg="say \"hi\"" backslash="a\\b" bad_key__x_=v control="\u0001\u007f" empty="" eq="a=b" newline="a\nb\r\tc" space="a b" unicode="ünï ✓""# + "\n"
        #expect(Self.text(LogLine.logfmt(line)) == expected)
    }

    @Test func logfmtFlattensNestedMetadata() {
        let line = Self.line("m", ["a": .dictionary(["inner": "x", "deeper": .dictionary(["n": .stringConvertible(1)])]), "list": .array(["1", .dictionary(["k": "v w"])])])
        #expect(Self.text(LogLine.logfmt(line)) == "time=2025-12-01T18:51:06.123456Z level=info label=tally msg=m a.deeper.n=1 a.inner=x list.0=1 list.1.k=\"v w\"\n")
    }

    /// The batches a sink wrote, one array per `write`.
    final class Batches: Sendable {
        private let written = Mutex<[[UInt8]]>([])
        func append(_ buffer: UnsafeBufferPointer<UInt8>) { written.withLock { $0.append(Array(buffer)) } }
        func withLock<T>(_ body: ([[UInt8]]) -> T) -> T { written.withLock { body($0) } }
    }

    static func capturingSink() -> (BufferedLogSink, Batches) {
        let batches = Batches()
        return (BufferedLogSink(write: batches.append), batches)
    }

    @Test func theHandlerMergesMetadataAndWritesOneLinePerEntry() throws {
        let (sink, batches) = Self.capturingSink()
        var handler = LineLogHandler(label: "tally", render: LogLine.json, sink: sink,
                                     metadataProvider: Logger.MetadataProvider { ["provided": "p", "shared": "provider"] })
        handler.logLevel = .info
        handler[metadataKey: "hb.request.id"] = "r-1"
        handler[metadataKey: "shared"] = "handler"
        var logger = Logger(label: "tally") { _ in handler }
        logger.logLevel = .info
        logger.debug("not written")
        logger.info("first\nline", metadata: ["shared": "call"])
        logger.warning("second")
        // The warning sent the waiting info line out with it, in one batch.
        let written = batches.withLock { $0 }
        #expect(written.count == 1)
        let lines = try #require(written.first).split(separator: 0x0A).map { Array($0) + [0x0A] }
        #expect(lines.count == 2)
        let first = try #require(try JSONSerialization.jsonObject(with: Data(lines[0])) as? [String: Any])
        #expect(first["message"] as? String == "first\nline" && first["level"] as? String == "info" && first["label"] as? String == "tally")
        #expect(first["metadata"] as? [String: String] == ["hb.request.id": "r-1", "provided": "p", "shared": "call"])
        let time = try #require(first["time"] as? String)
        #expect(time.count == 27 && time.hasSuffix("Z") && time.dropFirst(10).hasPrefix("T"), "RFC 3339 UTC with microseconds: \(time)")
        let second = try #require(try JSONSerialization.jsonObject(with: Data(lines[1])) as? [String: Any])
        #expect(second["message"] as? String == "second" && second["level"] as? String == "warning")
    }

    /// Entries given straight to the handler (the access log's way in) make the line that
    /// `Logger` makes from the same metadata: the call's keys win over the provider's, and
    /// the provider's over the logger's.
    @Test(arguments: LogFormat.allCases) func entriesGivenDirectlyMakeTheLoggersLine(_ format: LogFormat) throws {
        let render = format.render
        let (sink, batches) = Self.capturingSink()
        var handler = LineLogHandler(label: "tally", render: render, sink: sink,
                                     metadataProvider: Logger.MetadataProvider { ["provided": "p", "shared": "provider", "both": "provider"] })
        handler[metadataKey: "hb.request.id"] = "r-1"
        handler[metadataKey: "shared"] = "handler"
        handler[metadataKey: "both"] = "handler"
        var logger = Logger(label: "tally") { _ in handler }
        logger.logLevel = .info
        logger.info("request", metadata: ["status": .stringConvertible(201), "both": "call", "a b": "x y"], source: "API")
        let entries: [LogLine.Entry] = [("status", .string("201")), ("both", .string("call")), ("a b", .string("x y"))]
        handler.log(level: .info, message: "request", explicit: entries, source: "API")
        sink.flush()
        let lines = batches.withLock { Array($0.joined()) }.split(separator: 0x0A).map { String(decoding: $0, as: UTF8.self) }
        try #require(lines.count == 2)
        // The two lines differ only in their times.
        let time = /[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{15}Z/
        #expect(lines[0].replacing(time, with: "T") == lines[1].replacing(time, with: "T"))
        #expect(lines[0].contains("call") && lines[0].contains("provider") && !lines[0].contains("handler"), "\(lines[0])")
    }

    @Test func textLineHasTheStreamHandlerLayoutInUTC() {
        var line = Self.line("request", ["url": "http://127.0.0.1:8080", "status": .stringConvertible(200), "a": .array(["x"])])
        line.source = "API"
        #expect(Self.text(LogLine.text(line)) == "2025-12-01T18:51:06.123456Z info tally : a=[\"x\"] status=200 url=http://127.0.0.1:8080 [API] request\n")
        #expect(Self.text(LogLine.text(Self.line("bare"))) == "2025-12-01T18:51:06.123456Z info tally : [] bare\n")
    }

    @Test func infoLinesWaitAndNoticeLinesTakeThemOutInOrder() {
        let (sink, batches) = Self.capturingSink()
        sink.append(Array("one\n".utf8), level: .debug)
        sink.append(Array("two\n".utf8), level: .info)
        #expect(batches.withLock { $0.isEmpty })
        sink.append(Array("three\n".utf8), level: .notice)
        sink.append(Array("four\n".utf8), level: .info)
        #expect(batches.withLock { $0 } == [Array("one\ntwo\nthree\n".utf8)])
        sink.flush()
        sink.flush()
        #expect(batches.withLock { $0 } == [Array("one\ntwo\nthree\n".utf8), Array("four\n".utf8)])
        sink.append(Array("five\n".utf8), level: .error)
        #expect(batches.withLock { $0.last } == Array("five\n".utf8))
    }

    @Test func aFullBufferGoesOutBeforeTheInterval() {
        let (sink, batches) = Self.capturingSink()
        let line = [UInt8](repeating: UInt8(ascii: "x"), count: 1_023) + [0x0A]
        for _ in 0..<(BufferedLogSink.flushThreshold / line.count - 1) { sink.append(line, level: .info) }
        #expect(batches.withLock { $0.isEmpty })
        sink.append(line, level: .info)
        #expect(batches.withLock { $0.map(\.count) } == [BufferedLogSink.flushThreshold])
    }

    @Test(.timeLimit(.minutes(1))) func theFlushServiceWritesOnItsIntervalAndAtShutdown() async throws {
        let (sink, batches) = Self.capturingSink()
        let group = ServiceGroup(configuration: .init(services: [LogFlushService(sink: sink, interval: .milliseconds(10))], logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            sink.append(Array("waiting\n".utf8), level: .info)
            #expect(await eventually { batches.withLock { $0 } == [Array("waiting\n".utf8)] })
            // The last line before shutdown: the service may be mid-sleep; shutdown must still write it.
            sink.append(Array("last\n".utf8), level: .info)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        #expect(batches.withLock { $0.joined() }.elementsEqual("waiting\nlast\n".utf8))
    }

    @Test func formatsByName() {
        #expect(LogFormat(rawValue: "json") == .json && LogFormat(rawValue: "logfmt") == .logfmt && LogFormat(rawValue: "text") == .text)
        #expect(LogFormat.json.makeHandler(label: "x") is LineLogHandler)
        #expect(LogFormat.text.makeHandler(label: "x") is LineLogHandler)
    }
}
