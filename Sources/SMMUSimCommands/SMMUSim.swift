// The `smmusim` command line, as a library so tests can drive it (STYLE.md: a tiny
// `@main` over a commands library).

import ArgumentParser

/// The root command: `smmusim <subcommand>`.
public struct SMMUSim: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "smmusim",
        abstract: "A cycle-approximate emulator of an Arm SMMUv3 system.",
        discussion: """
            Boot device firmware on an emulated accelerator (RV64IMAC core, SRAM, control \
            page). See README.md and Firmware/include/smmusim.h for the device platform.
            """,
        subcommands: [Boot.self, Decode.self]
    )

    public init() {}
}
