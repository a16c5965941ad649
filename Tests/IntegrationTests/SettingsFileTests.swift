import ArgumentParser
import Foundation
import HyperOpt
import Settings
import Testing
@testable import hypertrain

/// `--config FILE`: the settings file turns into flags before parsing; these tests parse
/// commands in process (`Hypertrain.parseAsRoot`) and, for the round trip, run the binary.
@Suite struct SettingsFileTests {
    /// Parses `arguments` as `main` does (settings file expanded first).
    static func parse(_ arguments: [String]) throws -> ParsableCommand {
        try Hypertrain.parseAsRoot(try SettingsArguments.expand(arguments))
    }

    static func runConfig(_ arguments: [String]) throws -> ExperimentConfig {
        let command = try parse(["run"] + arguments)
        return try #require(command as? RunCommand).experiment.config()
    }

    /// The message a refused command line produces.
    static func refusal(_ arguments: [String]) -> String? {
        do {
            _ = try parse(arguments)
            return nil
        } catch {
            return Hypertrain.message(for: error)
        }
    }

    /// `text` in a fresh file named `name`.
    static func file(_ scratch: Scratch, _ name: String, _ text: String) throws -> String {
        let path = scratch.file(name)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    // MARK: The declared settings are the flags

    static let commands: [(name: String, type: any SettingsCommand.Type)] = [
        ("run", RunCommand.self), ("coordinator", CoordinatorCommand.self), ("search", SearchCommand.self),
        ("trial", TrialCommand.self), ("unrolled", UnrolledCommand.self),
    ]

    /// The long flags in a command's help, from its option lines.
    static func helpFlags(_ type: any ParsableCommand.Type) -> Set<String> {
        let help = Hypertrain.helpMessage(for: type, columns: 200)
        var flags = Set<String>()
        for line in help.split(separator: "\n") where line.hasPrefix("  -") {
            let words = line.split(separator: " ")
            for w in words.prefix(2) where w.hasPrefix("--") { flags.insert(String(w.dropFirst(2).prefix { $0 != "," && $0 != " " })) }
        }
        return flags.subtracting(["help", "config"])
    }

    @Test("every command's settings-file keys are exactly its flags (without --config and --help)",
          arguments: commands.map(\.name))
    func keysAreFlags(name: String) throws {
        let type = try #require(Self.commands.first { $0.name == name }).type
        let flags = Self.helpFlags(type)
        #expect(flags.count > 5, "no flags read from the help of \(name)")
        #expect(Set(type.settings.keys) == flags,
                "only keys: \(Set(type.settings.keys).subtracting(flags).sorted()), only flags: \(flags.subtracting(type.settings.keys).sorted())")
    }

    @Test("search and trial list only what a trial reads; unrolled no hyper-training flags")
    func helpListsOnlyUsedFlags() {
        let hyperTraining = ["sigma", "steps", "phase1-steps", "samples", "hypernet", "algorithm", "lambda-lr", "phi-lr", "eval-every"]
        for type in [SearchCommand.self, TrialCommand.self, UnrolledCommand.self] as [any ParsableCommand.Type] {
            let flags = Self.helpFlags(type)
            #expect(flags.isDisjoint(with: hyperTraining), "\(type) lists \(flags.intersection(hyperTraining).sorted())")
            #expect(flags.isSuperset(of: ["layers", "scope", "n-train", "batch-size", "seed", "recipe", "data"]), "\(type): \(flags.sorted())")
        }
        #expect(Self.helpFlags(RunCommand.self).isSuperset(of: hyperTraining))
        #expect(Self.helpFlags(SearchCommand.self).isSuperset(of: ["metrics", "summary", "lr-schedule", "hypernet-init"]))
    }

    // MARK: Bad files are clear errors

    @Test("an unknown key, a wrong type, a duplicate and broken YAML are refused naming the key and the file",
          arguments: [
            ("stepz: 10\n", ["'stepz'", "line 1"]),
            ("lambda_init: -3\n", ["'lambda_init'", "did you mean 'lambda-init'"]),
            ("steps: 10\nsteps: 20\n", ["'steps'", "duplicated"]),
            ("sigma: 0.3\nsteps: abc\n", ["'steps'", "line 2", "whole number", "'abc'"]),
            ("steps: \"4000\"\n", ["'steps'", "the string \"4000\""]),
            ("steps: 1.5\n", ["'steps'", "whole number"]),
            ("sigma: fast\n", ["'sigma'", "a number"]),
            ("sigma: [0.1, 0.2]\n", ["'sigma'", "a list"]),
            ("quiet: maybe\n", ["'quiet'", "true or false"]),
            ("steps: [\n", ["not valid YAML"]),
            ("- steps\n- 10\n", ["mapping of flag names"]),
          ])
    func badFiles(text: String, fragments: [String]) throws {
        let scratch = try Scratch("cfg")
        let path = try Self.file(scratch, "bad.yaml", text)
        let message = try #require(Self.refusal(["run", "--config", path]), "accepted \(text)")
        #expect(message.contains(path), "\(message)")
        for f in fragments { #expect(message.contains(f), "'\(f)' missing from: \(message)") }
    }

    @Test("a key that is a flag of another command only is unknown to this one; a missing file is an error")
    func keyOfAnotherCommand() throws {
        let scratch = try Scratch("cfg")
        let path = try Self.file(scratch, "run.yaml", "layers: 784-10\nsigma: 0.3\n")
        let message = try #require(Self.refusal(["search", "--config", path]))
        #expect(message.contains("'sigma'") && message.contains(path), "\(message)")
        #expect(try Self.runConfig(["--config", path]).sigma == 0.3)
        let missing = try #require(Self.refusal(["run", "--config", scratch.file("nope.yaml")]))
        #expect(missing.contains("nope.yaml") && missing.contains("cannot read"), "\(missing)")
    }

    // MARK: Precedence

    @Test("flags on the command line override the file, key by key; the rest of the file applies")
    func flagsOverrideFile() throws {
        let scratch = try Scratch("cfg")
        let path = try Self.file(scratch, "s.yaml", """
            # a comment
            preset: fig7
            steps: 100
            sigma: 0.3
            lambda-init: -4
            lr-schedule: linear:0.5
            divergence-guard: off
            """)
        let fromFile = try Self.runConfig(["--config", path])
        #expect(fromFile.steps == 100 && fromFile.sigma == 0.3 && fromFile.lambdaInit == -4 && fromFile.scope == .perClass)
        #expect(fromFile.learningRateSchedule?.description == "linear:0.5" && fromFile.divergenceGuard == nil)
        let overridden = try Self.runConfig(["--steps", "7", "--config", path, "--lambda-init=-2", "--preset", "fig4"])
        #expect(overridden.steps == 7 && overridden.lambdaInit == -2 && overridden.scope == .global)
        #expect(overridden.sigma == 0.3, "a setting only in the file still applies")
        let inline = try Self.runConfig(["--config=\(path)", "--sigma", "0.2"])
        #expect(inline.sigma == 0.2 && inline.steps == 100)
    }

    @Test("a repeatable flag from the file (coordinator --bind) is replaced, not extended, by the command line")
    func repeatableFlag() throws {
        let scratch = try Scratch("cfg")
        let path = try Self.file(scratch, "c.yaml", "bind: [ipc:///tmp/a.sock, ipc:///tmp/b.sock]\nsteps: 5\nquiet: true\n")
        let fromFile = try #require(try Self.parse(["coordinator", "--config", path]) as? CoordinatorCommand)
        #expect(fromFile.bind == ["ipc:///tmp/a.sock", "ipc:///tmp/b.sock"] && fromFile.output.quiet)
        let overridden = try #require(try Self.parse(["coordinator", "--config", path, "--bind", "ipc:///tmp/c.sock"]) as? CoordinatorCommand)
        #expect(overridden.bind == ["ipc:///tmp/c.sock"])
        #expect(try overridden.experiment.config().steps == 5)
    }

    @Test("the recipe fills only settings neither a flag nor the file gave")
    func recipeRespectsFileSettings() throws {
        let scratch = try Scratch("cfg")
        let path = try Self.file(scratch, "r.yaml", "preset: fig7\nsigma: 0.5\nhypernet-input: raw\n")
        let c = try Self.runConfig(["--config", path])
        #expect(c.sigma == 0.5, "σ from the file was overwritten by the recipe: \(c.sigma)")
        #expect(c.hypernetInput == .raw)
        #expect(abs(c.lambdaLearningRate - 0.003 / 10.0.squareRoot()) < 1e-15, "not given: the recipe's 0.003/√H")
        #expect(c.hypernetInit == .fanIn)
        let withoutFile = try Self.runConfig(["--preset", "fig7"])
        #expect(abs(withoutFile.sigma - 0.5 / 10.0.squareRoot()) < 1e-15)
        let paper = try Self.file(scratch, "p.yaml", "preset: fig7\nrecipe: paper\n")
        #expect(try Self.runConfig(["--config", paper]) == (try Self.runConfig(["--preset", "fig7", "--recipe", "paper"])))
    }

    // MARK: Presets and the resolved configuration

    @Test("presets/NAME.yaml is what the binary resolves for --preset NAME, under either recipe",
          arguments: StandardConfigs.benchmarks.map(\.name))
    func presetFiles(name: String) throws {
        let path = Env.root + "/presets/\(name).yaml"
        let onDisk = try String(contentsOfFile: path, encoding: .utf8)
        #expect(onDisk == ExperimentSettings.presetFile(name: name), "\(path) is stale: run `hypertrain presets --write presets`")
        for recipe in ["stable", "paper"] {
            let fromFile = try Self.runConfig(["--config", path, "--recipe", recipe])
            let fromPreset = try Self.runConfig(["--preset", name, "--recipe", recipe])
            #expect(fromFile == fromPreset, "\(name), \(recipe)")
        }
        #expect(try Self.runConfig(["--config", path, "--steps", "33"]) == (try Self.runConfig(["--preset", name, "--steps", "33"])))
    }

    @Test("the resolved settings file and a summary's config object both resolve back to the same configuration",
          arguments: [
            ["--preset", "fig4"], ["--preset", "fig5", "--recipe", "paper"], ["--preset", "deep", "--lr-schedule", "constant"],
            ["--algorithm", "global", "--hypernet", "mlp:20", "--steps", "300", "--seed", "9"],
            ["--preset", "fig7", "--retrain-steps", "50", "--answer", "retrained", "--sigma", "0.25", "--divergence-guard", "off"],
          ])
    func resolvedRoundTrip(flags: [String]) throws {
        let scratch = try Scratch("cfg")
        let config = try Self.runConfig(flags)
        let yaml = try Self.file(scratch, "s.config.yaml", ExperimentSettings.resolvedFile(config))
        #expect(try Self.runConfig(["--config", yaml]) == config)
        let encoder = JSONEncoder()
        let summary = "{\"lambda_hat\": [0], \"config\": " + String(decoding: try encoder.encode(config), as: UTF8.self) + "}"
        let json = try Self.file(scratch, "s.json", summary)
        #expect(try Self.runConfig(["--config", json]) == config)
        #expect(ExperimentSettings.companionPath(ofSummary: "runs/x/summary.json") == "runs/x/summary.config.yaml")
    }

    @Test("a short run's written settings, fed back with --config, give the same resolved config and the same λ̂")
    func runRoundTrip() throws {
        let scratch = try Scratch("cfgrun")
        let procs = try Processes(scratch)
        defer { procs.stopAll() }
        let data = try Env.data()
        let first = scratch.file("first.json")
        let flags = ["--preset", "fig4", "--steps", "60", "--eval-every", "0", "--n-valid", "500", "--n-test", "500", "--quiet", "--data", data]
        let (a, sa) = try procs.run("first", ["run"] + flags + ["--summary", first])
        try #require(sa == 0, "\(a.report)")
        let written = ExperimentSettings.companionPath(ofSummary: first)
        #expect(FileManager.default.fileExists(atPath: written))
        var summaries = [try Outputs.object(first)]
        for (i, source) in [written, first].enumerated() {
            let out = scratch.file("again\(i).json")
            let (b, sb) = try procs.run("again\(i)", ["run", "--config", source, "--quiet", "--data", data, "--summary", out])
            try #require(sb == 0, "\(b.report)")
            summaries.append(try Outputs.object(out))
        }
        let configs = summaries.map { NSDictionary(dictionary: $0["config"] as? [String: Any] ?? [:]) }
        #expect(configs[0].count > 20)
        #expect(configs[1] == configs[0] && configs[2] == configs[0], "resolved configs differ:\n\(configs)")
        let lambdas = summaries.map { $0["lambda_hat"] as? [Double] ?? [] }
        #expect(!lambdas[0].isEmpty && lambdas[1] == lambdas[0] && lambdas[2] == lambdas[0], "λ̂ differs: \(lambdas)")
    }
}
