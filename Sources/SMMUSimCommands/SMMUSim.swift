// The `smmusim` command line, as a library so tests can drive it (STYLE.md: a tiny
// `@main` over a commands library).

import ArgumentParser

/// The root command: `smmusim <subcommand>`.
public struct SMMUSim: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "smmusim",
        abstract: "A cycle-approximate emulator of an Arm SMMUv3 system.",
        discussion: """
            boot: run device firmware on an emulated accelerator (RV64IMAC core, SRAM, \
            control page; see Firmware/include/smmusim.h). decode: print the fields of SMMUv3 \
            STEs, CDs, commands, events and page requests. mmio: drive an SMMUv3 model with a \
            register-level script. See README.md.
            """,
        subcommands: [Boot.self, Decode.self, MMIO.self]
    )

    public init() {}
}
