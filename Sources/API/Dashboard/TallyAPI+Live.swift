import EventLog
import Events
import Foundation
import HTTPTypes
import Hummingbird
import Projections
public import ServiceLifecycle

/// `GET /api/v1/live`: Server-Sent Events, one `positions` event a second with each view's
/// position, lag and state, the head the views know and the store's breaker. Read with
/// `fetch()` and a stream reader, so the bearer token stays in the `Authorization` header
/// (EventSource cannot send one). One publisher builds each frame from the views alone; a
/// connection only writes what it is handed. Past `LiveFeed.maximum` streams: 503 `busy`.
extension TallyAPI {
    func addLiveRoutes(to v1: RouterGroup<TallyRequestContext>) {
        v1.get("live", use: liveStream)
    }

    @Sendable func liveStream(_ request: Request, context: TallyRequestContext) async throws -> Response {
        _ = try context.require(.user, .admin, .auditor)
        guard let subscription = live.subscribe() else {
            var error = APIError(.busy, "the server already serves \(live.maximum) live streams; poll the JSON routes or retry shortly")
            error.retryAfter = 5
            throw error
        }
        let headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-store", HTTPField.Name("X-Accel-Buffering")!: "no"]
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            // Tells the client how long to wait before reconnecting, then the frames until the
            // client goes, the feed finishes, or the server shuts down gracefully.
            try await writer.write(ByteBuffer(string: "retry: 2000\n\n"))
            try await withGracefulShutdownHandler {
                for await frame in subscription.frames { try await writer.write(frame) }
            } onGracefulShutdown: {
                subscription.end()
            }
            try await writer.finish(nil)
        })
    }

    /// One frame: `event: positions` and a JSON `data` line.
    func liveFrame() -> ByteBuffer {
        let head = max(hub.knownHead, hub.stats.current.position, hub.unlocked.current.position, hub.metrics.current.position)
        let views: [LiveFrameBody.View] = [
            LiveFrameBody.View(name: SystemStatsProjection.name, FreshnessBody(hub.freshnessNow(hub.stats, head: head))),
            LiveFrameBody.View(name: UnlockedProfilesProjection.name, FreshnessBody(hub.freshnessNow(hub.unlocked, head: head))),
            LiveFrameBody.View(name: MetricsProjection.name, FreshnessBody(hub.freshnessNow(hub.metrics, head: head))),
        ]
        let body = LiveFrameBody(head: head, breaker: breaker.current.rawValue, views: views, subscribers: live.subscriberCount)
        let json = (try? JSONResponse.encoder.encode(body)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return ByteBuffer(string: "event: positions\ndata: \(json)\n\n")
    }

    /// The service that publishes a frame a second until graceful shutdown, then ends every stream.
    public var livePublisher: LivePublisher { LivePublisher(publish: { live.publish(liveFrame()) }, finish: live.finish) }
}

/// Publishes the live frame once a second; on graceful shutdown it finishes the feed.
public struct LivePublisher: Service {
    let publish: @Sendable () -> Void
    let finish: @Sendable () -> Void

    public func run() async throws {
        defer { finish() }
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                publish()
                try await Task.sleep(for: .seconds(1))
            }
        }
    }
}

extension ViewHub {
    /// A view's freshness against `head` without waiting and without asking the store (the
    /// event time of the head comes from whichever view has folded it).
    func freshnessNow<P: Projection>(_ runner: ProjectionRunner<P, Store>, head: LogPosition) -> Freshness {
        freshness(runner.current, state: runner.state, head: head)
    }
}

struct LiveFrameBody: Encodable {
    struct View: Encodable {
        var name: String
        var freshness: FreshnessBody
        init(name: String, _ freshness: FreshnessBody) { (self.name, self.freshness) = (name, freshness) }
    }

    var head: LogPosition
    var breaker: String
    var views: [View]
    var subscribers: Int
}
