import ArgumentParser
import Linalg

/// The `hypertrain` command-line tool.
@main
struct Hypertrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hypertrain",
        abstract: "Hyperparameter optimization through hypernetworks (Lorraine & Duvenaud), in one process or on a cluster.",
        subcommands: [RunCommand.self, ExperimentCommand.self, SearchCommand.self, UnrolledCommand.self, CoordinatorCommand.self, WorkerCommand.self, ValidatorCommand.self,
                      KeygenCommand.self, DataCommand.self, BenchCommand.self, TrialCommand.self, ExportCommand.self, PredictCommand.self,
                      PresetsCommand.self, BenchWorkerCommand.self]
    )

    /// The process set-up every command shares, then the command: one BLAS thread (the
    /// parallelism is processes, and the numbers must not depend on a thread count), and a
    /// `--config FILE` expanded into the flags it stands for.
    static func main() {
        BLASRuntime.setThreads(1)
        let arguments: [String]
        do {
            arguments = try SettingsArguments.expand(Array(CommandLine.arguments.dropFirst()))
        } catch {
            exit(withError: error)
        }
        main(arguments)
    }
}
