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
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<String, any Error>) in
        let thread = Thread {
            continuation.resume(with: Result { try rawHTTPExchangeBlocking(port: port, request, timeoutSeconds: timeoutSeconds, maxBytes: maxBytes) })
        }
        thread.start()
    }
}

private func rawHTTPExchangeBlocking(port: Int, _ request: String, timeoutSeconds: Int, maxBytes: Int) throws -> String {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket() failed: errno \(errno)") }
    defer { close(fd) }
    var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { throw TestFailure("connect() to port \(port) failed: errno \(errno)") }
    let bytes = Array(request.utf8)
    var sent = 0
    while sent < bytes.count {
        let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard n > 0 else { throw TestFailure("send() failed: errno \(errno)") }
        sent += n
    }
    var answer: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while answer.count < maxBytes {
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { break }  // closed, or no byte within the timeout
        answer.append(contentsOf: buffer[0..<n])
        // One response is enough: stop once its head and declared body are in.
        if let text = String(bytes: answer, encoding: .utf8), let end = text.range(of: "\r\n\r\n"),
           let length = text[..<end.lowerBound].split(separator: "\r\n").first(where: { $0.lowercased().hasPrefix("content-length:") })
               .flatMap({ Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) }),
           text.utf8.count - text.utf8.distance(from: text.startIndex, to: end.upperBound) >= length {
            break
        }
    }
    return String(decoding: answer, as: UTF8.self)
}
