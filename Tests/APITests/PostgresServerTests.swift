import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import TallyTestSupport
import Testing
@testable import API
@testable import EventLog

#if canImport(Glibc)
import Glibc
#endif

/// Real `tally-server` processes on a real PostgreSQL log: two servers sharing one
/// database converge; a PostgreSQL stopped under load degrades and recovers without losing
/// or duplicating an acknowledged command.
@Suite(.serialized, .timeLimit(.minutes(5))) struct PostgresServerTests {
    typealias Server = ServerLifecycleTests.ServerProcess

    static func environment(_ name: String) throws -> String {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else {
            throw TestFailure(
                "\(name) is not set: run `make test`, or `make pg-test-start` and export what it prints"
            )
        }
        return value
    }

    /// A fresh database on the server `make test` started: its URL and its name.
    static func freshDatabase(_ base: String, _ label: String) throws -> (url: String, name: String) {
        let name = "t_\(label)_\(UInt32.random(in: 0...UInt32.max))"
        try PGConnection(url: base).execute("CREATE DATABASE \(name)")
        guard let slash = base.lastIndex(of: "/") else { throw TestFailure("odd URL \(base)") }
        return (String(base[...slash]) + name, name)
    }

    static func temporaryRoot(_ label: String) throws -> String { try makeTemporaryDirectory(label) }

    static func content(_ body: [String: Any]) -> NSDictionary {
        var body = body
        body["freshness"] = nil
        body["stale"] = nil
        return body as NSDictionary
    }

    static func position(_ body: [String: Any]) -> Int { (body["freshness"] as? [String: Any])?["position"] as? Int ?? -1 }

    @Test func twoServersOnOnePostgresConvergeToTheSameViews() async throws {
        let base = try Self.environment("TALLY_TEST_POSTGRES_URL")
        let (url, database) = try Self.freshDatabase(base, "converge")
        let root = try Self.temporaryRoot("converge")
        defer {
            try? FileManager.default.removeItem(atPath: root)
            try? PGConnection(url: base).execute("DROP DATABASE IF EXISTS \(database) WITH (FORCE)")
        }
        let authority = try await TokenAuthority.hs256(secret: ServerLifecycleTests.secret)
        let admin = try await authority.mint(subject: "root", role: .admin)
        let client = HTTPClient.shared

        let a = try Server(dataDir: root + "/a", logDir: root, run: 1, store: url)
        let b = try Server(dataDir: root + "/b", logDir: root, run: 2, store: url)
        let (urlA, urlB) = (try await a.url(), try await b.url())
        var users: [String: String] = [:]
        for name in ["alice", "bob", "carol"] { users[name] = try await authority.mint(subject: name, role: .user) }
        let tokens = users
        // Commands alternate between the servers, several of them at once.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (i, name) in ["alice", "bob", "carol"].enumerated() {
                group.addTask {
                    let grant = #"{"user":"\#(name)","amount":10,"reason":"test"}"#
                    #expect(try await Self.call(client, .POST, (i % 2 == 0 ? urlA : urlB) + "/api/v1/credits/grant", admin, grant) == 200)
                    for k in 0..<6 {
                        let target = (i + k) % 2 == 0 ? urlA : urlB
                        let status = try await Self.call(client, .POST, target + "/api/v1/creator/unlock/creator.\(k % 4)", tokens[name]!)
                        #expect(status == 200, "\(name) unlock \(k) on \(target)")
                    }
                }
            }
            try await group.waitForAll()
        }
        let store = try PostgresLog(url: url, options: .init(readOnly: true))
        let head = Int(try await store.head().position)
        await store.close()
        #expect(head > 0)
        var last: ([String: Any], [String: Any]) = ([:], [:])
        let converged = try await eventually(timeout: .seconds(240), poll: .milliseconds(50)) {
            let (_, statsA) = try await ServerLifecycleTests.call(client, .GET, urlA + "/api/v1/system/stats", token: admin)
            let (_, statsB) = try await ServerLifecycleTests.call(client, .GET, urlB + "/api/v1/system/stats", token: admin)
            last = (statsA, statsB)
            return Self.position(statsA) == head && Self.position(statsB) == head
        }
        #expect(Self.content(last.0) == Self.content(last.1))
        #expect(converged, "views did not both reach \(head): \(Self.position(last.0)) and \(Self.position(last.1))")
        let unlocks = (last.0["unlocks"] as? [String: Any])?["total"] as? Int
        #expect(unlocks == 3 * 4, "each user unlocked 4 distinct creators (repeats are free)")
        for (name, token) in users {
            let (_, pageA) = try await ServerLifecycleTests.call(client, .GET, urlA + "/api/v1/creator/unlocked", token: token)
            let (_, pageB) = try await ServerLifecycleTests.call(client, .GET, urlB + "/api/v1/creator/unlocked", token: token)
            #expect(Self.content(pageA) == Self.content(pageB), "\(name)")
            #expect((pageA["profiles"] as? [Any])?.count == 4, "\(name)")
        }
        #expect(try await a.terminate() == 0)
        #expect(try await b.terminate() == 0)
    }

    @Test func postgresStoppedUnderLoadDegradesThenRecoversWithoutLossOrDuplicates() async throws {
        let script = try Self.environment("TALLY_TEST_POSTGRES_SCRIPT")
        let root = try Self.temporaryRoot("outage")
        let pgDir = root + "/pg"
        let port = 56_000 + Int.random(in: 0..<2_000)
        defer {
            _ = try? runScript(script, ["destroy", pgDir])
            try? FileManager.default.removeItem(atPath: root)
        }
        let url = try runScript(script, ["start", pgDir, "\(port)"]).trimmingCharacters(in: .whitespacesAndNewlines)
        let authority = try await TokenAuthority.hs256(secret: ServerLifecycleTests.secret)
        let admin = try await authority.mint(subject: "root", role: .admin)
        let user = try await authority.mint(subject: "dora", role: .user)
        let server = try Server(dataDir: root + "/data", logDir: root, run: 1, store: url, environment: ["TALLY_COMMAND_TIMEOUT_MS": "1000"])
        do {
            try await Self.outage(server: server, script: script, pgDir: pgDir, port: port, url: url, admin: admin, user: user)
        } catch {
            Issue.record("server log:\n\(server.stderr.suffix(4_000))")
            throw error
        }
    }

    static func outage(server: Server, script: String, pgDir: String, port: Int, url: String, admin: String, user: String) async throws {
        let client = HTTPClient.shared
        let api = try await server.url()
        let total = 60
        #expect(try await Self.call(client, .POST, api + "/api/v1/credits/grant", admin, #"{"user":"dora","amount":\#(total),"reason":"t"}"#) == 200)

        // The client: unlock creator.i with key k-i, retrying the same key until it succeeds.
        let refused = Atomic(0)
        let acknowledged = Atomic(0)
        let load = Task {
            for i in 0..<total {
                while true {
                    let status = (try? await Self.call(client, .POST, api + "/api/v1/creator/unlock/creator.\(i)", user, nil, key: "k-\(i)")) ?? 0
                    if status == 200 { break }
                    #expect(status == 503 || status == 0, "unlock \(i) got \(status)")
                    refused.add(1, ordering: .relaxed)
                    try await Task.sleep(for: .milliseconds(100))
                }
                acknowledged.add(1, ordering: .relaxed)
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        try await waitUntil("10 unlocks acknowledged", timeout: .seconds(240)) { acknowledged.load(ordering: .relaxed) >= 10 }
        _ = try runScript(script, ["stop", pgDir])
        // Reads keep answering from the last views, marked with the store's state.
        let sawUnavailable = try await eventually(timeout: .seconds(240), poll: .milliseconds(100)) {
            let (status, stats) = try await ServerLifecycleTests.call(client, .GET, api + "/api/v1/system/stats", token: admin)
            #expect(status == 200)
            guard (stats["freshness"] as? [String: Any])?["state"] as? String == "storeUnavailable" else { return false }
            #expect(stats["stale"] as? Bool == true, "a view that cannot reach the store answers stale: \(stats)")
            return true
        }
        #expect(sawUnavailable, "the views never reported storeUnavailable while PostgreSQL was down")
        // The balance too answers from its view, not through the breaker to the store.
        let balanceAnswered = try await eventually(timeout: .seconds(240), poll: .milliseconds(100)) {
            let (status, balance) = try await ServerLifecycleTests.call(client, .GET, api + "/api/v1/credits/balance", token: user)
            #expect(status == 200, "\(balance)")
            guard (balance["freshness"] as? [String: Any])?["state"] as? String == "storeUnavailable" else { return false }
            #expect(balance["stale"] as? Bool == true, "\(balance)")
            #expect(int(balance, "total_granted") == total && int(balance, "balance").map { $0 + (int(balance, "unlocked") ?? -1) } == total, "\(balance)")
            return true
        }
        #expect(balanceAnswered, "the balance never answered from its view while PostgreSQL was down")
        let before = refused.load(ordering: .relaxed)
        try await waitUntil("3 more unlocks refused while PostgreSQL is down", timeout: .seconds(240)) { refused.load(ordering: .relaxed) >= before + 3 }
        _ = try runScript(script, ["start", pgDir, "\(port)"])
        try await load.value
        #expect(refused.load(ordering: .relaxed) > 0)

        // Every acknowledged unlock is in the log exactly once.
        let store = try PostgresLog(url: url, options: .init(readOnly: true))
        var unlocked: [String: Int] = [:]
        for try await event in store.read(from: 1) where event.type == "ProfileUnlocked" {
            unlocked[event.idempotencyKey ?? "?", default: 0] += 1
        }
        let report = try await store.verify()
        await store.close()
        #expect(report.intact)
        #expect(unlocked.count == total && unlocked.values.allSatisfy { $0 == 1 }, "\(unlocked.filter { $0.value != 1 })")
        let recovered = try await eventually(timeout: .seconds(240), poll: .milliseconds(50)) {
            let (_, stats) = try await ServerLifecycleTests.call(client, .GET, api + "/api/v1/system/stats", token: admin)
            return (stats["unlocks"] as? [String: Any])?["total"] as? Int == total
                && (stats["freshness"] as? [String: Any])?["state"] as? String == "live"
        }
        #expect(recovered, "the views did not come back live with all \(total) unlocks")
        // The writer's reconnection shows in /metrics.
        let metrics = try await client.execute(HTTPClientRequest(url: api + "/metrics"), timeout: .seconds(10))
        let text = String(buffer: try await metrics.body.collect(upTo: 1 << 20))
        let reconnects = text.split(separator: "\n").first { $0.hasPrefix("tally_log_reconnects_total ") }
        #expect(reconnects.flatMap { Double($0.split(separator: " ").last!) }.map { $0 >= 1 } == true, "\(reconnects ?? "no tally_log_reconnects_total")")
        #expect(try await server.terminate() == 0)
    }

    static func call(_ client: HTTPClient, _ method: HTTPMethod, _ url: String, _ token: String, _ body: String? = nil, key: String? = nil) async throws -> Int {
        try await ServerLifecycleTests.call(client, method, url, token: token, body: body, headers: key.map { [("Idempotency-Key", $0)] } ?? []).0
    }
}

/// Runs the test PostgreSQL script; returns its stdout, throws with its exit status on
/// failure (its stderr goes to the test's). popen/pclose rather than Foundation's `Process`,
/// whose exit detection never fired here for a script whose child (the server) lives on.
func runScript(_ script: String, _ arguments: [String]) throws -> String {
    let command = ([script] + arguments).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
    guard let pipe = popen(command, "r") else { throw TestFailure("cannot run \(command)") }
    var output: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = fread(&buffer, 1, buffer.count, pipe)
        if n <= 0 { break }
        output.append(contentsOf: buffer[0..<n])
    }
    let status = pclose(pipe)
    guard status == 0 else { throw TestFailure("\(command) exited with status \(status)") }
    return String(decoding: output, as: UTF8.self)
}
