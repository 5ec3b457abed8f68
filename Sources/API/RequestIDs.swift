import HTTPTypes
import Hummingbird
import Logging

/// The ids a request carries into the logs and onto the events it writes: the request id
/// (the client's `X-Request-Id` when usable, else the server's own), and the correlation
/// and causation ids a command records (`X-Correlation-Id`, `X-Causation-Id`).
enum RequestIDs {
    /// Every id fits the log's correlation and causation fields (`EventLimits`), so that a
    /// request id can stand in for a missing correlation id.
    static let maxBytes = 64

    /// `raw` when it is 1…64 visible ASCII characters (`!` … `~`: no space, no control
    /// character, nothing a log line or a header could be forged with); nil otherwise.
    static func usable(_ raw: String?) -> String? {
        guard let raw else { return nil }
        let bytes = raw.utf8
        guard !bytes.isEmpty, bytes.count <= maxBytes, bytes.allSatisfy({ (0x21...0x7E).contains($0) }) else { return nil }
        return raw
    }

    /// The correlation or causation id a request sends in `header`: nil when absent, the
    /// value when usable, and a refusal naming the header otherwise (it would be recorded
    /// on events, so it is never silently cut or replaced).
    static func recorded(_ request: Request, _ header: HTTPField.Name) throws -> String? {
        guard let raw = request.headers[header] else { return nil }
        guard let id = usable(raw) else {
            throw APIError.invalid(header.rawName, "must be 1...\(maxBytes) visible ASCII characters (no spaces)")
        }
        return id
    }
}

/// The outermost middleware: takes the client's `X-Request-Id` as the request id when it
/// is usable (log lines then carry it as `hb.request.id`), and stamps every response with
/// `Request-Id`, and with `X-Correlation-Id` when the client sent a usable one.
struct RequestIDMiddleware: RouterMiddleware {
    typealias Context = TallyRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        if let id = RequestIDs.usable(request.headers[.clientRequestID]) {
            context.logger[metadataKey: "hb.request.id"] = .string(id)
        }
        var response = try await next(request, context)
        response.headers[.requestID] = context.id
        if let correlation = RequestIDs.usable(request.headers[.correlationID]) {
            response.headers[.correlationID] = correlation
        }
        return response
    }
}
