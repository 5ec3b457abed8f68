import EventLog
import Events
public import Logging

/// How `tally-server` writes log lines to standard error (`--log-format` / `TALLY_LOG_FORMAT`):
/// text in the layout of swift-log's stream handler, one JSON object per line, or logfmt.
/// Every format goes through `BufferedLogSink`, so a line is written whole and in order; the
/// machine-readable formats never split an entry over lines.
public enum LogFormat: String, Sendable, CaseIterable {
    case text
    case json
    case logfmt

    /// The handler factory to pass to `LoggingSystem.bootstrap`.
    public func makeHandler(label: String) -> any LogHandler {
        LineLogHandler(label: label, render: render)
    }

    /// How a line of this format is written.
    var render: @Sendable (LogLine) -> [UInt8] {
        switch self {
        case .text: LogLine.text
        case .json: LogLine.json
        case .logfmt: LogLine.logfmt
        }
    }
}

/// One entry, as both line formats render it.
public struct LogLine: Sendable {
    public typealias Entry = (key: String, value: Logger.MetadataValue)

    public var level: Logger.Level
    /// Microseconds since 1970-01-01 UTC.
    public var time: Int64
    public var label: String
    public var message: String
    /// The metadata, each key once, sorted by key: the order every format writes it in.
    var entries: [Entry]
    /// The module that logged it (swift-log's `source`); only the text format shows it.
    public var source: String

    public var metadata: Logger.Metadata {
        get { Logger.Metadata(uniqueKeysWithValues: entries) }
        set { entries = newValue.sorted { $0.key < $1.key } }
    }

    public init(level: Logger.Level, time: Int64, label: String, message: String, metadata: Logger.Metadata, source: String = "") {
        self.init(level: level, time: time, label: label, message: message, entries: metadata.sorted { $0.key < $1.key }, source: source)
    }

    /// `entries` sorted by key, each key once.
    init(level: Logger.Level, time: Int64, label: String, message: String, entries: [Entry], source: String) {
        self.level = level
        self.time = time
        self.label = label
        self.message = message
        self.entries = entries
        self.source = source
    }

    /// A line's metadata from its three sources, each key once with the first source's value
    /// (the call's own, then the provider's, then the logger's), sorted by key. Lines carry a
    /// handful of keys, so an array beats merging dictionaries (the access log writes one
    /// line per request).
    static func entries(explicit: some Sequence<Entry>, provided: Logger.Metadata?, handler: Logger.Metadata) -> [Entry] {
        var entries: [Entry] = []
        entries.reserveCapacity(handler.count + (provided?.count ?? 0) + explicit.underestimatedCount)
        func add(_ key: String, _ value: Logger.MetadataValue) {
            if !entries.contains(where: { $0.key == key }) { entries.append((key, value)) }
        }
        for (key, value) in explicit { add(key, value) }
        if let provided { for (key, value) in provided { add(key, value) } }
        for (key, value) in handler { add(key, value) }
        entries.sort { $0.key < $1.key }
        return entries
    }

    /// `2026-12-01T18:31:06.123456Z info tally : key=value other=x [API] message` and a newline:
    /// swift-log's stream-handler layout (metadata sorted, `key=value`, values as swift-log
    /// prints them), with the time in UTC and microseconds like the other formats.
    public static func text(_ line: LogLine) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(96 + line.message.utf8.count)
        EventTime.appendISO8601(micros: line.time, to: &bytes)
        bytes.append(UInt8(ascii: " "))
        bytes.append(contentsOf: line.level.rawValue.utf8)
        bytes.append(UInt8(ascii: " "))
        bytes.append(contentsOf: line.label.utf8)
        bytes.append(contentsOf: " :".utf8)
        for (key, value) in line.entries {
            bytes.append(UInt8(ascii: " "))
            bytes.append(contentsOf: key.utf8)
            bytes.append(UInt8(ascii: "="))
            bytes.append(contentsOf: value.description.utf8)
        }
        bytes.append(contentsOf: " [".utf8)
        bytes.append(contentsOf: line.source.utf8)
        bytes.append(contentsOf: "] ".utf8)
        bytes.append(contentsOf: line.message.utf8)
        bytes.append(UInt8(ascii: "\n"))
        return bytes
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
            ("metadata", .object(JSONValue.Object(line.entries.map { ($0.key, jsonValue($0.value)) }))),
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
        for (key, value) in line.entries { flatten(value, key: key, into: &flat) }
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

/// A swift-log handler that renders each entry as one line (`LogLine.text`, `.json`, `.logfmt`)
/// and hands it to a `BufferedLogSink`, which writes whole lines in order.
struct LineLogHandler: LogHandler {
    let label: String
    let render: @Sendable (LogLine) -> [UInt8]
    let sink: BufferedLogSink
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, render: @escaping @Sendable (LogLine) -> [UInt8], sink: BufferedLogSink = .standardError,
         metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider) {
        self.label = label
        self.render = render
        self.sink = sink
        self.metadataProvider = metadataProvider
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        log(level: event.level, message: event.message.description, explicit: event.metadata ?? [:], source: event.source)
    }

    /// The line `Logger` would log through `log(event:)` with `explicit` as the call's
    /// metadata, given as entries (no `Logger.Metadata` built): the access log's way in.
    func log(level: Logger.Level, message: String, explicit: some Sequence<LogLine.Entry>, source: String) {
        let entries = LogLine.entries(explicit: explicit, provided: metadataProvider?.get(), handler: metadata)
        let line = LogLine(level: level, time: wallClockMicroseconds(), label: label, message: message, entries: entries, source: source)
        sink.append(render(line), level: level)
    }
}
