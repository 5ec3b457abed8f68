import CLibPQ

#if canImport(Glibc)
import Glibc
#endif

/// A parameter of a parameterised statement, sent in PostgreSQL's binary format with its
/// type named, so that no value is ever spliced into SQL text.
enum PGValue {
    case int64(Int64)
    case int32(Int32)
    case text(String)
    case bytes([UInt8])
    case textArray([String])
    case null

    /// Type OIDs from pg_type.
    var oid: Oid {
        switch self {
        case .int64: 20
        case .int32: 23
        case .text: 25
        case .bytes: 17
        case .textArray: 1009
        case .null: 0
        }
    }

    func encode(into w: inout [UInt8]) {
        switch self {
        case .int64(let v): w.appendBigEndian(v)
        case .int32(let v): w.appendBigEndian(v)
        case .text(let s): w.append(contentsOf: s.utf8)
        case .bytes(let b): w.append(contentsOf: b)
        case .textArray(let items):
            // ndim, has-nulls, element type, then (length, lower bound) per dimension.
            w.appendBigEndian(Int32(1))
            w.appendBigEndian(Int32(0))
            w.appendBigEndian(Int32(25))
            w.appendBigEndian(Int32(items.count))
            w.appendBigEndian(Int32(1))
            for item in items {
                w.appendBigEndian(Int32(item.utf8.count))
                w.append(contentsOf: item.utf8)
            }
        case .null: break
        }
    }
}

extension Array where Element == UInt8 {
    mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
    }
}

/// A query's result in binary format. Every accessor checks row, column and length, and
/// throws on a value of the wrong size instead of trapping.
final class PGResult {
    private let result: OpaquePointer

    init(_ result: OpaquePointer) { self.result = result }
    deinit { PQclear(result) }

    var rowCount: Int { Int(PQntuples(result)) }
    var columnCount: Int { Int(PQnfields(result)) }

    func isNull(_ row: Int, _ column: Int) -> Bool { PQgetisnull(result, Int32(row), Int32(column)) != 0 }

    func withBytes<R>(_ row: Int, _ column: Int, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        guard row >= 0, row < rowCount, column >= 0, column < columnCount else {
            throw EventLogError(.corrupted, "PostgreSQL result has no row \(row), column \(column)")
        }
        let length = Int(PQgetlength(result, Int32(row), Int32(column)))
        guard let pointer = PQgetvalue(result, Int32(row), Int32(column)), length >= 0 else {
            return try body(UnsafeRawBufferPointer(start: nil, count: 0))
        }
        return try body(UnsafeRawBufferPointer(start: pointer, count: length))
    }

    func int64(_ row: Int, _ column: Int) throws -> Int64 {
        try withBytes(row, column) { bytes in
            guard bytes.count == 8 else { throw EventLogError(.corrupted, "PostgreSQL column \(column) holds \(bytes.count) bytes, expected a bigint") }
            return Int64(bigEndian: bytes.loadUnaligned(as: Int64.self))
        }
    }

    func int32(_ row: Int, _ column: Int) throws -> Int32 {
        try withBytes(row, column) { bytes in
            guard bytes.count == 4 else { throw EventLogError(.corrupted, "PostgreSQL column \(column) holds \(bytes.count) bytes, expected an integer") }
            return Int32(bigEndian: bytes.loadUnaligned(as: Int32.self))
        }
    }

    func bytes(_ row: Int, _ column: Int) throws -> [UInt8] {
        try withBytes(row, column) { Array($0) }
    }

    func text(_ row: Int, _ column: Int) throws -> String {
        try withBytes(row, column) { String(decoding: $0, as: UTF8.self) }
    }
}

/// A PostgreSQL error, kept as the cause of an `EventLogError`.
struct PostgresError: Error, Sendable, CustomStringConvertible {
    /// The five-character SQLSTATE, when the server sent one.
    var sqlState: String?
    var message: String
    var description: String { sqlState.map { "\(message) (SQLSTATE \($0))" } ?? message }
}

/// One libpq connection. Not thread-safe: one thread uses it at a time (the writer thread,
/// a reader pool worker, the listener), so libpq's blocking calls never run on the
/// cooperative thread pool.
final class PGConnection {
    private let connection: OpaquePointer
    /// Where the connection goes, without the password, for messages.
    let target: String

    /// Connects; the URL is libpq's (`postgres://user@host:port/db?...`).
    init(url: String) throws {
        target = PostgresURL.redacted(url)
        guard let connection = PQconnectdb(url) else {
            throw EventLogError(.unavailable, "cannot allocate a PostgreSQL connection")
        }
        self.connection = connection
        guard PQstatus(connection) == CONNECTION_OK else {
            let message = Self.message(connection)
            // Every stored property is set, so deinit runs and calls PQfinish: not here too.
            throw EventLogError(
                .unavailable, "cannot connect to PostgreSQL at \(target): \(message); check that it runs and the URL is right",
                cause: PostgresError(sqlState: nil, message: message)
            )
        }
    }

    deinit { PQfinish(connection) }

    var isBroken: Bool { PQstatus(connection) != CONNECTION_OK }

    /// Runs one parameterised statement; results come back in binary format.
    @discardableResult
    func query(_ sql: String, _ parameters: [PGValue] = []) throws -> PGResult {
        var buffer: [UInt8] = []
        var offsets: [Int] = []
        var lengths: [Int32] = []
        var types: [Oid] = []
        for parameter in parameters {
            offsets.append(buffer.count)
            parameter.encode(into: &buffer)
            lengths.append(Int32(buffer.count - offsets.last!))
            types.append(parameter.oid)
        }
        let formats = [Int32](repeating: 1, count: parameters.count)
        let raw: OpaquePointer? = buffer.withUnsafeBytes { base in
            var values: [UnsafePointer<CChar>?] = parameters.indices.map { i in
                if case .null = parameters[i] { return nil }
                // A zero-length value still needs a non-null pointer.
                let start = base.baseAddress.map { $0 + offsets[i] } ?? UnsafeRawPointer(bitPattern: 1)!
                return start.assumingMemoryBound(to: CChar.self)
            }
            if base.baseAddress == nil {
                values = values.map { $0 == nil ? nil : UnsafePointer<CChar>(bitPattern: 1) }
            }
            return PQexecParams(connection, sql, Int32(parameters.count), types, values, lengths, formats, 1)
        }
        return try check(raw, sql)
    }

    /// Runs SQL without parameters (BEGIN, COMMIT, LISTEN, migrations): text protocol.
    func execute(_ sql: String) throws {
        _ = try check(PQexec(connection, sql), sql)
    }

    /// Streams `data` (PostgreSQL binary COPY format) into `COPY ... FROM STDIN`.
    func copyIn(_ sql: String, data: [UInt8]) throws {
        _ = try check(PQexec(connection, sql), sql, expectCopyIn: true)
        var offset = 0
        while offset < data.count {
            let chunk = min(1 << 20, data.count - offset)
            let rc = data.withUnsafeBytes { raw in
                PQputCopyData(connection, raw.baseAddress!.advanced(by: offset).assumingMemoryBound(to: CChar.self), Int32(chunk))
            }
            guard rc == 1 else { throw failure("COPY data", nil) }
            offset += chunk
        }
        guard PQputCopyEnd(connection, nil) == 1 else { throw failure("COPY end", nil) }
        _ = try check(PQgetResult(connection), sql)
        while let extra = PQgetResult(connection) { PQclear(extra) }
    }

    // MARK: LISTEN support

    var socket: Int32 { PQsocket(connection) }

    /// Reads what the server sent and returns the notifications' payloads.
    func takeNotifications() throws -> [String] {
        guard PQconsumeInput(connection) == 1 else { throw failure("reading notifications", nil) }
        var payloads: [String] = []
        while let notify = PQnotifies(connection) {
            payloads.append(String(cString: notify.pointee.extra))
            PQfreemem(notify)
        }
        return payloads
    }

    // MARK: errors

    private func check(_ raw: OpaquePointer?, _ sql: String, expectCopyIn: Bool = false) throws -> PGResult {
        guard let raw else { throw failure(sql, nil) }
        let result = PGResult(raw)
        let status = PQresultStatus(raw)
        switch status {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK:
            if !expectCopyIn { return result }
        case PGRES_COPY_IN:
            if expectCopyIn { return result }
        default:
            break
        }
        throw failure(sql, raw)
    }

    private func failure(_ sql: String, _ result: OpaquePointer?) -> EventLogError {
        let message: String
        var state: String?
        if let result, let text = PQresultErrorMessage(result), text.pointee != 0 {
            message = String(cString: text).trimmingTrailingNewlines()
            if let code = PQresultErrorField(result, Int32(UInt8(ascii: "C"))) { state = String(cString: code) }
        } else {
            message = Self.message(connection)
        }
        let cause = PostgresError(sqlState: state, message: message)
        let statement = sql.prefix(60)
        if isBroken || state?.hasPrefix("08") == true || state == "57P01" || state == "57P03" {
            return EventLogError(
                .unavailable, "lost the connection to PostgreSQL at \(target) during `\(statement)…`: \(message)", cause: cause
            )
        }
        return EventLogError(.io, "PostgreSQL refused `\(statement)…`: \(message)", cause: cause)
    }

    private static func message(_ connection: OpaquePointer) -> String {
        guard let text = PQerrorMessage(connection) else { return "unknown error" }
        return String(cString: text).trimmingTrailingNewlines()
    }
}

extension String {
    func trimmingTrailingNewlines() -> String {
        var s = self
        while s.last == "\n" || s.last == " " { s.removeLast() }
        return s
    }
}
