import Hummingbird
import Logging

/// The access log: one `info` line per request, `request` with `method`, `route`, `status`,
/// `duration_ms` and the request id (`hb.request.id`, as on every line of the request).
/// `route` is the matched template (`/api/v1/creator/unlock/{username}`), never the raw path,
/// so no user data reaches the line; a request no route took is `NotFound`, a CORS preflight
/// `CORSPreflight`. It sits outside the metrics, CORS and problem layers, so `status` is the
/// one sent, problem responses included.
struct AccessLogMiddleware: RouterMiddleware {
    typealias Context = TallyRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let status: Int
        let response: Response
        do {
            response = try await next(request, context)
            status = Int(response.status.code)
        } catch {
            // Only reached if a middleware outside the problem mapping throws: the server answers 500.
            log(request, context, status: 500, since: start)
            throw error
        }
        log(request, context, status: status, since: start)
        return response
    }

    private func log(_ request: Request, _ context: Context, status: Int, since start: ContinuousClock.Instant) {
        guard context.logger.logLevel <= .info else { return }
        let elapsed = start.duration(to: .now)
        let (seconds, attoseconds) = elapsed.components
        let micros = seconds * 1_000_000 + attoseconds / 1_000_000_000_000
        let entries: [LogLine.Entry] = [
            ("duration_ms", .string(Self.milliseconds(micros: micros))),
            ("method", .string(request.method.rawValue)),
            ("route", .string(RequestMetricsMiddleware.route(context))),
            ("status", .string(String(status))),
        ]
        // The server's own handler takes the entries as they are: building and merging
        // dictionaries was most of this line's cost (BENCHMARKS.md, issue 13). Any other
        // handler gets the same line through `Logger`.
        if let handler = context.logger.handler as? LineLogHandler {
            handler.log(level: .info, message: Self.message, explicit: entries, source: Self.source)
        } else {
            context.logger.info(Logger.Message(stringLiteral: Self.message), metadata: Logger.Metadata(uniqueKeysWithValues: entries))
        }
    }

    static let message = "request"
    /// What `Logger` gives as the source of a line logged in this module.
    static let source = "API"

    /// `12.345`: milliseconds with three decimals, from whole microseconds.
    static func milliseconds(micros: Int64) -> String {
        let fraction = String(micros % 1_000)
        return "\(micros / 1_000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }
}
