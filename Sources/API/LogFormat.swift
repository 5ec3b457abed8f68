import Events
import Foundation
public import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How `tally-server` writes log lines to standard error (`--log-format` / `TALLY_LOG_FORMAT`):
/// swift-log's default text, one JSON object per line, or logfmt. Each line is one `write`,
/// whole: the machine-readable formats never split an entry over lines.
public enum LogFormat: String, Sendable, CaseIterable {
    case text
    case json
    case logfmt

    /// The handler factory to pass to `LoggingSystem.bootstrap`.
    public func makeHandler(label: String) -> any LogHandler {
        switch self {
        case .text: StreamLogHandler.standardError(label: label)
        case .json: LineLogHandler(label: label, render: LogLine.json)
        case .logfmt: LineLogHandler(label: label, render: LogLine.logfmt)
        }
    }
}

/// One entry, as both line formats render it.
public struct LogLine: Sendable {
    public var level: Logger.Level
    /// Microseconds since 1970-01-01 UTC.
    public var time: Int64
    public var label: String
    public var message: String
    public var metadata: Logger.Metadata

    public init(level: Logger.Level, time: Int64, label: String, message: String, metadata: Logger.Metadata) {
        self.level = level
        self.time = time
        self.label = label
        self.message = message
        self.metadata = metadata
    }

    /// `{"time":"2026-12-01T18:31:06.123456Z","level":"info","label":"tally","message":"…","metadata":{…}}`
    /// and a newline: time in RFC 3339 UTC with microseconds; metadata keys sorted, nested
    /// dictionaries as objects, arrays as arrays, every value a string as swift-log gives it;
    /// strings escaped as JSON requires (`"`, `\`, control characters), other text as UTF-8.
    public static func json(_ line: LogLine) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(128 + line.message.utf8.count)
        JSONValue.object(JSONValue.Object([
            ("time", .string(EventTime.iso8601(micros: line.time))),
            ("level", .string(line.level.rawValue)),
            ("label", .string(line.label)),
            ("message", .string(line.message)),
            ("metadata", jsonValue(line.metadata)),
        ])).write(to: &bytes)
        bytes.append(UInt8(ascii: "\n"))
        return bytes
    }

    private static func jsonValue(_ metadata: Logger.Metadata) -> JSONValue {
        .object(JSONValue.Object(metadata.sorted { $0.key < $1.key }.map { ($0.key, jsonValue($0.value)) }))
    }

    private static func jsonValue(_ value: Logger.MetadataValue) -> JSONValue {
        switch value {
        case .string(let s): .string(s)
        case .stringConvertible(let c): .string(c.description)
        case .dictionary(let d): jsonValue(d)
        case .array(let a): .array(a.map(jsonValue))
        }
    }

    /// `time=… level=info label=tally msg="…" key=value …` and a newline. Metadata keys are
    /// sorted, nested dictionaries flattened to `outer.inner`, arrays to `key.0`, `key.1`.
    /// A value is quoted when it is empty or holds a space, `=`, `"`, `\` or a character
    /// below U+0020 or U+007F; inside quotes `"` and `\` are backslashed, newline, return
    /// and tab are `\n`, `\r`, `\t`, other control characters `\u00XX`. A key keeps only
    /// visible ASCII other than `=` and `"` (anything else becomes `_`), so it never needs quoting.
    public static func logfmt(_ line: LogLine) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(128 + line.message.utf8.count)
        func pair(_ key: String, _ value: String) {
            if !bytes.isEmpty { bytes.append(UInt8(ascii: " ")) }
            appendKey(key, to: &bytes)
            bytes.append(UInt8(ascii: "="))
            appendValue(value, to: &bytes)
        }
        pair("time", EventTime.iso8601(micros: line.time))
        pair("level", line.level.rawValue)
        pair("label", line.label)
        pair("msg", line.message)
        var flat: [(String, String)] = []
        flatten(line.metadata, prefix: "", into: &flat)
        for (key, value) in flat.sorted(by: { $0.0 < $1.0 }) { pair(key, value) }
        bytes.append(UInt8(ascii: "\n"))
        return bytes
    }

    private static func flatten(_ metadata: Logger.Metadata, prefix: String, into flat: inout [(String, String)]) {
        for (key, value) in metadata { flatten(value, key: prefix + key, into: &flat) }
    }

    private static func flatten(_ value: Logger.MetadataValue, key: String, into flat: inout [(String, String)]) {
        switch value {
        case .string(let s): flat.append((key, s))
        case .stringConvertible(let c): flat.append((key, c.description))
        case .dictionary(let d): flatten(d, prefix: key + ".", into: &flat)
        case .array(let a): for (i, element) in a.enumerated() { flatten(element, key: key + "." + String(i), into: &flat) }
        }
    }

    private static func appendKey(_ key: String, to bytes: inout [UInt8]) {
        guard !key.isEmpty else { return bytes.append(UInt8(ascii: "_")) }
        for byte in key.utf8 {
            let plain = (0x21...0x7E).contains(byte) && byte != UInt8(ascii: "=") && byte != UInt8(ascii: "\"")
            bytes.append(plain ? byte : UInt8(ascii: "_"))
        }
    }

    private static func appendValue(_ value: String, to bytes: inout [UInt8]) {
        let utf8 = value.utf8
        let needsQuotes = utf8.isEmpty || utf8.contains { byte in
            byte <= 0x20 || byte == 0x7F || byte == UInt8(ascii: "=") || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\")
        }
        guard needsQuotes else { return bytes.append(contentsOf: utf8) }
        let hex = Array("0123456789abcdef".utf8)
        bytes.append(UInt8(ascii: "\""))
        for byte in utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), byte])
            case 0x0A: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0..<0x20, 0x7F:
                bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}

/// A swift-log handler that renders each entry as one line (`LogLine.json`, `.logfmt`) and
/// writes it to standard error in one call, under one lock so lines never interleave.
struct LineLogHandler: LogHandler {
    let label: String
    let render: @Sendable (LogLine) -> [UInt8]
    let write: @Sendable ([UInt8]) -> Void
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, render: @escaping @Sendable (LogLine) -> [UInt8], write: @escaping @Sendable ([UInt8]) -> Void = StandardError.write,
         metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider) {
        self.label = label
        self.render = render
        self.write = write
        self.metadataProvider = metadataProvider
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let explicit = event.metadata { merged.merge(explicit) { _, new in new } }
        let now = Date().timeIntervalSince1970
        write(render(LogLine(level: event.level, time: Int64((now * 1_000_000).rounded(.down)), label: label, message: event.message.description,
                             metadata: merged)))
    }
}

private func systemWrite(_ fd: Int32, _ bytes: UnsafePointer<UInt8>, _ count: Int) -> Int {
    write(fd, bytes, count)
}

/// Standard error, written whole line by whole line.
enum StandardError {
    private static let lock = Mutex(())

    @Sendable static func write(_ bytes: [UInt8]) {
        lock.withLock { _ in
            bytes.withUnsafeBufferPointer { buffer in
                guard let base = buffer.baseAddress else { return }
                var offset = 0
                while offset < buffer.count {
                    let written = systemWrite(2, base + offset, buffer.count - offset)
                    if written <= 0 {
                        if written < 0 && errno == EINTR { continue }
                        return
                    }
                    offset += written
                }
            }
        }
    }
}
