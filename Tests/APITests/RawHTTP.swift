import Foundation
import TallyTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Sends `request` as raw bytes to 127.0.0.1:`port` and returns what the server answered
/// until it closed the connection, `timeoutSeconds` passed without a byte, or `maxBytes`
/// arrived. For requests an HTTP client library would not send (a declared length it never
/// delivers). The blocking socket runs on a thread of its own, never the cooperative pool.
func rawHTTPExchange(port: Int, _ request: String, timeoutSeconds: Int = 20, maxBytes: Int = 64 << 10) async throws -> String {
    let connection = try await RawConnection.open(port: port, timeoutSeconds: timeoutSeconds)
    defer { connection.close() }
    return try await connection.exchange(request, maxBytes: maxBytes)
}

/// One client socket to the server, for tests of what a connection may do: stay idle,
/// trickle a head, stop mid-body, wait behind the connection limit. Each blocking call
/// runs on a thread of its own; `timeoutSeconds` bounds every wait for a byte (a test's
/// time limit, never the thing it measures: tests wait for the server's EOF or answer).
final class RawConnection: @unchecked Sendable {
    private let fd: Int32

    private init(fd: Int32) { self.fd = fd }

    static func open(port: Int, timeoutSeconds: Int = 20) async throws -> RawConnection {
        try await onThread {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw TestFailure("socket() failed: errno \(errno)") }
            var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else {
                Glibc.close(fd)
                throw TestFailure("connect() to port \(port) failed: errno \(errno)")
            }
            return RawConnection(fd: fd)
        }
    }

    func send(_ text: String) async throws {
        try await Self.onThread { try self.sendBlocking(Array(text.utf8)) }
    }

    /// Sends each part after its pause, timed on a thread of its own: a slow client whose
    /// pace does not depend on how busy the test process's task pool is.
    func sendPaced(_ parts: [(pause: Duration, text: String)]) async throws {
        try await Self.onThread {
            for part in parts {
                let (seconds, attoseconds) = part.pause.components
                var pause = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
                var left = timespec()
                while nanosleep(&pause, &left) != 0 && errno == EINTR { pause = left }
                try self.sendBlocking(Array(part.text.utf8))
            }
        }
    }

    /// Sends `request` and reads one response (its head and declared body), or what came
    /// before the server closed or the timeout passed.
    func exchange(_ request: String, maxBytes: Int = 64 << 10) async throws -> String {
        try await Self.onThread {
            try self.sendBlocking(Array(request.utf8))
            return String(decoding: self.readBlocking(maxBytes: maxBytes, oneResponse: true).bytes, as: UTF8.self)
        }
    }

    /// Closes the sending side (the server reads EOF) and keeps the receiving side open.
    func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }

    /// Reads until the server closes the connection (`closed`) or no byte came within the
    /// timeout (`closed` false).
    func readUntilClosed(maxBytes: Int = 64 << 10) async throws -> (answer: String, closed: Bool) {
        try await Self.onThread {
            let (bytes, closed) = self.readBlocking(maxBytes: maxBytes, oneResponse: false)
            return (String(decoding: bytes, as: UTF8.self), closed)
        }
    }

    /// Reads until what arrived contains `marker` (true), or the server closed, the timeout
    /// passed or `maxBytes` arrived (false).
    func readUntil(_ marker: String, maxBytes: Int = 64 << 10) async throws -> (answer: String, found: Bool) {
        try await Self.onThread {
            var answer: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while answer.count < maxBytes {
                let n = buffer.withUnsafeMutableBytes { recv(self.fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 { break }
                answer.append(contentsOf: buffer[0..<n])
                if String(decoding: answer, as: UTF8.self).contains(marker) { return (String(decoding: answer, as: UTF8.self), true) }
            }
            return (String(decoding: answer, as: UTF8.self), false)
        }
    }

    /// True when bytes are waiting to be read right now (a poll that does not wait).
    func hasBytesWaiting() -> Bool {
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, 0) > 0 && descriptor.revents & Int16(POLLIN) != 0
    }

    func close() { Glibc.close(fd) }

    private func sendBlocking(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw TestFailure("send() failed: errno \(errno)") }
            sent += n
        }
    }

    private func readBlocking(maxBytes: Int, oneResponse: Bool) -> (bytes: [UInt8], closed: Bool) {
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while answer.count < maxBytes {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { return (answer, true) }
            if n < 0 { return (answer, errno == ECONNRESET) }  // no byte within the timeout, or reset
            answer.append(contentsOf: buffer[0..<n])
            // One response is enough: stop once its head and declared body are in.
            if oneResponse, let text = String(bytes: answer, encoding: .utf8), let end = text.range(of: "\r\n\r\n"),
               let length = text[..<end.lowerBound].split(separator: "\r\n").first(where: { $0.lowercased().hasPrefix("content-length:") })
                   .flatMap({ Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) }),
               text.utf8.count - text.utf8.distance(from: text.startIndex, to: end.upperBound) >= length {
                break
            }
        }
        return (answer, false)
    }

    private static func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            Thread { continuation.resume(with: Result { try body() }) }.start()
        }
    }
}
