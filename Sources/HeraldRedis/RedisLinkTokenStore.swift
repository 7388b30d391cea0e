import Foundation
import HeraldCore

/// The one-time link tokens the auth API redeems, in the keys of its contract (docs/integration.md),
/// each under the SHA-256 of the token (lower-case hex), never the token itself:
///
/// - `reset_password_token:{hash}` = user id
/// - `email_verification_token:{hash}` = user id
/// - `email_change_token:{hash}` = `{"user_id": …, "new_email": …}`
///
/// Each with the link's lifetime as its time to live (`SET … PX`).
public struct RedisLinkTokenStore: LinkTokenStore {
    let client: RedisClient

    public init(client: RedisClient) {
        self.client = client
    }

    /// The key a token hash is stored under for `purpose`.
    public static func key(_ purpose: LinkPurpose, tokenHash: String) -> String {
        switch purpose {
        case .resetPassword: "reset_password_token:" + tokenHash
        case .verifyEmail: "email_verification_token:" + tokenHash
        case .confirmEmailChange: "email_change_token:" + tokenHash
        }
    }

    /// The value the API reads for `grant`.
    public static func value(_ grant: LinkGrant) -> String {
        switch grant {
        case .resetPassword(let user), .verifyEmail(let user):
            return user.rawValue
        case .confirmEmailChange(let user, let newEmail):
            let object = ["user_id": user.rawValue, "new_email": newEmail.rawValue]
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
            return String(decoding: data, as: UTF8.self)
        }
    }

    public func store(_ grant: LinkGrant, tokenHash: String, ttl: Duration) async throws {
        let milliseconds = max(1, ttl.wholeMilliseconds)
        let reply = try await client.command([
            "SET", Self.key(grant.purpose, tokenHash: tokenHash), Self.value(grant), "PX", String(milliseconds),
        ])
        guard reply == .status("OK") else {
            throw RedisError.make(.unexpectedReply, "SET of a link token was not answered with OK")
        }
    }

    public func remove(_ purpose: LinkPurpose, tokenHash: String) async throws {
        _ = try await client.command(["DEL", Self.key(purpose, tokenHash: tokenHash)])
    }
}
