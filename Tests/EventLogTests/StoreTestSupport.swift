import TallyTestSupport
import Testing
@testable import EventLog

#if canImport(Glibc)
import Glibc
#endif

// Both backends behind one test surface, so that the contract suite runs unchanged on the
// embedded log and on PostgreSQL.

/// The PostgreSQL server the tests use: `make test` starts one on a loopback port and
/// exports its URL. Each test gets a database of its own, dropped afterwards.
enum TestPostgres {
    static var baseURL: String {
        get throws {
            guard let url = getenv("TALLY_TEST_POSTGRES_URL").map({ String(cString: $0) }), PostgresURL.matches(url) else {
                throw TestFailure(
                    "TALLY_TEST_POSTGRES_URL is not set: run `make test`, or `make pg-test-start` and export the URL it prints"
                )
            }
            return url
        }
    }

    /// `base` with its database name replaced.
    static func url(_ base: String, database: String) -> String {
        let main = base.firstIndex(of: "?").map { String(base[..<$0]) } ?? base
        let query = base.firstIndex(of: "?").map { String(base[$0...]) } ?? ""
        guard let scheme = main.firstRange(of: "://") else { return base }
        let rest = main[scheme.upperBound...]
        let host = rest.firstIndex(of: "/").map { rest[..<$0] } ?? rest
        return String(main[..<scheme.upperBound]) + host + "/" + database + query
    }

    /// A new empty database; returns its URL.
    static func createDatabase(_ label: String) throws -> String {
        let base = try baseURL
        var rng = SystemRandomNumberGenerator()
        let safe = String(label.lowercased().unicodeScalars.filter { ($0 >= "a" && $0 <= "z") || ($0 >= "0" && $0 <= "9") }.prefix(30))
        let name = "t_\(safe)_\(String(rng.next() & 0xFFFF_FFFF, radix: 16))"
        let admin = try PGConnection(url: base)
        try admin.execute("CREATE DATABASE \(name)")
        return url(base, database: name)
    }

    static func dropDatabase(_ url: String) {
        guard let base = try? baseURL, let admin = try? PGConnection(url: base), let name = url.split(separator: "/").last else { return }
        let database = name.split(separator: "?").first.map(String.init) ?? String(name)
        try? admin.execute("DROP DATABASE IF EXISTS \(database) WITH (FORCE)")
    }

    /// Runs `body` with a fresh database's URL, dropping the database afterwards.
    static func withDatabase<T>(_ label: String = #function, _ body: (String) async throws -> T) async throws -> T {
        let url = try createDatabase(label)
        defer { dropDatabase(url) }
        return try await body(url)
    }
}

enum Backend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case file
    case postgres
    var testDescription: String { rawValue }
}

/// Where one test's log lives: a temporary directory or a fresh database.
struct StoreLocation: Sendable {
    let backend: Backend
    let place: String

    func open(fsync: FsyncPolicy = .always) throws -> any EventStore {
        switch backend {
        case .file: try FileLog(directory: place, options: .init(fsync: fsync, segmentSize: 64 << 10))
        case .postgres: try PostgresLog(url: place, options: .init(fsync: fsync))
        }
    }
}

/// Runs `body` with a location for `backend`, removed afterwards.
func withLocation<T>(_ backend: Backend, _ label: String = #function, _ body: (StoreLocation) async throws -> T) async throws -> T {
    switch backend {
    case .file:
        return try await withTemporaryDirectory(label) { dir in try await body(StoreLocation(backend: .file, place: dir.path)) }
    case .postgres:
        return try await TestPostgres.withDatabase(label) { url in try await body(StoreLocation(backend: .postgres, place: url)) }
    }
}

/// Opens a store at a fresh location, runs `body`, closes it.
func withStore<T>(_ backend: Backend, _ label: String = #function, _ body: (any EventStore) async throws -> T) async throws -> T {
    try await withLocation(backend, label) { location in
        let store = try location.open()
        do {
            let result = try await body(store)
            try await store.close()
            return result
        } catch {
            try? await store.close()
            throw error
        }
    }
}

extension EventStore {
    func readAll(from position: LogPosition = 1, filter: EventFilter? = nil) async throws -> [RecordedEvent] {
        var events: [RecordedEvent] = []
        for try await event in read(from: position, filter: filter) { events.append(event) }
        try Task.checkCancellation()  // a read cut short by cancellation is not the whole log
        return events
    }

    /// Tails from `position` until `count` events arrived.
    func tail(from position: LogPosition, count: Int) async throws -> [RecordedEvent] {
        var events: [RecordedEvent] = []
        guard count > 0 else { return events }
        for try await event in subscribe(from: position) {
            events.append(event)
            if events.count == count { break }
        }
        return events
    }
}
