import CHiredis
import HeraldCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One blocking hiredis connection (`redisContext`). Every method blocks the calling thread
/// on the network, so a `RedisConnection` lives on, and is only used from, the dedicated
/// thread of a `RedisConnectionThread`; it is deliberately not `Sendable`.
///
/// After any I/O or protocol error hiredis cannot use the context again: the owner discards
/// the connection (see `isReusable`) and opens a new one.
final class RedisConnection {
    /// Where to connect and how long to wait.
    struct Settings: Sendable {
        var endpoint: RedisEndpoint
        var connectTimeout: Duration
        var commandTimeout: Duration
    }

    private let context: UnsafeMutablePointer<redisContext>

    private init(context: UnsafeMutablePointer<redisContext>) {
        self.context = context
    }

    deinit {
        redisFree(context)
    }

    /// Connects, sets the command timeout, then authenticates and selects the database in
    /// one round trip.
    static func open(_ settings: Settings) throws(RedisError) -> RedisConnection {
        let connectTimeout = timeval(settings.connectTimeout)
        let pointer: UnsafeMutablePointer<redisContext>?
        // Blocking: `redisConnectWithTimeout`/`redisConnectUnixWithTimeout` wait up to the
        // connect timeout in connect(2).
        switch settings.endpoint.address {
        case .tcp(let host, let port):
            pointer = redisConnectWithTimeout(host, Int32(clamping: port), connectTimeout)
        case .unix(let path):
            pointer = redisConnectUnixWithTimeout(path, connectTimeout)
        }
        guard let pointer else { throw RedisError.make(.outOfMemory, "cannot allocate a hiredis context") }
        let connection = RedisConnection(context: pointer)
        if pointer.pointee.err != 0 { throw connection.contextError(connecting: true) }
        if redisSetTimeout(pointer, timeval(settings.commandTimeout)) != REDIS_OK {
            throw connection.contextError(connecting: true)
        }
        try connection.authenticateAndSelect(settings.endpoint)
        return connection
    }

    /// Sends `commands` in one write and reads one reply per command. Error replies are
    /// returned in place; a thrown error means the connection is broken.
    func pipeline(_ commands: [[[UInt8]]]) throws(RedisError) -> [RedisReply] {
        for command in commands {
            try append(command)
        }
        var replies: [RedisReply] = []
        replies.reserveCapacity(commands.count)
        for _ in commands {
            replies.append(try readReply())
        }
        return replies
    }

    /// False when the connection must not be used again: hiredis recorded an error, or the
    /// socket is readable while no request is outstanding, which means the server closed it
    /// (restart, `timeout`, `CLIENT KILL`) or sent something out of turn.
    var isReusable: Bool {
        guard context.pointee.err == 0 else { return false }
        var descriptor = pollfd(fd: context.pointee.fd, events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, 0) == 0
    }

    // MARK: - Private

    private func authenticateAndSelect(_ endpoint: RedisEndpoint) throws(RedisError) {
        var names: [String] = []
        var commands: [[[UInt8]]] = []
        if let password = endpoint.password {
            var auth = [Array("AUTH".utf8)]
            if let username = endpoint.username { auth.append(Array(username.utf8)) }
            auth.append(Array(password.value.utf8))
            names.append("AUTH")
            commands.append(auth)
        }
        if endpoint.database != 0 {
            names.append("SELECT")
            commands.append([Array("SELECT".utf8), Array(String(endpoint.database).utf8)])
        }
        if commands.isEmpty { return }
        for (name, reply) in zip(names, try pipeline(commands)) {
            if case .error(let message) = reply { throw RedisError.setupReply(message, command: name) }
        }
    }

    /// Appends one command to hiredis's output buffer with explicit argument lengths
    /// (binary-safe: no format string ever sees an argument).
    private func append(_ arguments: [[UInt8]]) throws(RedisError) {
        guard !arguments.isEmpty, arguments.count <= Int(Int32.max) else {
            throw RedisError.make(.invalidCommand, "a command needs at least one argument")
        }
        var flat: [UInt8] = []
        flat.reserveCapacity(arguments.reduce(1) { $0 + $1.count })
        var offsets: [Int] = []
        var lengths: [Int] = []
        offsets.reserveCapacity(arguments.count)
        lengths.reserveCapacity(arguments.count)
        for argument in arguments {
            offsets.append(flat.count)
            lengths.append(argument.count)
            flat.append(contentsOf: argument)
        }
        // Keeps every pointer inside the buffer, even for empty arguments.
        flat.append(0)
        let status = flat.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { characters in
                var argv: [UnsafePointer<CChar>?] = offsets.map { UnsafePointer(characters.baseAddress! + $0) }
                return redisAppendCommandArgv(context, Int32(arguments.count), &argv, lengths)
            }
        }
        if status != REDIS_OK { throw contextError(connecting: false) }
    }

    /// Reads one reply, flushing the output buffer first when it holds unsent commands.
    private func readReply() throws(RedisError) -> RedisReply {
        var raw: UnsafeMutableRawPointer?
        // Blocking: `redisGetReply` writes pending commands and waits up to the command
        // timeout for the reply.
        let status = redisGetReply(context, &raw)
        guard status == REDIS_OK, let raw else { throw contextError(connecting: false) }
        defer { freeReplyObject(raw) }
        return RedisReply(hiredis: UnsafePointer(raw.assumingMemoryBound(to: redisReply.self)))
    }

    /// Turns the error hiredis recorded on the context into a `RedisError`. Call it right
    /// after the failing call: it reads `errno` to tell a timeout from other I/O errors.
    private func contextError(connecting: Bool) -> RedisError {
        let savedErrno = errno
        let message = errorString
        let lost: RedisError.Code = connecting ? .connectionFailed : .connectionLost
        switch context.pointee.err {
        case REDIS_ERR_EOF:
            return .make(lost, "the server closed the connection")
        case REDIS_ERR_IO where !connecting && (savedErrno == EAGAIN || savedErrno == EWOULDBLOCK):
            return .make(.timeout, "no reply within the command timeout")
        case REDIS_ERR_PROTOCOL:
            return .make(.protocolError, message)
        case REDIS_ERR_OOM:
            return .make(.outOfMemory, message)
        case 0:
            return .make(lost, "hiredis failed without an error code")
        default:
            return .make(lost, message)
        }
    }

    /// `context->errstr`: a fixed hiredis message or `strerror(errno)`, never an argument.
    private var errorString: String {
        withUnsafeBytes(of: context.pointee.errstr) { bytes in
            String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}

extension timeval {
    /// A `timeval` for a timeout, at least one millisecond (zero would mean "no timeout").
    init(_ duration: Duration) {
        let microseconds = max(duration, .milliseconds(1)).wholeMicroseconds
        self.init(tv_sec: Int(microseconds / 1_000_000), tv_usec: Int(microseconds % 1_000_000))
    }
}
