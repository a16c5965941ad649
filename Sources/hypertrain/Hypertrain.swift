import ArgumentParser
import Linalg

/// The `hypertrain` command-line tool.
@main
struct Hypertrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hypertrain",
        abstract: "Hyperparameter optimization through hypernetworks (Lorraine & Duvenaud), in one process or on a cluster.",
        subcommands: [RunCommand.self, ExperimentCommand.self, SearchCommand.self, UnrolledCommand.self, CoordinatorCommand.self, WorkerCommand.self, ValidatorCommand.self,
                      KeygenCommand.self, DataCommand.self, BenchCommand.self, TrialCommand.self, ExportCommand.self, PredictCommand.self]
    )
}
