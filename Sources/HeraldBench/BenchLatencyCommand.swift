import ArgumentParser
import Foundation
import HeraldCore
import HeraldKafka
import HeraldRedis
import HeraldRuntime
import HeraldSettings
import Logging
import Synchronization

/// End-to-end latency: `herald run`'s wiring (`Daemon`, full path: Redis, then the inbox for
/// the events that need it) consumes role revocations produced at a steady rate, and a probe
/// watches Redis for each one's key. Latency is from the produce call to the first read that
/// sees the key (the watcher reads every outstanding key with one MGET, back to back), so it
/// includes one Redis round trip of the probe's own.
struct BenchLatencyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "latency", abstract: "Produce role revocations at a steady rate and time each until its Redis key is set.")

    @Option(help: "Events per second.") var rate = 1000
    @Option(help: "Seconds of steady load.") var seconds = 20

    func run() async throws {
        guard rate > 0, seconds > 0 else { throw ValidationError("--rate and --seconds must be positive") }
        let stop = await StopSignals.install()
        let settings = try HeraldSettings.load(environment: ProcessInfo.processInfo.environment)
        HeraldLogging.bootstrap(format: settings.log.format, level: settings.log.level)
        guard case .servers(let brokers) = try settings.kafka.requireBrokers() else {
            throw BenchError("herald-bench latency needs HERALD_KAFKA_BROKERS=host:port (a broker of its own process)")
        }
        let logger = Logger(label: "herald.bench")
        let consumer = Mutex<KafkaEventConsumer?>(nil)
        var hooks = Daemon.Hooks()
        hooks.consumerBuilt = { built in consumer.withLock { $0 = built } }
        let daemon = Task { try await Daemon.run(settings, stop: stop, hooks: hooks) }

        let producer = try KafkaProducer(bootstrapServers: brokers, properties: ["linger.ms": "0"], logger: logger)
        let redis = RedisClient(settings: settings.redis, logger: logger)
        defer { redis.close() }
        let topic = settings.kafka.authTopic
        let run = UUID().uuidString.prefix(8).lowercased()
        func record(_ i: Int) -> OutboundRecord {
            let role = "lat-\(run)-\(i)"
            let value =
                #"{"event_type":"RolePermissionsChanged","event_id":"\#(role)","role":"\#(role)","event_timestamp":\#(Int(Date().timeIntervalSince1970))}"#
            return OutboundRecord(topic: topic, key: Array(role.utf8), value: Array(value.utf8))
        }
        func key(_ i: Int) -> [UInt8] { Array("invalid_role: lat-\(run)-\(i)".utf8) }

        // Warm-up: the group has joined and the path is open once one event went through.
        try await producer.send([record(-1)])
        let clock = ContinuousClock()
        let warmupDeadline = clock.now + .seconds(120)
        while try await redis.command([Array("EXISTS".utf8), key(-1)]) != .integer(1) {
            guard clock.now < warmupDeadline else { throw BenchError("the warm-up event never reached Redis") }
            try await Task.sleep(for: .milliseconds(5))
        }

        let total = rate * seconds
        let sent = Mutex([ContinuousClock.Instant?](repeating: nil, count: total))
        let seen = Mutex([ContinuousClock.Instant?](repeating: nil, count: total))
        let produced = Atomic<Int>(0)
        // The watcher: reads every produced, not yet seen key with one MGET, again and again.
        let watcher = Task {
            var next = 0
            while next < total {
                let upTo = produced.load(ordering: .acquiring)
                if upTo == next {
                    try await Task.sleep(for: .microseconds(200))
                    continue
                }
                let pending = (next..<upTo).filter { i in seen.withLock { $0[i] == nil } }
                let reply = try await redis.command([Array("MGET".utf8)] + pending.map(key))
                let now = clock.now
                guard case .array(let values) = reply else { throw BenchError("MGET answered \(reply)") }
                seen.withLock { seen in
                    for (i, value) in zip(pending, values) where value != .null { seen[i] = now }
                }
                while next < upTo, seen.withLock({ $0[next] }) != nil { next += 1 }
            }
        }
        let interval = Duration.seconds(1) / rate
        let start = clock.now
        var sends: [Task<Void, any Error>] = []
        for i in 0..<total {
            let due = start + interval * i
            if due > clock.now { try await Task.sleep(until: due) }
            let r = record(i)
            sent.withLock { $0[i] = clock.now }
            sends.append(Task { try await producer.send([r]) })
            produced.store(i + 1, ordering: .releasing)
        }
        for send in sends { try await send.value }
        let achieved = Double(total) / (clock.now - start).seconds
        try await watcher.value
        consumer.withLock { $0?.triggerShutdown() }
        _ = try? await daemon.value
        await producer.close()

        let s = sent.withLock { $0 }
        let w = seen.withLock { $0 }
        let latencies = zip(s, w).compactMap { a, b -> Double? in
            guard let a, let b else { return nil }
            return max(0, (b - a).seconds * 1000)
        }.sorted()
        guard latencies.count == total else { throw BenchError("\(total - latencies.count) events never reached Redis") }
        func percentile(_ p: Double) -> Double { Percentile.of(latencies, p) }
        print(
            #"{"rate":\#(rate),"achieved_rate":\#(String(format: "%.1f", achieved)),"events":\#(total),"#
                + #""p50_ms":\#(String(format: "%.2f", percentile(0.5))),"p99_ms":\#(String(format: "%.2f", percentile(0.99))),"#
                + #""max_ms":\#(String(format: "%.2f", latencies.last!))}"#)
    }
}
