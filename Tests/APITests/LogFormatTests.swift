import Foundation
import Logging
import Synchronization
import Testing
@testable import API

/// The json and logfmt log lines, byte for byte: escaping of quotes, backslashes, newlines,
/// control characters, unicode, nested metadata; and the handler that writes them.
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

    @Test func theHandlerMergesMetadataAndWritesOneLinePerEntry() throws {
        let written = Mutex<[[UInt8]]>([])
        var handler = LineLogHandler(label: "tally", render: LogLine.json, write: { bytes in written.withLock { $0.append(bytes) } },
                                     metadataProvider: Logger.MetadataProvider { ["provided": "p", "shared": "provider"] })
        handler.logLevel = .info
        handler[metadataKey: "hb.request.id"] = "r-1"
        handler[metadataKey: "shared"] = "handler"
        var logger = Logger(label: "tally") { _ in handler }
        logger.logLevel = .info
        logger.debug("not written")
        logger.info("first\nline", metadata: ["shared": "call"])
        logger.warning("second")
        let lines = written.withLock { $0 }
        #expect(lines.count == 2)
        let first = try #require(try JSONSerialization.jsonObject(with: Data(lines[0])) as? [String: Any])
        #expect(first["message"] as? String == "first\nline" && first["level"] as? String == "info" && first["label"] as? String == "tally")
        #expect(first["metadata"] as? [String: String] == ["hb.request.id": "r-1", "provided": "p", "shared": "call"])
        let time = try #require(first["time"] as? String)
        #expect(time.count == 27 && time.hasSuffix("Z") && time.dropFirst(10).hasPrefix("T"), "RFC 3339 UTC with microseconds: \(time)")
        #expect(lines.allSatisfy { $0.last == 0x0A && $0.dropLast().contains(0x0A) == false })
    }

    @Test func formatsByName() {
        #expect(LogFormat(rawValue: "json") == .json && LogFormat(rawValue: "logfmt") == .logfmt && LogFormat(rawValue: "text") == .text)
        #expect(LogFormat.json.makeHandler(label: "x") is LineLogHandler)
        #expect(!(LogFormat.text.makeHandler(label: "x") is LineLogHandler))
    }
}
