import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import TallyTestSupport
import Testing
@testable import API

#if canImport(Glibc)
import Glibc
#endif

/// The real `tally-server` process: start, serve over a socket, SIGTERM (snapshots written,
/// log closed, exit 0), restart from the snapshots with the same views.
@Suite(.serialized, .timeLimit(.minutes(3))) struct ServerLifecycleTests {
    static let secret = "lifecycle-secret-0123456789abcdef01234567"

    final class ServerProcess {
        let process = Process()
        let stderrPath: String

        /// With `store`, the server uses that PostgreSQL log (durable commits); otherwise the
        /// embedded log in `dataDir` without fsync.
        init(dataDir: String, logDir: String, run: Int, store: String? = nil, environment: [String: String] = [:]) throws {
            stderrPath = logDir + "/stderr-\(run).log"
            _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
            process.executableURL = URL(fileURLWithPath: try Self.binary())
            // No health samples during the test: its positions count only the test's commands,
            // however slow the machine.
            process.arguments = ["serve", "--data-dir", dataDir, "--port", "0", "--health-interval-s", "86400"]
                + (store.map { ["--store", $0, "--fsync", "always"] } ?? ["--fsync", "never"])
            process.environment = ["TALLY_JWT_SECRET": ServerLifecycleTests.secret, "PATH": "/usr/bin:/bin"].merging(environment) { $1 }
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
            process.standardOutput = FileHandle.nullDevice
            try process.run()
        }

        var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

        /// The URL the server logged once listening.
        func url() async throws -> String {
            var url: String?
            let reported = await eventually(timeout: .seconds(30), poll: .milliseconds(50)) {
                url = stderr.range(of: #"url=http://[0-9.]+:[0-9]+"#, options: .regularExpression).map { String(stderr[$0].dropFirst(4)) }
                return url != nil
            }
            guard reported, let url else { throw TestFailure("the server did not report its URL: \(stderr)") }
            return url
        }

        func terminate() async throws -> Int32 {
            kill(process.processIdentifier, SIGTERM)
            if !(await eventually(poll: .milliseconds(50)) { !process.isRunning }) {
                process.terminate()
                throw TestFailure("the server did not stop within 20 s of SIGTERM: \(stderr)")
            }
            return process.terminationStatus
        }

        static func binary() throws -> String { try builtProduct("tally-server") }
    }

    static func call(
        _ client: HTTPClient, _ method: HTTPMethod, _ url: String, token: String, body: String? = nil, headers: [(String, String)] = []
    ) async throws -> (Int, [String: Any]) {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer " + token)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await client.execute(request, timeout: .seconds(10))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        let object = (try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView))) as? [String: Any] ?? [:]
        return (Int(response.status.code), object)
    }

    @Test func serveStopAndRestartFromSnapshots() async throws {
        let root = try makeTemporaryDirectory("lifecycle")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let authority = try await TokenAuthority.hs256(secret: Self.secret)
        let admin = try await authority.mint(subject: "root", role: .admin)
        let user = try await authority.mint(subject: "alice", role: .user)
        let client = HTTPClient.shared

        let first = try ServerProcess(dataDir: root + "/data", logDir: root, run: 1)
        let url = try await first.url()
        #expect(try await Self.call(client, .POST, url + "/api/v1/credits/grant", token: admin, body: #"{"user":"alice","amount":2,"reason":"test"}"#).0 == 200)
        #expect(try await Self.call(client, .POST, url + "/api/v1/creator/unlock/some.creator", token: user).0 == 200)
        let (status, stats) = try await Self.call(client, .GET, url + "/api/v1/system/stats", token: user)
        #expect(status == 200)
        let unlocks = stats["unlocks"] as? [String: Any]
        #expect(unlocks?["total"] as? Int == 1)
        #expect(try await first.terminate() == 0)
        #expect(first.stderr.contains("wrote snapshot at position 2"), "\(first.stderr)")
        #expect(first.stderr.contains("event log closed"))

        let second = try ServerProcess(dataDir: root + "/data", logDir: root, run: 2)
        let again = try await second.url()
        let (_, restarted) = try await Self.call(client, .GET, again + "/api/v1/system/stats", token: user)
        #expect((restarted["unlocks"] as? [String: Any])?["total"] as? Int == 1)
        #expect(((restarted["freshness"] as? [String: Any])?["position"] as? Int) == 2)
        let (_, page) = try await Self.call(client, .GET, again + "/api/v1/creator/unlocked", token: user)
        #expect((page["profiles"] as? [[String: Any]])?.first?["username"] as? String == "some.creator")
        #expect(try await second.terminate() == 0)
        // Read once the process has exited: it listens before the snapshots are loaded, and
        // info lines reach stderr in batches (`BufferedLogSink`), so earlier is a race.
        #expect(second.stderr.contains("loaded snapshot"), "\(second.stderr)")
    }
}
