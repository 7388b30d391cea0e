/// A bad or missing setting. The message names the setting and never repeats a secret.
/// Helpers throw it; only a command's entry point turns it into exit code 78 (EX_CONFIG).
public struct ConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
    public let setting: String
    public let problem: String

    public init(setting: String, problem: String) {
        self.setting = setting
        self.problem = problem
    }

    public var description: String { "\(setting): \(problem)" }
}
