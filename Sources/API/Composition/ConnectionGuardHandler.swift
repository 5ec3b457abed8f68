import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// Carries out `ConnectionGuard` on one connection. It sits after Hummingbird's HTTP
/// codec, where it sees request parts, and puts a small byte watcher in front of the
/// parser, so that a head's deadline starts at its first byte rather than at the end of
/// the keep-alive idle time before it.
final class ConnectionGuardHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private var state: ConnectionGuard
    /// The deadline the guard asked for last, and when it falls; nil once disarmed.
    private var armed: (deadline: ConnectionGuard.Deadline, at: NIODeadline)?
    /// The one scheduled wake-up, and when it fires. It is left in place on disarm and
    /// re-arm, and only moved earlier: a keep-alive connection's requests arm and disarm
    /// twice each, and scheduling a NIO task for every one cost the hot reads measurably.
    private var timer: (task: Scheduled<Void>, at: NIODeadline)?
    private let logger: Logger

    init(headerTimeout: Duration, bodyTimeout: Duration, logger: Logger) {
        state = ConnectionGuard(headerTimeout: headerTimeout, bodyTimeout: bodyTimeout)
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        do {
            try context.pipeline.syncOperations.addHandler(ByteArrivalWatcher(owner: self, context: context), position: .first)
        } catch {
            logger.debug("could not watch the connection's bytes; its head deadline starts at the head", metadata: ["error": "\(error)"])
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelTimer()
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelTimer()
        context.fireChannelInactive()
    }

    /// Called by the watcher, on this channel's event loop.
    fileprivate func bytesArrived(context: ChannelHandlerContext) {
        perform(state.bytesArrived(), context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head: perform(state.receivedHead(), context)
        case .body: break
        case .end: perform(state.receivedEnd(), context)
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { perform(state.wroteEnd(), context) }
        context.write(data, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard error is HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        switch state.parserFailed() {
        case .refuse:
            let id = RequestID().description
            logger.debug("refused a request the HTTP parser could not read", metadata: ["error": "\(error)", "hb.request.id": "\(id)"])
            refuse(context, error, requestID: id)
        default:
            context.fireErrorCaught(error)
        }
    }

    private func perform(_ action: ConnectionGuard.Action, _ context: ChannelHandlerContext) {
        switch action {
        case .none, .refuse, .forward:
            break
        case .disarm:
            armed = nil
        case .arm(let deadline, let delay):
            let at = NIODeadline.now() + .nanoseconds(ConnectionGuard.nanoseconds(delay))
            armed = (deadline, at)
            if let timer, timer.at <= at { return }
            schedule(at: at, context)
        case .close(let deadline):
            logger.debug("closed a connection whose request \(deadline == .head ? "head" : "body") did not arrive in time")
            context.close(promise: nil)
        }
    }

    private func schedule(at: NIODeadline, _ context: ChannelHandlerContext) {
        timer?.task.cancel()
        let task = context.eventLoop.assumeIsolated().scheduleTask(deadline: at) {
            self.timer = nil
            self.wokeUp(context)
        }
        timer = (task, at)
    }

    /// The wake-up fired: the armed deadline has passed, lies later (re-armed since), or is gone.
    private func wokeUp(_ context: ChannelHandlerContext) {
        guard let armed else { return }
        if NIODeadline.now() >= armed.at {
            self.armed = nil
            perform(state.timerFired(armed.deadline), context)
        } else {
            schedule(at: armed.at, context)
        }
    }

    private func cancelTimer() {
        timer?.task.cancel()
        timer = nil
        armed = nil
    }

    /// Writes the problem for a request refused before its head was read, then closes. It
    /// carries a `Request-Id` like every other answer, so a client can quote it.
    private func refuse(_ context: ChannelHandlerContext, _ error: any Error, requestID: String) {
        let detail: String
        if let parserError = error as? HTTPParserError, parserError == .headerOverflow {
            detail = "the request's headers are larger than the server reads (\(TallyHTTPLimits.maxHeaderBytes / 1024) KiB in all); send a shorter token or fewer headers"
        } else {
            detail = "the request could not be parsed as HTTP/1.1 (\(error)); check the request line and headers"
        }
        let problem = Problem(.badRequest, detail: detail)
        let body = (try? problem.encodedBody()) ?? Data()
        var head = HTTPResponse(status: problem.status)
        head.headerFields[.contentType] = "application/problem+json"
        head.headerFields[.contentLength] = String(body.count)
        head.headerFields[.connection] = "close"
        head.headerFields[.requestID] = requestID
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(context.channel.allocator.buffer(bytes: body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
    }
}

/// Tells the guard when bytes arrive, before the HTTP parser sees them.
private final class ByteArrivalWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let owner: ConnectionGuardHandler
    private let ownerContext: ChannelHandlerContext

    init(owner: ConnectionGuardHandler, context: ChannelHandlerContext) {
        self.owner = owner
        ownerContext = context
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        owner.bytesArrived(context: ownerContext)
        context.fireChannelRead(data)
    }
}

/// The HTTP parser's limits, shared by the server's setup and its messages.
enum TallyHTTPLimits {
    /// All header fields of a request together (and any one of them) at most.
    static let maxHeaderBytes = 80 * 1024
}
