import ArgumentParser
import Foundation
import Lab

@main
struct NASLabCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "naslab",
        abstract: "Neural architecture search: declarative spaces, seeded searchers, HDF5 experiment records.",
        version: NASLabVersion.current,
        subcommands: [
            SearchCommand.self, ResumeCommand.self, ReproduceCommand.self, AnalyzeCommand.self, ExportCommand.self,
            TrainCommand.self, PredictCommand.self, ExportONNXCommand.self, SpacesCommand.self, DatasetsCommand.self, EstimateCommand.self, LatencyCommand.self,
            EvaluateCommand.self, ValidateCommand.self, DrawCommand.self, ProxiesCommand.self,
            ServeCommand.self, KeysCommand.self,
        ])

    static func main() {
        EngineSettings.relaunchWithOptimizedBLASIfNeeded()
        main(ArgumentPreflight.prepare(Array(CommandLine.arguments.dropFirst())))
    }
}

/// Runs `body`, turning NASLab's errors into a clean message and exit code 1 (no stack trace).
func reportingErrors<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as ExitCode {
        throw error
    } catch let error as ValidationError {
        throw error
    } catch {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode(1)
    }
}

func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = CandidateJSON.encoder()
    encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}
