import HeraldCore
import HeraldSMTP
import Testing

/// XOAUTH2's pure parts: the token endpoint's answers read, when a token is renewed, which
/// token URLs are allowed, and how the failures are classified. No server.
@Suite("OAuth2 for SMTP: token answers, refresh margin, token URLs")
struct OAuth2Tests {
    private func answer(_ status: Int, _ body: String) -> Result<OAuth2Token, MailError> {
        OAuth2TokenResponse.token(status: status, body: Array(body.utf8))
    }

    @Test("a 2xx answer gives the token and its lifetime (a number or, as Microsoft's v1 sends it, a string)")
    func success() throws {
        let token = try answer(200, #"{"access_token":"eyJ0eXAi.abc-_~+/=","token_type":"Bearer","expires_in":3599}"#).get()
        #expect(token.value.value == "eyJ0eXAi.abc-_~+/=" && token.lifetime == .seconds(3599))
        #expect(!"\(token)".contains("eyJ0"))
        #expect(try answer(200, #"{"access_token":"t","token_type":"bearer","expires_in":"120"}"#).get().lifetime == .seconds(120))
        // No expires_in: a short default.
        #expect(try answer(200, #"{"access_token":"t"}"#).get().lifetime == OAuth2TokenResponse.defaultLifetime)
    }

    @Test(
        "a 2xx answer without a usable bearer token is unavailable",
        arguments: [
            "not json", "[]", #"{"token_type":"Bearer"}"#, #"{"access_token":""}"#, #"{"access_token":"a b"}"#,
            #"{"access_token":"a\u0001b"}"#, #"{"access_token":"t","token_type":"mac"}"#, #"{"access_token":"t","expires_in":0}"#,
            #"{"access_token":"t","expires_in":0.5}"#,
            #"{"access_token":"t","expires_in":"soon"}"#, #"{"access_token":42}"#,
        ])
    func unusable(_ body: String) {
        guard case .failure(let error) = answer(200, body) else {
            Issue.record("accepted \(body)")
            return
        }
        #expect(error.code == .tokenUnavailable && error.isTransient)
        #expect(error.deliveryFailure == .unavailable(reason: error.description))
    }

    @Test("a 4xx refuses the client (a configuration problem); a 5xx, 408 and 429 are an outage; neither fails the mail")
    func failures() throws {
        let body = #"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}"#
        guard case .failure(let refused) = answer(401, body) else { throw Unexpected() }
        #expect(refused.code == .tokenRefused && refused.isTransient)
        #expect(refused.description == "SMTP OAuth2 token refused: the token endpoint answered HTTP 401 invalid_client")
        #expect(refused.serverReply == "AADSTS7000215: Invalid client secret provided.")
        guard case .unavailable(let reason) = refused.deliveryFailure else { throw Unexpected() }
        #expect(reason.contains("invalid_client") && reason.contains("AADSTS7000215"))
        for status in [500, 503, 408, 429, 302] {
            guard case .failure(let error) = answer(status, "<html>oops</html>") else { throw Unexpected() }
            #expect(error.code == .tokenUnavailable, "\(status)")
            #expect(MailTestOutcome(error.deliveryFailure) == .unavailable)
        }
    }

    @Test("a token is renewed a tenth of its lifetime or a minute before it expires, at most half its lifetime before")
    func refreshMargin() {
        #expect(OAuth2TokenCache.refreshMargin(.seconds(3600)) == .seconds(360))
        #expect(OAuth2TokenCache.refreshMargin(.seconds(300)) == .seconds(60))
        #expect(OAuth2TokenCache.refreshMargin(.seconds(6)) == .seconds(3))
    }

    @Test("the token URL is https, or http only to a loopback address")
    func tokenURLs() {
        let secret = Secret("s3cret")
        for url in [
            "https://login.microsoftonline.com/tenant/oauth2/v2.0/token",
            "https://kc.example.com:8443/realms/x/protocol/openid-connect/token",
            "http://127.0.0.1:8080/token", "http://localhost/token", "http://[::1]:9000/token", "HTTPS://oauth2.googleapis.com/token",
        ] {
            #expect((try? OAuth2ClientCredentials(tokenURL: url, clientID: "herald", clientSecret: secret)) != nil, "\(url)")
        }
        for url in [
            "http://kc.example.com/token", "http://127.0.0.1.example.com/token", "http://10.0.0.1/token", "ftp://127.0.0.1/token",
            "https://user:pw@kc.example.com/token", "https:///token", "https://kc.example.com/to ken", "token",
        ] {
            #expect(throws: ValidationError.self, "\(url)") {
                try OAuth2ClientCredentials(tokenURL: url, clientID: "herald", clientSecret: secret)
            }
        }
        let client = try? OAuth2ClientCredentials(tokenURL: "https://kc.example.com/t", clientID: "herald", clientSecret: secret)
        #expect(client.map { "\($0)" } == "client herald at https://kc.example.com/t")
        #expect(!"\(SMTPAuthentication.xoauth2(.clientCredentials(client!)))".contains("s3cret"))
    }

    struct Unexpected: Error {}
}
