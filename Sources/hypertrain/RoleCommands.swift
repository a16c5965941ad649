import ArgumentParser
import Cluster
import Datasets
import Foundation
import HyperOpt
import Models
import Settings
import Transport
import Wire

/// `hypertrain coordinator`: the parameter server of a cluster.
struct CoordinatorCommand: SettingsCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Run the parameter server: holds φ and λ̂, hands out tasks, applies gradients.",
        discussion: "Takes the same experiment flags as `run`. On TCP, CurveZMQ is required unless --insecure is given.")

    @OptionGroup var logging: LoggingOptions
    @OptionGroup var settingsFile: SettingsFileOption
    @OptionGroup var experiment: ExperimentOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var cluster: ClusterRunOptions

    @Option(help: "Endpoint to bind (repeatable), e.g. tcp://0.0.0.0:5555 or ipc:///tmp/ht.sock.")
    var bind: [String] = ["tcp://0.0.0.0:5555"]
    @Option(name: .customLong("server-key"), help: "This coordinator's CURVE key file (from `hypertrain keygen`).")
    var serverKey: String?
    @Option(name: .customLong("authorized-keys"), help: "File of client public keys allowed to connect (one per line).")
    var authorizedKeys: String?
    @Flag(help: "Plain TCP without CURVE (only on trusted networks).")
    var insecure = false
    @Option(name: .customLong("metrics-port"), help: "Serve Prometheus metrics on this port (/metrics).")
    var metricsPort: UInt16?
    @Option(name: .customLong("metrics-bind"), help: "Address the metrics endpoint listens on (default: the host of the first tcp:// --bind, 127.0.0.1 with ipc:// only).")
    var metricsBind: String?
    @OptionGroup var data: DataOption
    @Flag(name: .customLong("study-mode"), help: "Run a baseline study (random search / Bayesian optimization) instead of hyper-training; see the study flags.")
    var studyMode = false
    @OptionGroup var studyOptions: StudyOptions
    @Option(name: .customLong("model-spec"),
            help: "Hyper-train an external model (docs/sdk.md): a safetensors file of its named tensors and initial weights, in flat-layout order. Workers are then hypertrain_sdk workers (weight tasks, sync or async mode).")
    var modelSpec: String?
    @Option(name: .customLong("model-scope"),
            help: "With --model-spec: global, per-tensor, per-weight or per-output-unit.")
    var modelScope: ExternalModel.Scope = .global

    static let settings = ExperimentOptions.settings.merging(OutputOptions.settings) { a, _ in a }
        .merging(LoggingOptions.settings) { a, _ in a }
        .merging(ClusterRunOptions.settings) { a, _ in a }.merging(DataOption.settings) { a, _ in a }
        .merging(StudyOptions.settings) { a, _ in a }.merging([
            "bind": .texts, "server-key": .text, "authorized-keys": .text, "insecure": .flag, "metrics-port": .integer, "metrics-bind": .text, "study-mode": .flag,
            "model-spec": .text, "model-scope": .text,
        ]) { a, _ in a }

    func validate() throws {
        let tcp = bind.contains { $0.hasPrefix("tcp://") }
        if tcp && !insecure && (serverKey == nil || authorizedKeys == nil) {
            throw ValidationError("TCP needs CURVE: pass --server-key FILE and --authorized-keys FILE (see `hypertrain keygen`), or --insecure")
        }
        for b in bind where !(b.hasPrefix("tcp://") || b.hasPrefix("ipc://") || b.hasPrefix("inproc://")) {
            throw ValidationError("--bind takes tcp://HOST:PORT or ipc://PATH, got '\(b)'")
        }
        if modelSpec != nil && studyMode {
            throw ValidationError("--model-spec runs hyper-training, not --study-mode")
        }
        if studyMode && output.tensorboard != nil {
            throw ValidationError("--tensorboard applies to hyper-training, not --study-mode")
        }
    }

    func run() throws {
        logging.bootstrap()
        let external = try modelSpec.map { try ExternalModelFile.load(path: $0, scope: modelScope) }
        var config = try experiment.config(external: external?.model)
        for w in config.warnings() where !studyMode { Console.error("warning: \(w)") }
        let curve: CurveServerSetup? = try (!insecure ? serverKey.flatMap { key in authorizedKeys.map { (key, $0) } } : nil).map {
            CurveServerSetup(keyPair: try CurveKeyPair.load(from: $0.0), authorized: try AuthorizedKeys.load(from: $0.1))
        }
        if let curve, curve.authorized.isEmpty, let file = authorizedKeys {
            Console.error("warning: \(file) holds no key: every client will be refused (add one with `hypertrain keygen --name NAME --authorize \(file)`)")
        }
        if insecure, let open = bind.first(where: { !BindAddress($0).isLoopback }) {
            Console.error("warning: --insecure on \(open): anyone who can reach this address can join the run and read its parameters unencrypted; use CURVE keys off a trusted network")
        }
        if studyMode {
            let study = try studyOptions.spec(config: &config)
            let data = try ExperimentData.load(directory: self.data.directory, config: config)
            var options = StudyCoordinator.Options(bind: bind, databasePath: studyOptions.study)
            options.curve = curve
            options.resume = cluster.resume
            options.metricsPath = output.files.metrics
            options.summaryPath = output.files.summary
            let outcome = try StudyCoordinator(config: config, study: study, dataFingerprint: data.fingerprint, options: options).run()
            print("best valid \(outcome.best?.validLoss ?? .nan) test \(outcome.best?.testLoss ?? .nan) after \(outcome.trials.count) trials")
            if let s = outcome.signal { throw ExitCode(Signals.exitStatus(for: s)) }
            return
        }
        try ResolvedSettings.write(config, besideSummary: output.files.summary, modelSpec: modelSpec)
        var options = Coordinator.Options(bind: bind)
        cluster.apply(to: &options)
        options.reporter = output.reporterOptions
        options.metricsPort = metricsPort
        options.metricsHost = metricsBind ?? BindAddress.metricsHost(for: bind)
        options.curve = curve
        let coordinator = if let external {
            Coordinator(config: config, initialWeights: external.weights, options: options)
        } else {
            Coordinator(config: config, data: try ExperimentData.load(directory: self.data.directory, config: config), options: options)
        }
        let outcome = try coordinator.run()
        print(RunCommand.resultLine(lambdaHat: outcome.lambdaHat, evaluation: outcome.evaluation))
        if let s = outcome.signal { throw ExitCode(Signals.exitStatus(for: s)) }
    }
}

/// Flags shared by `worker` and `validator`.
struct PeerOptions: ParsableArguments {
    @Option(help: "Coordinator endpoint, e.g. tcp://10.0.0.1:5555.")
    var connect: String
    @Option(help: "This worker's CURVE key file (from `hypertrain keygen`).")
    var key: String?
    @Option(name: .customLong("server-public-key"), help: "The coordinator's public key file (NAME.pub).")
    var serverPublicKey: String?
    @Flag(help: "Plain TCP without CURVE.")
    var insecure = false
    @OptionGroup var data: DataOption
    @Option(name: .customLong("give-up-after"),
            help: "Exit (status 2) after this many seconds without a coordinator: never reached at start, or gone without a Shutdown (killed, host lost). 0: wait forever.")
    var giveUpAfter: Double = 600
    @Option(name: .customLong("parent-pid"), help: .hidden)
    var parentPID: Int32?
    @Option(name: .customLong("busy-wait-us"),
            help: "Microseconds to keep checking for the next message before sleeping (0: sleep at once). Saves the wake-up of an idle CPU (up to a few hundred µs on virtual machines) on every task; costs CPU while waiting.")
    var busyWaitMicroseconds = 0

    func validate() throws {
        if connect.hasPrefix("tcp://") && !insecure && (key == nil || serverPublicKey == nil) {
            throw ValidationError("TCP needs CURVE: pass --key FILE and --server-public-key FILE, or --insecure")
        }
        guard giveUpAfter >= 0 else { throw ValidationError("--give-up-after must be ≥ 0") }
        guard (0...1_000_000).contains(busyWaitMicroseconds) else { throw ValidationError("--busy-wait-us must be in 0...1000000") }
    }

    func run(role: Role) throws {
        var o = WorkerNode.Options(connect: connect, role: role, dataDirectory: self.data.directory)
        o.giveUpAfter = giveUpAfter
        o.parentPID = parentPID
        o.busyWaitMicroseconds = busyWaitMicroseconds
        if !insecure, let key, let serverPublicKey {
            o.curve = (try CurveKeyPair.load(from: key), try CurveKeyPair.loadPublicKey(from: serverPublicKey))
        }
        switch try WorkerNode(options: o).run() {
        case .shutdown(let reason):
            // The coordinator stopped and continues with --resume: exit 75 (EX_TEMPFAIL) so a
            // supervisor that restarts failures (systemd Restart=on-failure) starts this worker
            // again to wait for it; after a complete run, 0.
            if ShutdownReason.isCoordinatorStopped(reason) { throw ExitCode(75) }
            return
        case .signal:
            throw ExitCode(Signals.exitStatus(for: Signals.pending ?? SIGTERM))
        case .gaveUp:
            Console.error("no coordinator at \(connect) for \(giveUpAfter) s (--give-up-after): it went away without a Shutdown, the address is wrong, or this key is not authorized; exiting")
            throw ExitCode(2)
        case .orphaned: throw ExitCode(1)
        }
    }
}

/// `hypertrain worker`: a training worker.
struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "worker", abstract: "Compute training gradients ∂L_train/∂φ for a coordinator.")
    @OptionGroup var logging: LoggingOptions
    @OptionGroup var peer: PeerOptions
    func run() throws { logging.bootstrap(); try peer.run(role: .trainer) }
}

/// `hypertrain validator`: the validation worker.
struct ValidatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "validator", abstract: "Compute hypergradients ∂L_valid/∂λ̂ for a coordinator.")
    @OptionGroup var logging: LoggingOptions
    @OptionGroup var peer: PeerOptions
    func run() throws { logging.bootstrap(); try peer.run(role: .validator) }
}

/// `hypertrain keygen`: CURVE key pairs.
struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen", abstract: "Write a CURVE key pair NAME.key (secret, mode 0600) and NAME.pub.")
    @Option(help: "Directory for the key files.")
    var out: String = "keys"
    @Option(help: "Base name of the key files.")
    var name: String
    @Option(help: "Also append the public key to this authorized-keys file.")
    var authorize: String?
    @Flag(help: "Replace existing key files.")
    var force = false

    func run() throws {
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let pair = try CurveKeyPair.generate()
        let files = try pair.write(to: out, name: name, overwrite: force)
        if let authorize {
            let line = pair.publicKey + "  # " + name + "\n"
            if let h = FileHandle(forWritingAtPath: authorize) {
                h.seekToEndOfFile(); h.write(Data(line.utf8)); h.closeFile()
            } else {
                try line.write(toFile: authorize, atomically: true, encoding: .utf8)
            }
        }
        print("wrote \(files.secretFile) and \(files.publicFile)" + (authorize.map { "; authorized in \($0)" } ?? ""))
    }
}
