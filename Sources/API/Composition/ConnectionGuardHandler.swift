import Foundation
import HTTPTypes
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
    private var timer: Scheduled<Void>?
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
        timer?.cancel()
        timer = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
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
            logger.debug("refused a request the HTTP parser could not read", metadata: ["error": "\(error)"])
            refuse(context, error)
        default:
            context.fireErrorCaught(error)
        }
    }

    private func perform(_ action: ConnectionGuard.Action, _ context: ChannelHandlerContext) {
        switch action {
        case .none, .refuse, .forward:
            break
        case .disarm:
            timer?.cancel()
            timer = nil
        case .arm(let deadline, let delay):
            timer?.cancel()
            timer = context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(ConnectionGuard.nanoseconds(delay))) {
                self.timer = nil
                self.perform(self.state.timerFired(deadline), context)
            }
        case .close(let deadline):
            logger.debug("closed a connection whose request \(deadline == .head ? "head" : "body") did not arrive in time")
            context.close(promise: nil)
        }
    }

    /// Writes the problem for a request refused before its head was read, then closes.
    private func refuse(_ context: ChannelHandlerContext, _ error: any Error) {
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
