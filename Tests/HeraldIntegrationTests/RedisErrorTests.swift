import HeraldRedis
import Testing

@Suite("RedisError classification")
struct RedisErrorTests {
    @Test(
        "replies of a server that cannot serve now are transient",
        arguments: [
            "LOADING Redis is loading the dataset in memory", "BUSY Redis is busy running a script",
            "TRYAGAIN Multiple keys request during rehashing of slot", "MASTERDOWN Link with MASTER is down",
            "READONLY You can't write against a read only replica.", "CLUSTERDOWN The cluster is down",
            "MISCONF Redis is configured to save RDB snapshots", "OOM command not allowed when used memory > 'maxmemory'.",
            "NOREPLICAS Not enough good replicas to write.",
        ])
    func serverUnavailable(message: String) {
        let error = RedisReply.error(message)
        #expect(throws: RedisError.self) { try error.throwingError() }
        let thrown = try? #require(throws: RedisError.self) { try error.throwingError() }
        #expect(thrown?.code == .serverUnavailable)
        #expect(thrown?.isTransient == true)
    }

    @Test(
        "authentication and cluster redirections are transient configuration errors",
        arguments: [
            ("NOAUTH Authentication required.", RedisError.Code.authenticationFailed),
            ("WRONGPASS invalid username-password pair or user is disabled.", .authenticationFailed),
            ("NOPERM this user has no permissions to run the 'evalsha' command", .authenticationFailed),
            ("MOVED 3999 127.0.0.1:6381", .misconfigured), ("ASK 3999 127.0.0.1:6381", .misconfigured),
        ])
    func configuration(message: String, code: RedisError.Code) {
        let thrown = try? #require(throws: RedisError.self) { try RedisReply.error(message).throwingError() }
        #expect(thrown?.code == code)
        #expect(thrown?.isTransient == true)
    }

    @Test(
        "command refusals are transient: Herald's arguments are validated, so a refusal is the server's state, never an event's fault",
        arguments: [
            "ERR upstream unavailable", "ERR max number of clients reached",
            "WRONGTYPE Operation against a key holding the wrong kind of value",
            "ERR user_script:1: Script attempted to access nonexistent global variable 'x' script: 1234, on @user_script:1.",
            "NOSCRIPT No matching script. Please use EVAL.", "ERR value is not an integer or out of range",
            "unexpected lower-case message",
        ])
    func refusals(message: String) {
        let thrown = try? #require(throws: RedisError.self) { try RedisReply.error(message).throwingError() }
        #expect(thrown?.code == .commandFailed)
        #expect(thrown?.isTransient == true)
        #expect(thrown.map { !$0.description.contains(message) } == true)
    }

    @Test("a reply that is not an error passes through")
    func notAnError() throws {
        #expect(try RedisReply.integer(1).throwingError() == .integer(1))
    }
}
