import Dispatch
import HeraldCore
import Logging
import Synchronization

/// Samples the lag of the consumer's assigned partitions every `interval` and reports it to a
/// `ConsumerObserver`. It reads Kafka through its own `KafkaInspector` (a separate client that
/// never joins the group and never commits), so its figures are the group's committed
/// position, the same ones `herald lag` shows, and they stay true while the consumer is stuck
/// on a record or nothing is produced. Its blocking librdkafka calls run on the inspector's
/// own queue, never on Swift's cooperative pool.
public final class KafkaLagMonitor: Sendable {
    private let consumer: KafkaEventConsumer
    private let inspector: KafkaInspector
    private let interval: Duration
    private let observer: any ConsumerObserver
    private let logger: Logger
    private let lastSample = Atomic<UInt64>(DispatchTime.now().uptimeNanoseconds)

    public init(
        consumer: KafkaEventConsumer, inspector: KafkaInspector, interval: Duration, observer: any ConsumerObserver,
        logger: Logger
    ) {
        self.consumer = consumer
        self.inspector = inspector
        self.interval = interval
        self.observer = observer
        self.logger = logger
    }

    /// How long ago a sampling round last ended, successful or not.
    public var sampleAge: Duration {
        let now = DispatchTime.now().uptimeNanoseconds
        let last = lastSample.load(ordering: .relaxed)
        return .nanoseconds(Int64(now > last ? now - last : 0))
    }

    /// Samples until the task is cancelled.
    public func run() async {
        var failing = false
        while !Task.isCancelled {
            let partitions = consumer.assignment.sorted { ($0.topic, $0.partition) < ($1.topic, $1.partition) }
            do {
                let lags = try await inspector.lag(partitions.map { ($0.topic, $0.partition) })
                observer.lagSampled(lags)
                if failing { logger.notice("consumer lag can be read again") }
                failing = false
            } catch is CancellationError {
                return
            } catch {
                if !failing {
                    logger.warning("cannot read consumer lag; the lag metrics keep their last values", metadata: ["error": "\(error)"])
                }
                failing = true
            }
            lastSample.store(DispatchTime.now().uptimeNanoseconds, ordering: .relaxed)
            try? await Task.sleep(for: interval)
        }
    }

    /// Destroys the inspector's client once sampling has stopped, so it neither keeps
    /// connections to the brokers nor logs about them going away (the embedded broker stops
    /// after the sampler).
    public func close() async {
        await inspector.close()
    }
}
