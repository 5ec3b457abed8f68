import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The dashboard's files, held in memory from the first request: each with its type, an
/// ETag (FNV-1a of its bytes) for revalidation, and headers that forbid anything the page
/// does not load from this server (no inline script or style, nothing from elsewhere).
struct DashboardAsset: Sendable {
    let body: ByteBuffer
    let contentType: String
    let etag: String

    init(_ text: String, contentType: String) {
        body = ByteBuffer(string: text)
        self.contentType = contentType
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        etag = "\"" + String(hash, radix: 16) + "\""
    }

    static let page = DashboardAsset(DashboardPage.html, contentType: "text/html; charset=utf-8")
    static let script = DashboardAsset(DashboardScript.js, contentType: "text/javascript; charset=utf-8")
    static let charts = DashboardAsset(DashboardCharts.js, contentType: "text/javascript; charset=utf-8")
    static let style = DashboardAsset(DashboardStyle.css, contentType: "text/css; charset=utf-8")

    static let contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    /// The asset, or 304 when the client's `If-None-Match` holds its ETag.
    func response(_ request: Request) -> Response {
        var headers: HTTPFields = [
            .contentType: contentType, .eTag: etag, .cacheControl: "no-cache", .contentSecurityPolicy: Self.contentSecurityPolicy,
            HTTPField.Name("X-Content-Type-Options")!: "nosniff", HTTPField.Name("Referrer-Policy")!: "no-referrer",
            HTTPField.Name("X-Frame-Options")!: "DENY",
        ]
        if let sent = request.headers[.ifNoneMatch], sent.split(separator: ",").contains(where: { $0.trimmingCharacters(in: .whitespaces) == etag }) {
            headers[.contentType] = nil
            return Response(status: .notModified, headers: headers)
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: body))
    }
}

extension TallyAPI {
    /// `/` and `/dashboard`: the page; `/dashboard/*.js|css`: its script and style. Public:
    /// the page holds no data; it asks the API with the token the person pastes.
    func addDashboardRoutes(to router: Router<TallyRequestContext>) {
        router.get("/") { request, _ in DashboardAsset.page.response(request) }
        router.get("/dashboard") { request, _ in DashboardAsset.page.response(request) }
        router.get("/dashboard/app.js") { request, _ in DashboardAsset.script.response(request) }
        router.get("/dashboard/charts.js") { request, _ in DashboardAsset.charts.response(request) }
        router.get("/dashboard/app.css") { request, _ in DashboardAsset.style.response(request) }
    }
}
