import EventLog
import EventLog
import Events
import TallyTestSupport
import Testing
@testable import API

/// The server samples its own health and appends it to the log.
@Suite(.timeLimit(.minutes(5))) struct HealthSamplerTests {
    @Test func samplesAreBoundedAndAppended() async throws {
        try await withTallyFixture { fixture in
            let sampler = HealthSampler(api: fixture.api, dataDirectory: fixture.directory, interval: .milliseconds(50))
            let sample = sampler.measure(cpuPercent: 12.5)
            #expect(sample.component == HealthSampler<FileLog>.component)
            for value in [sample.memoryPct, sample.cpuPct, sample.diskPct] { #expect(value >= 0 && value <= 100) }
            #expect(sample.memoryPct > 0, "read from /proc/meminfo")
            #expect(sample.diskPct > 0, "read with statvfs of the data directory")
            #expect(try DomainEvent.healthSampled(sample).validated() == .healthSampled(sample))

            let running = Task { try await sampler.run() }
            let stream = "health-" + HealthSampler<FileLog>.component
            let appended = try await eventually { try await fixture.log.readStream(stream).count >= 2 }
            running.cancel()
            _ = try? await running.value
            #expect(appended, "two samples appended")
        }
    }
}
