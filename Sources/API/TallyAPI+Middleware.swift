import EventLog
import Hummingbird
import Logging

extension TallyAPI {
    /// The middleware every request passes, outermost first:
    /// 1. request ids (the client's `X-Request-Id` or a new one; `Request-Id` on every response);
    /// 2. the access log (`info`, one line per request, the status sent), then the debug
    ///    request log, both with that id;
    /// 3. request metrics, by the final status;
    /// 4. CORS, when origins are configured: it answers preflights and adds its headers to
    ///    every finished response, problem documents included;
    /// 5. the problem mapping: every error below becomes its problem response here, so
    ///    nothing above ever sees a thrown error;
    /// 6. authentication.
    func addMiddleware(to router: Router<TallyRequestContext>) {
        router.add(middleware: RequestIDMiddleware())
        router.add(middleware: AccessLogMiddleware())
        router.add(middleware: LogRequestsMiddleware(.debug))
        router.add(middleware: RequestMetricsMiddleware(metrics: metrics))
        if let policy = CORSPolicy(origins: corsOrigins) {
            router.add(middleware: CORSPolicyMiddleware(policy: policy))
        }
        router.add(middleware: ProblemMiddleware(metrics: metrics))
        router.add(middleware: AuthMiddleware(authority: authority))
    }
}
