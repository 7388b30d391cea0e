import CFuzzerDriver
import HeraldFuzzing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One input from libFuzzer (LLVMFuzzerTestOneInput): an invariant broken is a crash.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    do {
        try HeraldFuzzer.harness.run(bytes)
    } catch {
        HeraldFuzzer.printError("herald-fuzz \(HeraldFuzzer.harness.target.rawValue): \(error)")
        abort()
    }
    return 0
}

/// `herald-fuzz`: the fuzz targets of `HeraldFuzzing` behind one binary.
///
/// The target comes from `HERALD_FUZZ_TARGET` (an environment variable, so it survives
/// libFuzzer re-running the binary for `-merge`, `-fork` or `-minimize_crash`); the mail
/// target reads the templates from `HERALD_TEMPLATES_DIR` (default `Templates`).
///
/// Built by `make fuzz` (`-sanitize=fuzzer,address`, `-DHERALD_LIBFUZZER`), the arguments are
/// libFuzzer's: `HERALD_FUZZ_TARGET=envelope herald-fuzz -max_total_time=60 CORPUS_DIR…`. An
/// input that breaks an invariant aborts, which libFuzzer reports as a crash. Built plainly
/// (`swift build`), it replays the files and directories given and exits 1 at the first
/// input that crashes or breaks an invariant, printing how far each input went:
/// `herald-fuzz crash-…` reproduces a finding without the sanitizers.
@main
enum HeraldFuzzer {
    nonisolated(unsafe) static var harness: FuzzHarness!

    static func main() {
        let name = getenv("HERALD_FUZZ_TARGET").map { String(cString: $0) } ?? ""
        guard let target = FuzzTarget(rawValue: name) else {
            let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
            printError("herald-fuzz: set HERALD_FUZZ_TARGET to one of \(names)\n")
            exit(2)
        }
        let templates = getenv("HERALD_TEMPLATES_DIR").map { String(cString: $0) } ?? "Templates"
        do {
            harness = try FuzzHarness(target, templatesDirectory: templates)
        } catch {
            printError("herald-fuzz: \(error)\n")
            exit(2)
        }
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        let result = herald_fuzz_run_driver(&argc, &argv) { data, size in
            fuzzOne(data, size)
        }
        if result >= 0 { exit(result) }
        exit(replay(Array(CommandLine.arguments.dropFirst())))
    }

    /// Without libFuzzer: every file given, and every file in every directory given.
    static func replay(_ paths: [String]) -> CInt {
        var files: [String] = []
        for path in paths {
            if let directory = opendir(path) {
                while let entry = readdir(directory) {
                    let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                    if !name.hasPrefix(".") { files.append(path + "/" + name) }
                }
                closedir(directory)
            } else {
                files.append(path)
            }
        }
        for file in files.sorted() {
            guard let bytes = read(file) else {
                printError("herald-fuzz: cannot read \(file)\n")
                return 2
            }
            do {
                print("\(file): \(try harness.run(bytes))")
            } catch {
                printError("herald-fuzz \(harness.target.rawValue): \(file): \(error)\n")
                return 1
            }
        }
        print("herald-fuzz \(harness.target.rawValue): \(files.count) inputs, no invariant broken")
        return 0
    }

    /// A line on standard error.
    static func printError(_ text: String) {
        var line = Array(text.utf8)
        if line.last == UInt8(ascii: "\n") { line.removeLast() }
        line.append(UInt8(ascii: "\n"))
        _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    }

    static func read(_ path: String) -> [UInt8]? {
        guard let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            bytes += buffer[..<count]
            if count < buffer.count { return ferror(file) == 0 ? bytes : nil }
        }
    }
}
