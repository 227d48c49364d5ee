// The `smmusim` executable: everything lives in SMMUSimCommands.
import SMMUSimCommands

SMMUSim.main()
