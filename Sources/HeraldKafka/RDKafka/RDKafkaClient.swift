import CRdKafka
import Synchronization

/// One librdkafka client (`rd_kafka_t`), consumer or producer, with the context its callbacks
/// reach. Every `rd_kafka_*` call on a client goes through this type and its extensions
/// (`+Consumer`, `+Producer`, `+Metadata`).
///
/// Who calls what: most methods are made by the thread that owns the client (a consumer's
/// poll thread, the producer's poll thread, the inspector's queue), which also destroys it,
/// so none of them can follow `destroy()`. The few that other threads make
/// (`storeOffset`, `produce`) go through `withOpenHandle`: `destroy()` closes that gate
/// before it destroys the handle, so such a call made too late does nothing instead of
/// reaching freed memory.
final class RDKafkaClient: Sendable {
    enum Kind {
        case consumer, producer
    }

    /// The handle. Valid until `destroy()`; see the type's comment for who may use it when.
    nonisolated(unsafe) let handle: OpaquePointer
    /// Must outlive the handle: librdkafka's threads call back into it until destroyed.
    let context: RDKafkaClientContext
    /// True until `destroy()`; held while another thread's call uses the handle.
    private let open = Mutex<Bool>(true)

    /// - Parameter secretKeys: properties whose values must never appear in an error.
    init(
        _ kind: Kind, properties: [(String, String)], secretKeys: Set<String>, context: RDKafkaClientContext
    ) throws(KafkaError) {
        let conf = try RDKafkaConfiguration.make(properties, secretKeys: secretKeys, context: context)
        var errstr = [CChar](repeating: 0, count: 512)
        // rd_kafka_new takes ownership of conf on success only.
        guard let rk = rd_kafka_new(kind == .consumer ? RD_KAFKA_CONSUMER : RD_KAFKA_PRODUCER, conf, &errstr, errstr.count) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaError.configuration(cString(errstr))
        }
        self.handle = rk
        self.context = context
        if kind == .consumer {
            // Serve the main queue (logs, errors) from the consumer queue that is polled.
            rd_kafka_poll_set_consumer(rk)
        }
    }

    deinit {
        destroy()
    }

    /// Runs `body` with the handle unless the client was destroyed (then returns nil). Other
    /// threads' calls go through here; `destroy()` waits for one in progress.
    func withOpenHandle<R>(_ body: (OpaquePointer) -> R) -> R? {
        open.withLock { isOpen in isOpen ? body(handle) : nil }
    }

    var isDestroyed: Bool { open.withLock { !$0 } }

    /// Destroys the client, once: rd_kafka_destroy blocks until librdkafka's threads have
    /// ended (and closes a consumer that was not closed). Every queue taken from the client
    /// must be released before.
    func destroy() {
        let wasOpen = open.withLock { isOpen in
            defer { isOpen = false }
            return isOpen
        }
        if wasOpen { rd_kafka_destroy(handle) }
    }

    /// The fatal error librdkafka raised, if any (an idempotence guarantee broken): the
    /// client can never work again. Thread-safe and non-blocking.
    func fatalError() -> KafkaError? {
        var errstr = [CChar](repeating: 0, count: 512)
        let code = rd_kafka_fatal_error(handle, &errstr, errstr.count)
        guard code != RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        return KafkaError.rdKafka(code, message: cString(errstr), fatal: true)
    }
}
