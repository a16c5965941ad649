import Foundation
#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import Testing
import HyperOpt
@testable import RunState
import SystemIO
import TestSupport

@Suite struct CheckpointTests {
    // MARK: Round trip

    @Test("a realistic checkpoint round-trips with bit-identical arrays and all fields")
    func roundTrip() throws {
        let scratch = try CheckpointScratch()
        defer { scratch.remove() }
        let path = scratch.path + "/run.ckpt"
        let original = CheckpointFixture.make(steps: 3)
        #expect(original.snapshot.phi.count == original.config.phiCount)
        #expect(original.snapshot.phiM.count == original.snapshot.phi.count)

        try original.write(to: path)
        let restored = try Checkpoint.read(from: path)

        #expect(restored == original)
        let pairs = zip(CheckpointFixture.arrays(of: restored), CheckpointFixture.arrays(of: original))
        for (read, written) in pairs {
            #expect(read.map(\.bitPattern) == written.map(\.bitPattern))
        }
        #expect(restored.dataFingerprint == 0xFEED_FACE_CAFE_BEEF)
        #expect(restored.counters["gradients_applied"] == UInt64.max)
        #expect(restored.wallSecondsSoFar == 0.1 + 0.2)
        #expect(try scratch.contents() == ["run.ckpt"])

        let bytes = try CheckpointScratch.bytes(path)
        #expect(Array(bytes.prefix(8)) == Array("HTCKPT01".utf8))
        let headerLength = CheckpointFixture.headerLength(bytes)
        #expect((24 + headerLength) % 8 == 0)
        let floats = CheckpointFixture.arrays(of: original).reduce(0) { $0 + $1.count }
        #expect(bytes.count == 24 + headerLength + 4 * floats + 4)
    }

    @Test("a pipelined run's checkpoint carries its task parameters and their versions, round-trips bit for bit, and a file without them (or with them for a lockstep run) is refused")
    func pipelinedRoundTrip() throws {
        let scratch = try CheckpointScratch()
        defer { scratch.remove() }
        let path = scratch.path + "/run.ckpt"
        var config = CheckpointFixture.make(steps: 1).config
        config.pipelined = true
        let state = HyperState(config: config, phi: CheckpointFixture.make(steps: 1).snapshot.phi,
                               lambdaHat: [Float](repeating: -2, count: config.hyperparameterCount))
        // Two steps: the published parameters are the ones before the second update.
        for t in 0..<2 {
            state.beginStep()
            let g = [Float](repeating: 0.25 * Float(t + 1), count: config.phiCount)
            g.withUnsafeBufferPointer { state.addTaskGradient($0.baseAddress!) }
            state.publishTaskParameters()
            state.applyPhiStep()
            let gl = [Float](repeating: -0.5, count: config.hyperparameterCount)
            gl.withUnsafeBufferPointer { state.applyLambdaStep($0.baseAddress!) }
            state.endStep()
        }
        let original = Checkpoint(snapshot: state.snapshot(), config: config, dataFingerprint: 7, wallSecondsSoFar: 1)
        let task = try #require(original.snapshot.taskParameters)
        #expect(task.phi != original.snapshot.phi && task.phiVersion == 1 && task.lambdaVersion == 1)
        try original.write(to: path)
        let restored = try Checkpoint.read(from: path)
        #expect(restored == original)
        #expect(restored.snapshot.taskParameters?.phi.map(\.bitPattern) == task.phi.map(\.bitPattern))

        // The run is pipelined but the file has no task parameters, and the other way round.
        var missing = original
        missing.snapshot.taskParameters = nil
        #expect(throws: CheckpointError.self) { try missing.write(to: path + ".2") }
        var extra = CheckpointFixture.make(steps: 1)
        extra.snapshot.taskParameters = task
        #expect(throws: CheckpointError.self) { try extra.write(to: path + ".3") }
        // A resumed state checks them too.
        let fresh = HyperState(config: config, phi: original.snapshot.phi, lambdaHat: original.snapshot.lambdaHat)
        #expect(fresh.problems(resuming: original.snapshot).isEmpty)
        #expect(fresh.problems(resuming: missing.snapshot).contains { $0.contains("task parameters") })
        var short = original.snapshot
        short.taskParameters?.phi.removeLast()
        #expect(fresh.problems(resuming: short).contains { $0.contains("task_phi") })
        fresh.restore(original.snapshot)
        #expect(fresh.snapshot() == original.snapshot)
        #expect(fresh.taskPhiVersion == 1 && fresh.taskPhi.array == task.phi)
    }

    @Test("a configuration with every optional setting given (centred input, fan-in init) round-trips")
    func optionalSettingsRoundTrip() throws {
        let scratch = try CheckpointScratch()
        defer { scratch.remove() }
        let path = scratch.path + "/run.ckpt"
        var original = CheckpointFixture.make(steps: 1, compact: true)
        original.config.hypernetInput = .centred
        original.config.hypernetInit = .fanIn
        try original.write(to: path)
        let restored = try Checkpoint.read(from: path)
        #expect(restored == original)
        #expect(restored.config.hypernetInput == .centred && restored.config.hypernetInit == .fanIn)
    }

    @Test("an SGD run (no moments) round-trips too")
    func roundTripWithoutMoments() throws {
        let scratch = try CheckpointScratch()
        defer { scratch.remove() }
        let path = scratch.path + "/run.ckpt"
        let original = CheckpointFixture.make(steps: 2, compact: true)
        #expect(original.snapshot.phiM.isEmpty && original.snapshot.lambdaV.isEmpty)
        try original.write(to: path)
        let restored = try Checkpoint.read(from: path)
        #expect(restored == original)
        #expect(restored.snapshot.phi.map(\.bitPattern) == original.snapshot.phi.map(\.bitPattern))
    }

    @Test("rewriting keeps the replaced checkpoint as .prev and equal contents give equal bytes")
    func rotation() throws {
        let scratch = try CheckpointScratch()
        defer { scratch.remove() }
        let path = scratch.path + "/run.ckpt"
        let first = CheckpointFixture.make(steps: 2)
        let second = CheckpointFixture.make(steps: 3)
        try first.write(to: path)
        let firstBytes = try CheckpointScratch.bytes(path)
        try second.write(to: path)
        #expect(try Checkpoint.read(from: path) == second)
        #expect(try Checkpoint.read(from: path + ".prev") == first)
        #expect(try CheckpointScratch.bytes(path + ".prev") == firstBytes)
        try first.write(to: path)
        #expect(try CheckpointScratch.bytes(path) == firstBytes)
        #expect(try Checkpoint.read(from: path + ".prev") == second)
        #expect(try scratch.contents() == ["run.ckpt", "run.ckpt.prev"])
    }

    @Test("write creates missing parent directories")
    func createsParents() throws {
        let scratch = try CheckpointScratch()
        defer { scratch.remove() }
        let path = scratch.path + "/a/b/c/run.ckpt"
        let checkpoint = CheckpointFixture.make(steps: 1)
        try checkpoint.write(to: path)
        #expect(try Checkpoint.read(from: path) == checkpoint)
    }

    @Test("CRC-32C matches the standard check value, in one piece or many")
    func crc32c() {
        let text = Array("123456789".utf8)
        #expect(text.withUnsafeBytes { CRC32C.checksum($0) } == 0xE306_9283)
        let long = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let whole = long.withUnsafeBytes { CRC32C.checksum($0) }
        var pieces = CRC32C()
        long.withUnsafeBytes { raw in
            var start = 0
            for size in [1, 3, 8, 13, 64, 200] + Array(repeating: 1000, count: 1) {
                let end = min(start + size, raw.count)
                pieces.update(UnsafeRawBufferPointer(rebasing: raw[start..<end]))
                start = end
            }
        }
        #expect(pieces.value == whole)
    }

    // MARK: Corrupt files

    @Test("a truncated file is reported as truncated", arguments: TruncationPoint.allCases)
    func truncated(at point: TruncationPoint) throws {
        let scratch = try CheckpointScratch()
        defer { scratch.remove() }
        let path = scratch.path + "/run.ckpt"
        try CheckpointFixture.make(steps: 1).write(to: path)
        let bytes = try CheckpointScratch.bytes(path)
        let length = point.length(in: bytes)
        try CheckpointScratch.write(Array(bytes.prefix(length)), to: path)

        let error = try #require(CheckpointFixture.readError(path))
        guard case let .truncated(file, expected, found) = error else {
            Issue.record("expected truncated, got \(error)")
            return
        }
        #expect(file == path)
        #expect(found == length)
        #expect(expected == (length < 24 ? 28 : bytes.count))
        #expect(error.description.contains(path) && error.description.contains("truncated"))
    }

    @Test("every truncation length is rejected as truncated, without crashing")
    func truncationSweep() throws {
        let scratch = try CheckpointScratch()
        defer { scratch.remove() }
        let path = scratch.path + "/run.ckpt"
        try CheckpointFixture.make(steps: 1, compact: true).write(to: path)
        let bytes = try CheckpointScratch.bytes(path)
        let lengths = Array(0..<64) + Array(stride(from: 64, to: bytes.count, by: max(1, bytes.count / 100))) + [bytes.count - 1]
        for length in lengths {
            try CheckpointScratch.write(Array(bytes.prefix(length)), to: path)
            let error = CheckpointFixture.readError(path)
            guard case .truncated? = error else {
                Issue.record("length \(length): expected truncated, got \(String(describing: error))")
                return
            }
        }
    }

    @Test("a zero-length file is truncated")
    func zeroLength() throws {
        let scratch = try CheckpointScratch()
        defer { scratch.remove() }
        let path = scratch.path + "/run.ckpt"
        try CheckpointScratch.write([], to: path)
        #expect(CheckpointFixture.readError(path) == .truncated(file: path, expected: 28, found: 0))
    }

    @Test("a missing file is reported as missing")
    func missing() throws {
        let scratch = try CheckpointScratch()
        defer { scratch.remove() }
        let path = scratch.path + "/nothing-here"
        let error = CheckpointFixture.readError(path)
        #expect(error == .missing(path: path))
        #expect(error?.description == "\(path): no such checkpoint")
    }

    @Test("a flipped byte fails the checksum", arguments: FlipRegion.allCases)
    func flippedByte(in region: FlipRegion) throws {
        let scratch = try CheckpointScratch()
        defer { scratch.remove() }
        let path = scratch.path + "/run.ckpt"
        try CheckpointFixture.make(steps: 2).write(to: path)
        var bytes = try CheckpointScratch.bytes(path)
        bytes[region.offset(in: bytes)] ^= 0x10
        try CheckpointScratch.write(bytes, to: path)

        let error = try #require(CheckpointFixture.readError(path))
        guard case let .checksumMismatch(file, stored, computed) = error else {
            Issue.record("expected checksum mismatch, got \(error)")
            return
        }
        #expect(file == path && stored != computed)
        #expect(error.description.contains(path) && error.description.contains("checksum mismatch"))
    }

    @Test("no single-byte change anywhere is accepted")
    func byteFlipSweep() throws {
        let scratch = try CheckpointScratch()
        defer { scratch.remove() }
        let path = scratch.path + "/run.ckpt"
        try CheckpointFixture.make(steps: 1, compact: true).write(to: path)
        let good = try CheckpointScratch.bytes(path)
        var generator = SplitMix64(seed: 7)
        let dataStart = 24 + CheckpointFixture.headerLength(good)
        let offsets = Array(0..<24) + Array(stride(from: 24, to: dataStart, by: 7)) + [dataStart - 1, good.count - 4, good.count - 1]
            + (0..<40).map { _ in Int.random(in: 0..<good.count, using: &generator) }
        for offset in offsets {
            var bytes = good
            bytes[offset] ^= UInt8.random(in: 1...255, using: &generator)
            try CheckpointScratch.write(bytes, to: path)
            if CheckpointFixture.readError(path) == nil {
                Issue.record("a change at byte \(offset) was accepted")
            }
        }
    }

    @Test("a file that does not start with HTCKPT01 has a bad magic")
    func badMagic() throws {
        let scratch = try CheckpointScratch()
        defer { scratch.remove() }
        let path = scratch.path + "/run.ckpt"
        try CheckpointFixture.make(steps: 1).write(to: path)
        var bytes = try CheckpointScratch.bytes(path)
        bytes[0] = UInt8(ascii: "X")
        try CheckpointScratch.write(bytes, to: path)
        let error = CheckpointFixture.readError(path)
        #expect(error == .badMagic(file: path, found: Array("XTCKPT01".utf8)))
        #expect(error?.description.contains("not a Hypertrain checkpoint") == true)

        try CheckpointScratch.write(Array("{\"step\": 3}\n".utf8), to: path)
        guard case .badMagic? = CheckpointFixture.readError(path) else {
            Issue.record("a JSON file was not reported as bad magic")
            return
        }
        try CheckpointScratch.write([0x00, 0x01], to: path)
        #expect(CheckpointFixture.readError(path) == .badMagic(file: path, found: [0x00, 0x01]))
    }

    @Test("another format version is unsupported")
    func wrongVersion() throws {
        let scratch = try CheckpointScratch()
        defer { scratch.remove() }
        let path = scratch.path + "/run.ckpt"
        try CheckpointFixture.make(steps: 1).write(to: path)
        var bytes = try CheckpointScratch.bytes(path)
        bytes[8] = 2
        CheckpointFixture.refreshChecksum(&bytes)
        try CheckpointScratch.write(bytes, to: path)
        let error = CheckpointFixture.readError(path)
        #expect(error == .unsupportedVersion(file: path, found: 2, supported: 1))
        #expect(error?.description.contains("version 2") == true)
    }

    @Test("bytes after the declared end are a size mismatch")
    func trailingBytes() throws {
        let scratch = try CheckpointScratch()
        defer { scratch.remove() }
        let path = scratch.path + "/run.ckpt"
        try CheckpointFixture.make(steps: 1).write(to: path)
        let bytes = try CheckpointScratch.bytes(path)
        try CheckpointScratch.write(bytes + [0, 0, 0, 0], to: path)
        #expect(CheckpointFixture.readError(path) == .sizeMismatch(file: path, expected: bytes.count, found: bytes.count + 4))
    }

    @Test("a non-finite value in an array is rejected", arguments: [("phi", 5, Float.nan), ("lambda_hat", 0, Float.infinity), ("phi_v", 17, -Float.infinity)])
    func nonFinite(array: String, index: Int, value: Float) throws {
        let scratch = try CheckpointScratch()
        defer { scratch.remove() }
        let path = scratch.path + "/run.ckpt"
        let checkpoint = CheckpointFixture.make(steps: 2)
        try checkpoint.write(to: path)
        var bytes = try CheckpointScratch.bytes(path)
        let arrays = CheckpointFixture.arrays(of: checkpoint)
        let position = Checkpoint.arrayNames.firstIndex(of: array)!
        let before = arrays[..<position].reduce(0) { $0 + $1.count }
        let offset = 24 + CheckpointFixture.headerLength(bytes) + 4 * (before + index)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.replaceSubrange(offset..<(offset + 4), with: $0) }
        CheckpointFixture.refreshChecksum(&bytes)
        try CheckpointScratch.write(bytes, to: path)

        let error = try #require(CheckpointFixture.readError(path))
        guard case let .nonFiniteValues(file, name, at, found) = error else {
            Issue.record("expected non-finite values, got \(error)")
            return
        }
        #expect(file == path && name == array && at == index)
        #expect(found.bitPattern == value.bitPattern)
        #expect(error.description.contains(array))
    }

    @Test("write refuses NaN in φ and leaves the existing checkpoint untouched")
    func writeRefusesNaN() throws {
        let scratch = try CheckpointScratch()
        defer { scratch.remove() }
        let path = scratch.path + "/run.ckpt"
        let good = CheckpointFixture.make(steps: 2)
        try good.write(to: path)
        let before = try CheckpointScratch.bytes(path)
        var bad = CheckpointFixture.make(steps: 3)
        bad.snapshot.phi[9] = .nan

        let error = CheckpointFixture.writeError(bad, path)
        guard case .nonFiniteValues(path, "phi", 9, _)? = error else {
            Issue.record("expected non-finite φ, got \(String(describing: error))")
            return
        }
        #expect(try CheckpointScratch.bytes(path) == before)
        #expect(try scratch.contents() == ["run.ckpt"])
    }

    @Test("write refuses arrays whose lengths do not fit the configuration")
    func writeRefusesWrongLengths() throws {
        let scratch = try CheckpointScratch()
        defer { scratch.remove() }
        let path = scratch.path + "/run.ckpt"
        var bad = CheckpointFixture.make(steps: 1)
        bad.snapshot.lambdaHat.append(0)
        let error = CheckpointFixture.writeError(bad, path)
        guard case let .invalidContents(file, reason)? = error else {
            Issue.record("expected invalid contents, got \(String(describing: error))")
            return
        }
        #expect(file == path && reason.contains("lambda_hat has 11 values"))
        #expect(try scratch.contents().isEmpty)
    }

    @Test("a header that decodes wrongly is corrupt even with a valid checksum", arguments: HeaderEdit.allCases)
    func corruptHeader(edit: HeaderEdit) throws {
        let scratch = try CheckpointScratch()
        defer { scratch.remove() }
        let path = scratch.path + "/run.ckpt"
        try CheckpointFixture.make(steps: 1).write(to: path)
        let bytes = CheckpointFixture.rebuild(try CheckpointScratch.bytes(path), edit: edit)
        try CheckpointScratch.write(bytes, to: path)

        let error = try #require(CheckpointFixture.readError(path))
        switch (edit, error) {
        case (.longerPhi, .sizeMismatch(path, _, bytes.count)):
            break
        case (_, let .corruptHeader(file, reason)) where edit != .longerPhi:
            #expect(file == path)
            #expect(reason.contains(edit.expectedReason), "reason: \(reason)")
        default:
            Issue.record("\(edit): unexpected \(error)")
        }
    }

    // MARK: Falling back to .prev

    @Test("latestGood falls back to .prev when the checkpoint is corrupt or missing, and says so")
    func previousFallback() throws {
        let scratch = try CheckpointScratch()
        defer { scratch.remove() }
        let path = scratch.path + "/run.ckpt"
        let older = CheckpointFixture.make(steps: 2)
        let newer = CheckpointFixture.make(steps: 3)
        try older.write(to: path)
        try newer.write(to: path)

        let clean = try Checkpoint.latestGood(at: path)
        #expect(clean.checkpoint == newer && clean.path == path && !clean.usedPrevious && clean.latestError == nil)

        var bytes = try CheckpointScratch.bytes(path)
        bytes[bytes.count / 2] ^= 0xff
        try CheckpointScratch.write(bytes, to: path)
        let fallback = try Checkpoint.latestGood(at: path)
        #expect(fallback.checkpoint == older)
        #expect(fallback.usedPrevious && fallback.path == path + ".prev")
        guard case .checksumMismatch(path, _, _)? = fallback.latestError else {
            Issue.record("expected the checksum error of \(path), got \(String(describing: fallback.latestError))")
            return
        }
        #expect(try Checkpoint.readLatestGood(at: path) == older)

        #expect(unlink(path) == 0)     // as after a crash between the two renames
        let afterCrash = try Checkpoint.latestGood(at: path)
        #expect(afterCrash.checkpoint == older && afterCrash.latestError == .missing(path: path))

        try CheckpointScratch.write(Array(bytes.prefix(100)), to: path)
        try CheckpointScratch.write([], to: path + ".prev")
        let neither = CheckpointFixture.latestGoodError(path)
        #expect(neither == .noUsableCheckpoint(
            latest: .truncated(file: path, expected: bytes.count, found: 100),
            previous: .truncated(file: path + ".prev", expected: 28, found: 0)))

        #expect(unlink(path + ".prev") == 0)
        guard case .truncated? = CheckpointFixture.latestGoodError(path) else {
            Issue.record("a corrupt checkpoint without .prev should report its own error")
            return
        }
        #expect(unlink(path) == 0)
        #expect(CheckpointFixture.latestGoodError(path) == .missing(path: path))
    }

    // MARK: Failed writes

    @Test("a checkpoint path that names a directory is refused; the directory and its files stay where they were")
    func directoryIsNotReplaced() throws {
        let scratch = try CheckpointScratch()
        defer { scratch.remove() }
        let directory = scratch.path + "/results"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Data("keep".utf8).write(to: URL(fileURLWithPath: directory + "/notes.txt"))
        let error = CheckpointFixture.writeError(CheckpointFixture.make(steps: 2), directory)
        guard case let .io(_, operation, reason)? = error else {
            Issue.record("expected an I/O error, got \(String(describing: error))")
            return
        }
        #expect(operation == "write" && reason.contains("is a directory"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["notes.txt"])
        #expect(!FileManager.default.fileExists(atPath: directory + ".prev"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path) == ["results"])
    }

    @Test("a write into a read-only directory fails cleanly and leaves the old checkpoint readable")
    func readOnlyDirectory() throws {
        let scratch = try CheckpointScratch()
        defer { scratch.remove() }
        let directory = scratch.path + "/ckpt"
        let path = directory + "/run.ckpt"
        let old = CheckpointFixture.make(steps: 2)
        try old.write(to: path)
        let before = try CheckpointScratch.bytes(path)

        #expect(chmod(directory, 0o555) == 0)
        let newer = CheckpointFixture.make(steps: 3)
        let error = CheckpointFixture.asUnprivilegedUser { CheckpointFixture.writeError(newer, path) }
        #expect(chmod(directory, 0o755) == 0)

        guard case let .io(_, operation, reason)? = error else {
            Issue.record("expected an I/O error, got \(String(describing: error))")
            return
        }
        #expect(operation == "open" && reason.contains("ermission denied"))
        #expect(try Checkpoint.read(from: path) == old)
        #expect(try CheckpointScratch.bytes(path) == before)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["run.ckpt"])
    }

    @Test("a write whose rename is refused removes its temporary file and keeps the old checkpoint",
          .enabled(if: geteuid() == 0, "acting as another user in a sticky directory needs root"))
    func renameRefused() throws {
        let scratch = try CheckpointScratch()
        defer { scratch.remove() }
        let directory = scratch.path + "/sticky"
        let path = directory + "/run.ckpt"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        #expect(chmod(directory, 0o1777) == 0)   // anyone may create; only owners may rename or remove
        let old = CheckpointFixture.make(steps: 2)
        try old.write(to: path)

        let newer = CheckpointFixture.make(steps: 3)
        let error = CheckpointFixture.asUnprivilegedUser { CheckpointFixture.writeError(newer, path) }
        guard case let .io(_, operation, _)? = error else {
            Issue.record("expected an I/O error, got \(String(describing: error))")
            return
        }
        #expect(operation == "rename" || operation == "link")
        #expect(try Checkpoint.read(from: path) == old)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["run.ckpt"])
    }

    // MARK: Resuming under a configuration

    @Test("compatible(with:) flags a changed hypernet and seed but not a changed step count")
    func compatibility() {
        let checkpoint = CheckpointFixture.make(steps: 3)
        var longer = checkpoint.config
        longer.steps = 50_000
        longer.evalEvery = 10
        #expect(checkpoint.compatible(with: longer).isEmpty)
        #expect(checkpoint.compatible(with: longer, dataFingerprint: checkpoint.dataFingerprint).isEmpty)

        var changed = checkpoint.config
        changed.hypernet = .linear
        changed.seed = 99
        let problems = checkpoint.compatible(with: changed)
        #expect(problems.count == 2)
        #expect(problems.contains { $0.contains("hypernet") && $0.contains("mlp:4") && $0.contains("linear") })
        #expect(problems.contains { $0.contains("seed") && $0.contains("99") })

        #expect(checkpoint.compatible(with: longer, dataFingerprint: 1).count == 1)
        var shorter = checkpoint.config
        shorter.steps = 2
        #expect(checkpoint.compatible(with: shorter).count == 1)
    }

    // MARK: Performance

    @Test("a 1.88 M-float φ with Adam moments (~22 MB) round-trips quickly")
    func largeCheckpoint() throws {
        let scratch = try CheckpointScratch()
        defer { scratch.remove() }
        let path = scratch.path + "/big.ckpt"
        var config = ExperimentConfig()
        config.hypernet = .mlp(hidden: 239)
        let n = config.phiCount
        #expect(n == 1_884_478)
        // A random block repeated with block copies: element-wise generation dominates in debug.
        var generator = SplitMix64(seed: 3)
        let block = (0..<4096).map { _ in Float.random(in: -1...1, using: &generator) }
        func values(_ count: Int, fill: Float) -> [Float] {
            var out = [Float](repeating: fill, count: count)
            out.withUnsafeMutableBufferPointer { target in
                block.withUnsafeBufferPointer { source in
                    for start in stride(from: 0, to: count - block.count, by: block.count - 1) {
                        UnsafeMutableRawPointer(target.baseAddress! + start).copyMemory(from: source.baseAddress!, byteCount: 4 * block.count)
                    }
                }
            }
            return out
        }
        let snapshot = HyperState.Snapshot(
            step: 12_000, phiVersion: 12_000, lambdaVersion: 11_990, phi: values(n, fill: 0.25), lambdaHat: [-1.8],
            phiOptimizerSteps: 12_000, phiM: values(n, fill: -0.5), phiV: values(n, fill: 0.125),
            lambdaOptimizerSteps: 11_990, lambdaM: [0.01], lambdaV: [0.0001])
        let checkpoint = Checkpoint(snapshot: snapshot, config: config, dataFingerprint: 42, wallSecondsSoFar: 3600)

        let clock = ContinuousClock()
        let writeTime = try clock.measure { try checkpoint.write(to: path) }
        var restored: Checkpoint?
        let readTime = try clock.measure { restored = try Checkpoint.read(from: path) }
        let read = try #require(restored)
        for (a, b) in zip(CheckpointFixture.arrays(of: read), CheckpointFixture.arrays(of: checkpoint)) {
            #expect(a.withUnsafeBytes { x in b.withUnsafeBytes { y in x.count == y.count && memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0 } })
        }
        #expect(read.config == checkpoint.config && read.snapshot.step == 12_000)
        let megabytes = Double(try CheckpointScratch.bytes(path).count) / 1e6
        print("checkpoint \(megabytes) MB: write \(writeTime), read \(readTime)")
        // Speed is printed, not asserted: benchmarks check speed, tests check outcomes.
    }

    @Test("a checkpoint whose λ̂ left the ±80 range of --lambda-init still writes, reads and resumes (any finite λ̂ is accepted)")
    func lambdaHatBeyondInitRange() throws {
        let base = CheckpointFixture.make(steps: 1, compact: true)
        var snapshot = base.snapshot
        snapshot.lambdaHat = snapshot.lambdaHat.map { _ in 95 }
        let checkpoint = Checkpoint(snapshot: snapshot, config: base.config, dataFingerprint: base.dataFingerprint, wallSecondsSoFar: 1)
        let dir = NSTemporaryDirectory() + "ckpt-lambda-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try checkpoint.write(to: dir + "/c.bin")
        let read = try Checkpoint.read(from: dir + "/c.bin")
        #expect(read.snapshot.lambdaHat.allSatisfy { $0 == 95 })
        #expect(read.compatible(with: base.config).isEmpty)
        let state = HyperState(config: base.config, phi: base.snapshot.phi, lambdaHat: base.snapshot.lambdaHat)
        #expect(state.problems(restoring: read.snapshot).isEmpty)
    }
}

// MARK: - Test cases and fixtures

extension CheckpointTests {

    /// Where to cut a file.
    enum TruncationPoint: String, CaseIterable, Sendable {
        case insideMagic, afterMagic, insideVersion, insideTotalLength, beforeHeader, insideHeader
        case atDataStart, insidePhi, insideLastArray, beforeChecksum, insideChecksum

        func length(in bytes: [UInt8]) -> Int {
            let dataStart = 24 + CheckpointFixture.headerLength(bytes)
            switch self {
            case .insideMagic: return 3
            case .afterMagic: return 8
            case .insideVersion: return 10
            case .insideTotalLength: return 20
            case .beforeHeader: return 24
            case .insideHeader: return 24 + (dataStart - 24) / 2
            case .atDataStart: return dataStart
            case .insidePhi: return dataStart + 4 * 100 + 2
            case .insideLastArray: return bytes.count - 4 - 3
            case .beforeChecksum: return bytes.count - 4
            case .insideChecksum: return bytes.count - 1
            }
        }
    }

    /// Where to flip a byte.
    enum FlipRegion: String, CaseIterable, Sendable {
        case header, headerPadding, phi, lastArray, checksum

        func offset(in bytes: [UInt8]) -> Int {
            let dataStart = 24 + CheckpointFixture.headerLength(bytes)
            switch self {
            case .header: return 24 + 30
            case .headerPadding: return dataStart - 1
            case .phi: return dataStart + 4 * 1000 + 1
            case .lastArray: return bytes.count - 5
            case .checksum: return bytes.count - 2
            }
        }
    }

    /// Edits of the JSON header text (the file is rebuilt with a valid checksum afterwards).
    enum HeaderEdit: String, CaseIterable, Sendable {
        case notJSON, unknownKey, unknownSetting, missingKey, wrongType, badFingerprint, wrongArrayOrder
        case longerPhi, phiTooLongForConfig, invalidConfig, negativeWallTime

        func apply(_ json: String) -> String {
            switch self {
            case .notJSON: return "{" + json
            case .unknownKey: return json.replacingOccurrences(of: "{\"arrays\"", with: "{\"rng\":5,\"arrays\"")
            case .unknownSetting: return json.replacingOccurrences(of: "\"config\":{", with: "\"config\":{\"momentum\":0.9,")
            case .missingKey: return json.replacingOccurrences(of: #""step":[0-9]+,"#, with: "", options: .regularExpression)
            case .wrongType: return json.replacingOccurrences(of: #""phi_version":[0-9]+"#, with: #""phi_version":"x""#, options: .regularExpression)
            case .badFingerprint: return json.replacingOccurrences(of: "0xfeedfacecafebeef", with: "feedfacecafebeef")
            case .wrongArrayOrder: return json.replacingOccurrences(of: "\"name\":\"phi_m\"", with: "\"name\":\"phi_w\"")
            case .longerPhi, .phiTooLongForConfig: return json    // handled by CheckpointFixture.rebuild
            case .invalidConfig: return json.replacingOccurrences(of: "\"nTrain\":10,", with: "\"nTrain\":0,")
            case .negativeWallTime: return json.replacingOccurrences(of: "\"wall_seconds_so_far\":", with: "\"wall_seconds_so_far\":-")
            }
        }

        var expectedReason: String {
            switch self {
            case .notJSON: return "JSON"
            case .unknownKey: return "unknown key(s) [\"rng\"]"
            case .unknownSetting: return "unknown configuration key(s) [\"momentum\"]"
            case .missingKey: return "missing key step"
            case .wrongType: return "phi_version"
            case .badFingerprint: return "data_fingerprint"
            case .wrongArrayOrder: return "arrays must be"
            case .longerPhi: return ""
            case .phiTooLongForConfig: return "phi has"
            case .invalidConfig: return "n-train"
            case .negativeWallTime: return "wall_seconds_so_far"
            }
        }
    }

    // MARK: Fixtures

    enum CheckpointFixture {
        /// Fig. 4-like setting with ten per-class λs and an `mlp:4` hypernetwork, after `steps`
        /// real Adam steps through `HyperState`, so moments and counters are non-trivial.
        /// The fixture after `steps` (1…3) real Adam steps through `HyperState` in a Fig. 4-like
        /// setting with ten per-class λs and an `mlp:4` hypernetwork, so moments and counters
        /// are non-trivial. `compact`: the default global-λ linear hypernetwork trained with
        /// SGD, so the moment arrays are empty and the file is small (for sweeps).
        static func make(steps: Int, compact: Bool = false) -> Checkpoint {
            (compact ? compactRun : fullRun)[steps - 1]
        }

        // Computed once: random numbers through an unspecialized generator are slow in debug.
        private static let fullRun = run(compact: false)
        private static let compactRun = run(compact: true)

        private static func run(compact: Bool) -> [Checkpoint] {
            var config = ExperimentConfig()
            if compact {
                config.phiOptimizer = .sgd
                config.lambdaOptimizer = .sgd
            } else {
                config.scope = .perClass
                config.hypernet = .mlp(hidden: 4)
            }
            config.seed = 17
            var generator = SplitMix64(seed: 11)
            let phi = (0..<config.phiCount).map { _ in Float.random(in: -0.01...0.01, using: &generator) }
            let lambdaHat = [Float](repeating: Float(config.lambdaInit), count: config.hyperparameterCount)
            let state = HyperState(config: config, phi: phi, lambdaHat: lambdaHat)
            var checkpoints: [Checkpoint] = []
            for _ in 0..<3 {
                state.beginStep()
                for _ in 0..<2 {
                    let g = (0..<phi.count).map { _ in Float.random(in: -1...1, using: &generator) }
                    g.withUnsafeBufferPointer { state.addTaskGradient($0.baseAddress!) }
                }
                state.applyPhiStep()
                let gl = (0..<lambdaHat.count).map { _ in Float.random(in: -1...1, using: &generator) }
                gl.withUnsafeBufferPointer { state.applyLambdaStep($0.baseAddress!) }
                state.endStep()
                checkpoints.append(Checkpoint(
                    snapshot: state.snapshot(), config: config, dataFingerprint: 0xFEED_FACE_CAFE_BEEF,
                    counters: ["gradients_applied": UInt64.max, "gradients_rejected": 3], wallSecondsSoFar: 0.1 + 0.2))
            }
            return checkpoints
        }

        static func arrays(of c: Checkpoint) -> [[Float]] {
            [c.snapshot.phi, c.snapshot.lambdaHat, c.snapshot.phiM, c.snapshot.phiV, c.snapshot.lambdaM, c.snapshot.lambdaV]
        }

        static func readError(_ path: String) -> CheckpointError? {
            do { _ = try Checkpoint.read(from: path); return nil } catch { return error }
        }

        static func writeError(_ checkpoint: Checkpoint, _ path: String) -> CheckpointError? {
            do { try checkpoint.write(to: path); return nil } catch { return error }
        }

        static func latestGoodError(_ path: String) -> CheckpointError? {
            do { _ = try Checkpoint.latestGood(at: path); return nil } catch { return error }
        }

        static func headerLength(_ bytes: [UInt8]) -> Int {
            Int(bytes[12]) | Int(bytes[13]) << 8 | Int(bytes[14]) << 16 | Int(bytes[15]) << 24
        }

        static func refreshChecksum(_ bytes: inout [UInt8]) {
            let crc = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[..<($0.count - 4)])) }
            withUnsafeBytes(of: crc.littleEndian) { bytes.replaceSubrange((bytes.count - 4)..., with: $0) }
        }

        /// The file with its header text edited, re-laid out with a correct header length, total
        /// length and checksum. `.longerPhi` claims one more φ value than stored;
        /// `.phiTooLongForConfig` also stores it (a zero).
        static func rebuild(_ bytes: [UInt8], edit: HeaderEdit) -> [UInt8] {
            let dataStart = 24 + headerLength(bytes)
            var json = edit.apply(String(decoding: bytes[dataStart - (dataStart - 24)..<dataStart], as: UTF8.self)
                .trimmingCharacters(in: .whitespaces))
            var data = Array(bytes[dataStart..<(bytes.count - 4)])
            if edit == .longerPhi || edit == .phiTooLongForConfig {
                let match = json.range(of: #"\{"count":[0-9]+,"name":"phi"\}"#, options: .regularExpression)!
                let count = Int(json[match].dropFirst(9).prefix { $0.isNumber })!
                json.replaceSubrange(match, with: "{\"count\":\(count + 1),\"name\":\"phi\"}")
                if edit == .phiTooLongForConfig { data.insert(contentsOf: [0, 0, 0, 0], at: 4 * count) }
            }
            var header = Array(json.utf8)
            while (24 + header.count) % 8 != 0 { header.append(UInt8(ascii: " ")) }
            var out = Array("HTCKPT01".utf8)
            withUnsafeBytes(of: UInt32(1).littleEndian) { out += $0 }
            withUnsafeBytes(of: UInt32(header.count).littleEndian) { out += $0 }
            withUnsafeBytes(of: UInt64(24 + header.count + data.count + 4).littleEndian) { out += $0 }
            out += header + data + [0, 0, 0, 0]
            refreshChecksum(&out)
            return out
        }

        /// Runs `body` on this thread with the file-system identity of `nobody` when running as
        /// root (Linux `setfsuid` is per thread and drops the file capabilities), so permission
        /// checks apply. `body` must not suspend.
        static func asUnprivilegedUser<R>(_ body: () -> R) -> R {
            #if os(Linux)
            // <sys/fsuid.h> is not part of the Glibc module; look the function up instead.
            typealias SetFSUID = @convention(c) (UInt32) -> Int32
            guard geteuid() == 0, let symbol = dlsym(nil, "setfsuid") else { return body() }
            let setfsuid = unsafeBitCast(symbol, to: SetFSUID.self)
            _ = setfsuid(65534)
            defer { _ = setfsuid(0) }
            #endif
            return body()
        }
    }

    /// A fresh directory under the system temporary directory.
    struct CheckpointScratch {
        let path: String

        init() throws {
            path = NSTemporaryDirectory() + "checkpoint-tests-" + UUID().uuidString
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }

        func remove() { try? FileManager.default.removeItem(atPath: path) }

        func contents() throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: path).sorted() }

        static func bytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }

        static func write(_ bytes: [UInt8], to path: String) throws { try Data(bytes).write(to: URL(fileURLWithPath: path)) }
    }
}
