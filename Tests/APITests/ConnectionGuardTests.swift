@testable import API
import Testing

/// The connection guard's decisions, without a socket.
@Suite("Connection guard state machine")
struct ConnectionGuardTests {
    let head = Duration.seconds(10), body = Duration.seconds(30)

    @Test("a request's first byte arms the head deadline, its head the body deadline, its end disarms")
    func requestLifecycle() {
        var machine = ConnectionGuard(headerTimeout: head, bodyTimeout: body)
        #expect(machine.bytesArrived() == .arm(.head, after: head))
        #expect(machine.bytesArrived() == .none)
        #expect(machine.receivedHead() == .arm(.body, after: body))
        #expect(machine.receivedEnd() == .disarm)
        #expect(machine.phase == .answering)
        // Bytes of a pipelined request while answering do not arm a deadline yet.
        #expect(machine.bytesArrived() == .none)
        #expect(machine.wroteEnd() == .none)
        #expect(machine.phase == .idle)
        #expect(machine.bytesArrived() == .arm(.head, after: head))
    }

    @Test("a deadline closes only the phase it was armed for")
    func deadlines() {
        var machine = ConnectionGuard(headerTimeout: head, bodyTimeout: body)
        #expect(machine.timerFired(.head) == .none)
        _ = machine.bytesArrived()
        #expect(machine.timerFired(.body) == .none)
        #expect(machine.timerFired(.head) == .close(.head))
        _ = machine.receivedHead()
        #expect(machine.timerFired(.head) == .none)
        #expect(machine.timerFired(.body) == .close(.body))
        _ = machine.receivedEnd()
        #expect(machine.timerFired(.body) == .none)
    }

    @Test("an early response leaves the body deadline armed: the body must still arrive")
    func earlyResponse() {
        var machine = ConnectionGuard(headerTimeout: head, bodyTimeout: body)
        _ = machine.bytesArrived()
        _ = machine.receivedHead()
        #expect(machine.wroteEnd() == .none)
        #expect(machine.timerFired(.body) == .close(.body))
    }

    @Test("a parser error before the head is answered by the guard, after it by the route")
    func parserErrors() {
        var before = ConnectionGuard(headerTimeout: head, bodyTimeout: body)
        _ = before.bytesArrived()
        #expect(before.parserFailed() == .refuse)
        var idle = ConnectionGuard(headerTimeout: head, bodyTimeout: body)
        #expect(idle.parserFailed() == .refuse)
        var during = ConnectionGuard(headerTimeout: head, bodyTimeout: body)
        _ = during.bytesArrived()
        _ = during.receivedHead()
        #expect(during.parserFailed() == .forward)
    }

    @Test("durations become NIO nanoseconds without overflow")
    func nanoseconds() {
        #expect(ConnectionGuard.nanoseconds(.milliseconds(300)) == 300_000_000)
        #expect(ConnectionGuard.nanoseconds(.seconds(3_600)) == 3_600_000_000_000)
        #expect(ConnectionGuard.nanoseconds(.seconds(Int64.max)) == .max)
    }
}
