/// Turns a record into a decision: apply these effects, acknowledge without effect, or
/// reject to the dead-letter topic. Never throws and never performs I/O.
public struct EventDispatcher: Sendable {
    public enum Decision: Sendable {
        case accept(AcceptedEvent)
        case reject(Rejection, metadata: EventMetadata?)
    }

    public let decoder: EnvelopeDecoder
    public let catalog: EventCatalog
    public let ignoredTypes: Set<EventType>
    /// Every handler registered for a type decides; their effects are applied together.
    private let handlers: [EventType: [any EventHandler]]

    public init(
        decoder: EnvelopeDecoder = EnvelopeDecoder(), catalog: EventCatalog = .standard,
        handlers: [any EventHandler], ignoredTypes: Set<EventType> = []
    ) {
        self.decoder = decoder
        self.catalog = catalog
        self.ignoredTypes = ignoredTypes
        var byType: [EventType: [any EventHandler]] = [:]
        for handler in handlers {
            for type in handler.handledTypes { byType[type, default: []].append(handler) }
        }
        self.handlers = byType
    }

    /// The event types that have a handler.
    public var handledTypes: Set<EventType> { Set(handlers.keys) }

    public func decide(_ message: InboundMessage) -> Decision {
        let envelope: Envelope
        do {
            envelope = try decoder.decode(message)
        } catch {
            return .reject(error, metadata: nil)
        }
        let metadata = envelope.metadata
        do throws(Rejection) {
            // Known types are validated even when ignored, so a malformed event is reported
            // rather than silently acknowledged.
            let event = try catalog.decode(envelope)
            if let registered = handlers[metadata.type] {
                guard let event else {
                    throw Rejection(.unknownEventType, "handler registered for \(metadata.type) but no schema")
                }
                var effects: [Effect] = []
                for handler in registered {
                    effects += try handler.decide(event, metadata: metadata)
                }
                return .accept(AcceptedEvent(metadata: metadata, event: event, effects: effects))
            }
            if ignoredTypes.contains(metadata.type) {
                return .accept(AcceptedEvent(metadata: metadata, event: event, effects: []))
            }
            throw Rejection(.unknownEventType, "no handler for event type \(metadata.type) on topic \(metadata.topic)")
        } catch {
            return .reject(error, metadata: metadata)
        }
    }
}
