import Testing
@testable import Telemetry

@Suite struct ProgressLineTests {
    let clock = ManualClock(100)
    let output = OutputCapture()

    func makeLine(interactive: Bool, columns: Int? = nil) -> ProgressLine {
        ProgressLine(interactive: interactive, now: clock.closure, columns: { columns }, write: output.writer)
    }

    @Test("On a terminal the line is redrawn in place, at most every 0.2 s, and finish ends it")
    func terminalRedraw() {
        let line = makeLine(interactive: true)
        line.update(ProgressSnapshot(step: 0, totalSteps: 1000, lambdaSummary: "λ̂=-1.234", trainLoss: 2.302585))
        #expect(output.take() == ["\rstep 0/1000 (0%)  λ̂=-1.234  train 2.303\u{1B}[K"])

        clock.now = 100.1
        line.update(ProgressSnapshot(step: 10, totalSteps: 1000, lambdaSummary: "λ̂=-1.234"))
        #expect(output.take().isEmpty, "a redraw 0.1 s after the last is throttled")

        clock.now = 100.25
        line.update(ProgressSnapshot(step: 25, totalSteps: 1000, lambdaSummary: "λ̂=-1.234",
                                     trainLoss: 1.5, validLoss: 1.75))
        #expect(output.take() == [
            "\rstep 25/1000 (2%)  λ̂=-1.234  train 1.5  valid 1.75  100 steps/s  ETA 10s\u{1B}[K",
        ])

        clock.now = 100.3
        line.update(ProgressSnapshot(step: 30, totalSteps: 1000, lambdaSummary: "λ̂=-1.250", extra: "workers 4/4"))
        #expect(output.take().isEmpty)

        line.finish()
        #expect(output.take() == [
            "\rstep 30/1000 (3%)  λ̂=-1.250  100 steps/s  ETA 10s  workers 4/4\u{1B}[K\n",
        ], "finish draws the throttled snapshot and ends the line")

        clock.now = 200
        line.update(ProgressSnapshot(step: 40, totalSteps: 1000))
        line.finish()
        #expect(output.take().isEmpty, "updates after finish are ignored")
    }

    @Test("finish after an up-to-date redraw only writes the newline")
    func finishAfterDraw() {
        let line = makeLine(interactive: true)
        line.update(ProgressSnapshot(step: 5, totalSteps: 5, stepsPerSecond: 2.5))
        line.finish()
        #expect(output.take() == ["\rstep 5/5 (100%)  2.50 steps/s\u{1B}[K", "\n"])
    }

    @Test("Terminal lines are cut to the width minus one column so they never wrap")
    func truncation() {
        let line = makeLine(interactive: true, columns: 12)
        line.update(ProgressSnapshot(step: 123, totalSteps: 1000, lambdaSummary: "λ̂=0.5"))
        #expect(output.take() == ["\rstep 123/10\u{1B}[K"])
    }

    @Test("Off a terminal it writes one plain line at the start, then at most one per interval")
    func plainMode() {
        let line = makeLine(interactive: false)
        line.update(ProgressSnapshot(step: 0, totalSteps: 1000, trainLoss: 2.5))
        #expect(output.take() == ["step 0/1000 (0%)  train 2.5\n"])

        for second in 1...9 {
            clock.now = 100 + Double(second)
            line.update(ProgressSnapshot(step: second * 10, totalSteps: 1000, trainLoss: 2.0))
        }
        #expect(output.take().isEmpty, "nothing for the first ten seconds")

        clock.now = 110
        line.update(ProgressSnapshot(step: 100, totalSteps: 1000, trainLoss: 1.25, stepsPerSecond: 20))
        #expect(output.take() == ["step 100/1000 (10%)  train 1.25  20.0 steps/s  ETA 45s\n"])

        clock.now = 112
        line.update(ProgressSnapshot(step: 120, totalSteps: 1000, trainLoss: 1.0, validLoss: 1.125))
        #expect(output.take().isEmpty)

        line.finish()
        #expect(output.take() == ["step 120/1000 (12%)  train 1  valid 1.125  10.0 steps/s  ETA 1m28s\n"],
                "finish writes the last state, with the rate measured since the first update")
    }

    @Test("The plain interval is configurable")
    func plainInterval() {
        let line = ProgressLine(interactive: false, plainInterval: 2, now: clock.closure,
                                columns: { nil }, write: output.writer)
        line.update(ProgressSnapshot(step: 1, totalSteps: 0))
        clock.now = 101
        line.update(ProgressSnapshot(step: 2, totalSteps: 0))
        clock.now = 102
        line.update(ProgressSnapshot(step: 3, totalSteps: 0))
        line.finish()
        #expect(output.take() == ["step 1\n", "step 3  1.00 steps/s\n"])
    }

    @Test("finish without any update writes nothing")
    func finishWithoutUpdates() {
        makeLine(interactive: true).finish()
        makeLine(interactive: false).finish()
        #expect(output.take().isEmpty)
    }

    @Test("Newlines inside fields cannot break the line")
    func newlinesInFields() {
        let line = makeLine(interactive: true)
        line.update(ProgressSnapshot(step: 1, totalSteps: 2, extra: "a\nb\rc"))
        #expect(output.take() == ["\rstep 1/2 (50%)  a b c\u{1B}[K"])
    }

    @Test("Non-finite losses are shown, not hidden")
    func nonFiniteLoss() {
        let line = makeLine(interactive: false)
        line.update(ProgressSnapshot(step: 1, totalSteps: 2, trainLoss: .nan, validLoss: .infinity))
        #expect(output.take() == ["step 1/2 (50%)  train nan  valid inf\n"])
    }

    @Test("Durations are compact", arguments: [
        (0.4, "0s"), (42, "42s"), (59.6, "1m00s"), (309, "5m09s"), (7500, "2h05m"), (400_000, "111h"), (-1, "?"),
    ])
    func durations(seconds: Double, text: String) {
        #expect(Format.duration(seconds) == text)
    }
}
