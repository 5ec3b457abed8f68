import API
import Foundation
import Hummingbird
import HummingbirdTesting
import TallyTestSupport
import Testing

/// The integer fields of report items (counts, durations, sizes, attempts) are whole numbers
/// written as such, like `amount` and `duration_ms` at the top level: `1e2` or `5.0` would be
/// read as 100 or 5 by a lenient decoder. The refusal names the item and the field, and
/// nothing of the batch is written. Fields that are fractions by nature (`sentiment`, health
/// percentages) still take any number.
@Suite("Worker reports: whole numbers per item", .timeLimit(.minutes(5)))
struct ReportWholeNumberTests {
    /// (endpoint, a valid item, a second item with `field` written as `value`).
    static let cases: [(String, String, String, String)] = {
        let profile = #"{"type":"ProfileRefreshed","data":{"username":"natgeo","followers":1,"following":2,"posts_count":3,"verified":true,"category":"nature"}}"#
        let analysis = #"{"type":"PostAnalysisCompleted","data":{"username":"natgeo","post_id":"p1","sentiment":0.1,"language":"en","category":"x","duration_ms":5}}"#
        let failed = #"{"type":"PostAnalysisFailed","data":{"username":"natgeo","post_id":"p2","error":"timeout","duration_ms":5}}"#
        let succeeded = #"{"type":"CdnJobSucceeded","data":{"job_id":"j1","priority":"critical","kind":"avatar","duration_ms":40,"bytes":2048}}"#
        let cdnFailed = #"{"type":"CdnJobFailed","data":{"job_id":"j2","priority":"low","kind":"post","duration_ms":40,"error":"502","attempt":2,"will_retry":true}}"#
        var cases: [(String, String, String, String)] = []
        for value in ["1e2", "5.0", "-1.5E1"] {
            for field in ["followers", "following", "posts_count"] { cases.append(("profiles", profile, field, value)) }
            cases.append(("analysis", analysis, "duration_ms", value))
            cases.append(("analysis", failed, "duration_ms", value))
            cases.append(("cdn", succeeded, "duration_ms", value))
            cases.append(("cdn", succeeded, "bytes", value))
            cases.append(("cdn", cdnFailed, "duration_ms", value))
            cases.append(("cdn", cdnFailed, "attempt", value))
        }
        return cases
    }()

    /// `item` with `"field":<integer>` replaced by `"field":value`.
    static func rewrite(_ item: String, _ field: String, to value: String) throws -> String {
        let pattern = try Regex("\"\(field)\":-?[0-9]+")
        let rewritten = item.replacing(pattern, with: "\"\(field)\":\(value)", maxReplacements: 1)
        guard rewritten != item else { throw TestFailure("\(field) is not an integer member of \(item)") }
        return rewritten
    }

    @Test("1e2, 5.0 and -1.5E1 in an integer field of a report item are a 400 naming the item and the field", arguments: cases)
    func refused(endpoint: String, item: String, field: String, value: String) async throws {
        let bad = try Self.rewrite(item, field, to: value)
        try await withAPI { fixture, client in
            let response = try await send(client, .post, "/api/v1/events/\(endpoint)", token: fixture.serviceToken,
                                          body: "{\"events\":[\(item),\(bad)]}")
            #expect(response.status == .badRequest, "\(String(buffer: response.body))")
            let body = try json(response)
            #expect(body["code"] as? String == "invalid_input", "\(body)")
            #expect(body["field"] as? String == field, "\(body)")
            #expect(int(body, "item") == 1, "\(body)")
            #expect((body["detail"] as? String)?.contains("item 1") == true, "\(body)")
            #expect(fixture.head == 0, "nothing of the batch is written")

            // The same item with the field written as an integer is taken.
            let good = try await send(client, .post, "/api/v1/events/\(endpoint)", token: fixture.serviceToken,
                                      body: "{\"events\":[\(item),\(try Self.rewrite(item, field, to: "7"))]}")
            #expect(good.status == .created, "\(String(buffer: good.body))")
        }
    }

    @Test("fractional fields take any number: sentiment and health percentages as 5.0 or 1e1")
    func fractionsStayNumbers() async throws {
        try await withAPI { fixture, client in
            let analysis = #"{"type":"PostAnalysisCompleted","data":{"username":"natgeo","post_id":"p1","sentiment":1e-1,"language":"en","category":"x","duration_ms":5}}"#
            let health = #"{"type":"HealthSampled","data":{"component":"db","status":"ok","memory_pct":5.0,"cpu_pct":1e1,"disk_pct":10,"latency_ms":3.5}}"#
            let a = try await send(client, .post, "/api/v1/events/analysis", token: fixture.serviceToken, body: "{\"events\":[\(analysis)]}")
            #expect(a.status == .created, "\(String(buffer: a.body))")
            let h = try await send(client, .post, "/api/v1/events/health", token: fixture.serviceToken, body: "{\"events\":[\(health)]}")
            #expect(h.status == .created, "\(String(buffer: h.body))")
        }
    }
}
