import CLibpq

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A `NOTIFY` received on a connection that `LISTEN`s.
public struct PostgresNotification: Sendable, Hashable {
    public let channel: String
    public let payload: String
    /// The server process that sent it.
    public let senderPID: Int32
}

extension PostgresConnection {
    /// True inside a transaction block (also one whose statement failed).
    var transactionIsOpen: Bool {
        let status = PQtransactionStatus(connection)
        return status == PQTRANS_INTRANS || status == PQTRANS_INERROR
    }

    /// True when a statement of the open transaction failed: it can only be rolled back.
    var transactionFailed: Bool {
        PQtransactionStatus(connection) == PQTRANS_INERROR
    }

    /// `LISTEN "channel"`; `channel` must be an identifier the caller validated.
    func listen(_ channel: String) throws {
        try execute("LISTEN \"\(channel)\"")
    }

    /// Waits until a notification arrives, `interrupt` becomes readable, or `timeout` passes,
    /// and returns the notifications received (possibly none). Blocks the calling thread in
    /// `poll(2)` on the connection's socket: call it only from a dedicated thread.
    ///
    /// - Throws: `PostgresError` `.connectionLost` when the connection broke (it is then
    ///   marked broken).
    func waitForNotifications(timeout: Duration, interrupt: Int32) throws(PostgresError) -> [PostgresNotification] {
        var received = takeNotifications()
        if !received.isEmpty { return received }
        let socket = PQsocket(connection)
        guard socket >= 0, PQstatus(connection) == CONNECTION_OK else {
            discard()
            throw .make(.connectionLost, "the listening connection has no socket", sqlState: "08006")
        }
        var descriptors = [
            pollfd(fd: socket, events: Int16(POLLIN), revents: 0),
            pollfd(fd: interrupt, events: Int16(POLLIN), revents: 0),
        ]
        let milliseconds = Int32(clamping: max(0, timeout.wholeMilliseconds))
        // Blocking: poll(2) waits for the server or the interrupt pipe, at most `timeout`.
        let ready = poll(&descriptors, nfds_t(descriptors.count), milliseconds)
        if ready < 0 {
            if errno == EINTR { return [] }
            discard()
            throw .make(.connectionLost, "poll failed on the listening connection", sqlState: "08006")
        }
        if descriptors[0].revents != 0 {
            // Reads what arrived without blocking; 0 means the connection is gone.
            if PQconsumeInput(connection) == 0 || PQstatus(connection) != CONNECTION_OK {
                discard()
                let message = PostgresError.cleaned(String(cString: PQerrorMessage(connection)), redacting: [])
                throw .make(.connectionLost, message.isEmpty ? "the listening connection broke" : message, sqlState: "08006")
            }
            received = takeNotifications()
        }
        return received
    }

    private func takeNotifications() -> [PostgresNotification] {
        var received: [PostgresNotification] = []
        while let notify = PQnotifies(connection) {
            received.append(
                PostgresNotification(
                    channel: String(cString: notify.pointee.relname), payload: String(cString: notify.pointee.extra),
                    senderPID: notify.pointee.be_pid))
            PQfreemem(notify)
        }
        return received
    }
}
