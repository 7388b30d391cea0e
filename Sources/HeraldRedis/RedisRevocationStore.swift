import HeraldCore
import Logging
import Synchronization

/// Keeps the forward-only revocation timestamps the auth API checks tokens against:
/// `invalid_role: {role}` (note the space) and `revoked_user: {user_id}`, each holding epoch
/// seconds as a decimal string with a time to live.
///
/// Each mark is applied by `RevocationScript` (compare and set in one atomic step), all marks
/// of one `advance` call in one pipelined round trip with `EVALSHA`. The script's SHA-1 is
/// learnt from `SCRIPT LOAD` on the first call; when Redis has forgotten the script
/// (restart, `SCRIPT FLUSH`) the marks that got `NOSCRIPT` are sent again with `EVAL`, which
/// also caches the script again. A mark whose timestamp is not newer leaves the key and its
/// time to live as they are: the key already outlives the newer timestamp by the full TTL.
public final class RedisRevocationStore: RevocationStore {
    public static let roleKeyPrefix = "invalid_role: "
    public static let userKeyPrefix = "revoked_user: "

    private let client: RedisClient
    private let roleTTLSeconds: Int64
    private let userTTLSeconds: Int64
    private let logger: Logger
    /// The script's SHA-1 as Redis reported it; nil until the first call.
    private let scriptSHA = Mutex<[UInt8]?>(nil)

    /// - Parameters:
    ///   - roleInvalidationTTL: lifetime of `invalid_role:` keys, rounded up to whole seconds.
    ///   - userRevocationTTL: lifetime of `revoked_user:` keys, rounded up to whole seconds.
    public init(client: RedisClient, roleInvalidationTTL: Duration, userRevocationTTL: Duration, logger: Logger) {
        self.client = client
        self.roleTTLSeconds = Self.wholeSeconds(roleInvalidationTTL)
        self.userTTLSeconds = Self.wholeSeconds(userRevocationTTL)
        self.logger = logger
    }

    /// A store with the TTLs of `HERALD_ROLE_INVALIDATION_TTL` and `HERALD_USER_REVOCATION_TTL`.
    public convenience init(client: RedisClient, settings: RedisSettings, logger: Logger) {
        self.init(
            client: client, roleInvalidationTTL: settings.roleInvalidationTTL, userRevocationTTL: settings.userRevocationTTL,
            logger: logger)
    }

    /// The Redis key of a mark's subject, as the auth API reads it.
    public static func key(for subject: RevocationMark.Subject) -> [UInt8] {
        switch subject {
        case .role(let role): Array((roleKeyPrefix + role.rawValue).utf8)
        case .user(let user): Array((userKeyPrefix + user.rawValue).utf8)
        }
    }

    /// Raises each mark in one round trip (two when Redis lost the script).
    /// - Throws: `RedisError`; transient when any mark failed for a transient reason (the
    ///   whole call is then safe to repeat), permanent otherwise.
    public func advance(_ marks: [RevocationMark]) async throws {
        if marks.isEmpty { return }
        var replies: [RedisReply]
        if let sha = scriptSHA.withLock({ $0 }) {
            replies = try await client.pipeline(marks.map { evalSHA(sha, $0) })
            try await resendForgotten(marks, replies: &replies)
        } else {
            replies = try await loadAndEvaluate(marks)
        }
        try check(replies)
    }

    // MARK: - Commands

    /// First call: `SCRIPT LOAD` to learn the SHA-1, and `EVAL` for the marks, together.
    /// When `SCRIPT LOAD` fails the marks still count; the next call tries again.
    private func loadAndEvaluate(_ marks: [RevocationMark]) async throws -> [RedisReply] {
        let load: [[UInt8]] = [Array("SCRIPT".utf8), Array("LOAD".utf8), RevocationScript.sourceBytes]
        var replies = try await client.pipeline([load] + marks.map(eval))
        if case .bytes(let sha) = replies.removeFirst() {
            scriptSHA.withLock { $0 = sha }
        } else {
            logger.notice(
                "SCRIPT LOAD failed; revocation marks are sent with EVAL", metadata: [RedisLogKey.endpoint: "\(client.endpoint)"])
        }
        return replies
    }

    /// Sends the marks whose `EVALSHA` got `NOSCRIPT` again with `EVAL`.
    private func resendForgotten(_ marks: [RevocationMark], replies: inout [RedisReply]) async throws {
        let forgotten = replies.indices.filter { replies[$0].errorMessage.map(RedisError.serverCode(of:)) == "NOSCRIPT" }
        if forgotten.isEmpty { return }
        logger.notice(
            "Redis lost the revocation script (restart or SCRIPT FLUSH); sending it again",
            metadata: [RedisLogKey.endpoint: "\(client.endpoint)"])
        let resent = try await client.pipeline(forgotten.map { eval(marks[$0]) })
        for (index, reply) in zip(forgotten, resent) {
            replies[index] = reply
        }
    }

    private func evalSHA(_ sha: [UInt8], _ mark: RevocationMark) -> [[UInt8]] {
        [Array("EVALSHA".utf8), sha] + scriptArguments(mark)
    }

    private func eval(_ mark: RevocationMark) -> [[UInt8]] {
        [Array("EVAL".utf8), RevocationScript.sourceBytes] + scriptArguments(mark)
    }

    /// `numkeys key timestamp ttl`.
    private func scriptArguments(_ mark: RevocationMark) -> [[UInt8]] {
        let ttl: Int64
        switch mark.subject {
        case .role: ttl = roleTTLSeconds
        case .user: ttl = userTTLSeconds
        }
        return [Array("1".utf8), Self.key(for: mark.subject), Array(String(mark.asOf).utf8), Array(String(ttl).utf8)]
    }

    // MARK: - Replies

    /// Throws when a mark was not applied: the first transient error if any (so that the
    /// whole batch is retried rather than dead-lettered), else the first permanent one.
    private func check(_ replies: [RedisReply]) throws {
        var errors: [RedisError] = []
        var advanced = 0
        for reply in replies {
            switch reply {
            case .integer(1): advanced += 1
            case .integer(0): break
            case .error(let message): errors.append(RedisError.reply(message))
            default: errors.append(RedisError.make(.unexpectedReply, "the revocation script returned neither 0 nor 1"))
            }
        }
        if let error = errors.first(where: \.isTransient) ?? errors.first {
            logger.debug("revocation marks failed", metadata: [RedisLogKey.error: "\(error)"])
            throw error
        }
        logger.debug(
            "revocation marks applied",
            metadata: [RedisLogKey.advanced: "\(advanced)", RedisLogKey.unchanged: "\(replies.count - advanced)"])
    }

    private static func wholeSeconds(_ duration: Duration) -> Int64 {
        max(1, duration.secondsRoundedUp)
    }
}
